"""Browser timings of the keel web UI (Chromium through Playwright), written to
benchmarks/results/ui.md and ui.json.

    .venv/bin/python benchmarks/ui/bench_ui.py [--runs 100000] [--points 1000000]
        [--overlay-runs 100] [--overlay-points 100000]

Populates a fresh SQLite store through the store's batch APIs, serves the UI with uvicorn on
127.0.0.1, and measures in the browser: the runs-table page (navigation start to first contentful
paint), a single-metric chart (navigation start to the chart drawn), the overlay of many runs,
and the gzipped JavaScript of a core page.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
REPEATS = 5


def populate(client, runs: int, points: int, overlay_runs: int, overlay_points: int) -> dict:
    import numpy as np

    from keel.entities import RunStatus
    from keel.store.metrics import Chunk

    store = client.store
    started = time.perf_counter()
    table_exp = client.experiment_id("table")
    base = 1_700_000_000_000
    for i in range(runs):
        run = store.create_run(table_exp, f"run-{i:06d}", start_time=base + i, run_id=f"{i:032x}")
        # params, a metric and an end on a share of them (the newest page has them all): quicker to fill
        if i >= runs - 2000 or i % 50 == 0:
            store.log_params(run.run_id, {"lr": 10 ** -(i % 5), "depth": i % 12})
            store.write_metric_batch(
                f"b{i}", run.run_id, [Chunk.from_lists("acc", [0], [base], [math.sin(i)])]
            )
            store.update_run(run.run_id, status=RunStatus.FINISHED, end_time=base + i + 1000)
    table_s = time.perf_counter() - started

    def write_series(run_id: str, key: str, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        values = np.cumsum(rng.normal(size=n)) / math.sqrt(n)
        values[rng.integers(0, n, 5)] += 50.0  # spikes the downsampling must keep
        steps = np.arange(n, dtype=np.int64)
        stamps = base + steps * 10
        for start in range(0, n, 200_000):
            part = slice(start, start + 200_000)
            chunk = Chunk.from_lists(key, steps[part].tolist(), stamps[part].tolist(), values[part].tolist())
            store.write_metric_batch(f"{run_id}-{key}-{start}", run_id, [chunk])

    big_exp = client.experiment_id("long")
    big = store.create_run(big_exp, "long-metric", start_time=base)
    write_series(big.run_id, "loss", points, 1)
    overlay_exp = client.experiment_id("overlay")
    overlay = []
    for i in range(overlay_runs):
        run = store.create_run(overlay_exp, f"o-{i:03d}", start_time=base)
        write_series(run.run_id, "loss", overlay_points, 100 + i)
        overlay.append(run.run_id)
    return {
        "table_experiment": table_exp,
        "big_run": big.run_id,
        "overlay": overlay,
        "populate_s": round(time.perf_counter() - started, 1),
        "table_populate_s": round(table_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--overlay-runs", type=int, default=100)
    parser.add_argument("--overlay-points", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="populate this folder once and reuse it on later runs")
    args = parser.parse_args()
    os.environ["KEEL_SYSTEM_METRICS"] = "false"

    import uvicorn
    from playwright.sync_api import sync_playwright

    from keel.server.ui.app import create_ui_app
    from keel.tracking.client import Client

    folder = args.keep or Path(tempfile.mkdtemp(prefix="keel-ui-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    client = Client(f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts"))
    sizes_file = folder / "populated.json"
    wanted = [args.runs, args.points, args.overlay_runs, args.overlay_points]
    if sizes_file.exists() and json.loads(sizes_file.read_text())["sizes"] == wanted:
        ids = json.loads(sizes_file.read_text())["ids"]
    else:
        ids = populate(client, args.runs, args.points, args.overlay_runs, args.overlay_points)
        sizes_file.write_text(json.dumps({"sizes": wanted, "ids": ids}))
    print(f"populated in {ids['populate_s']} s", file=sys.stderr)

    server = uvicorn.Server(
        uvicorn.Config(
            create_ui_app(client.store, client._context.artifacts),
            host="127.0.0.1",
            port=0,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    results: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def paint(path: str) -> float:
            page.goto(url + path, wait_until="load")
            return float(
                page.evaluate(
                    "() => { const e = performance.getEntriesByName('first-contentful-paint')[0];"
                    " return e ? e.startTime : performance.getEntriesByType('navigation')[0].loadEventEnd; }"
                )
            )

        def charts(path: str) -> float:
            page.goto(url + path)
            page.wait_for_selector("body[data-charts-ready]", timeout=60_000)
            # keel.js marks the moment after the frame that drew the last chart
            return float(
                page.evaluate("() => performance.getEntriesByName('keel-charts-painted').pop().startTime")
            )

        def measure(function, path: str) -> dict[str, float]:
            function(path)  # warm: the first request pays imports and SQLite's cache
            times = [function(path) for _ in range(REPEATS)]
            return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}

        table_path = f"/ui/experiments/{ids['table_experiment']}"
        results["runs_table"] = {"runs": args.runs, **measure(paint, table_path)}
        results["runs_table_sorted_by_metric"] = {
            "runs": args.runs,
            **measure(paint, table_path + "?order=-metrics.acc"),
        }
        results["long_metric_chart"] = {
            "points": args.points,
            **measure(charts, f"/ui/runs/{ids['big_run']}"),
        }
        query = "&".join(f"runs={r}" for r in ids["overlay"])
        results["overlay"] = {
            "runs": args.overlay_runs,
            "points_per_run": args.overlay_points,
            **measure(charts, f"/ui/compare?{query}"),
        }
        browser.close()
    server.should_exit = True
    static = ROOT / "src" / "keel" / "server" / "ui" / "static"
    core = ["vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "keel.js"]
    results["core_js_gzip_bytes"] = sum(len(gzip.compress((static / f).read_bytes(), 9)) for f in core)
    results["populate_s"] = ids["populate_s"]
    results["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )
    # a shared machine: the load says how much else was running while measuring
    results["load_average_1min"] = round(os.getloadavg()[0], 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ui.json").write_text(json.dumps(results, indent=2) + "\n")
    targets = {
        "runs_table": 300,
        "runs_table_sorted_by_metric": 300,
        "long_metric_chart": 250,
        "overlay": 1000,
    }
    lines = [
        "# keel web UI in the browser",
        "",
        f"Chromium (Playwright), median of {REPEATS} after one warm-up; {results['machine']}, "
        f"load average {results['load_average_1min']} at the end (other work shared the machine). "
        "Produced by `benchmarks/ui/bench_ui.py`.",
        "",
        "| what | size | median ms | max ms | target ms |",
        "|---|---|---|---|---|",
    ]
    sizes = {
        "runs_table": f"{args.runs:,} runs, page of 50, newest first",
        "runs_table_sorted_by_metric": f"{args.runs:,} runs, sorted by a metric",
        "long_metric_chart": f"1 metric of {args.points:,} points",
        "overlay": f"{args.overlay_runs} runs x {args.overlay_points:,} points",
    }
    for key, target in targets.items():
        row = results[key]
        lines.append(f"| {key} | {sizes[key]} | {row['median_ms']} | {row['max_ms']} | {target} |")
    lines += [
        "",
        f"JavaScript of a core page (htmx + uPlot + keel.js), gzipped: {results['core_js_gzip_bytes']:,} bytes "
        "(target 102,400).",
        "",
        "Runs table: navigation start to first contentful paint. Charts: navigation start to the last "
        "chart drawn (series fetched as JSON, downsampled on the server, drawn by uPlot).",
    ]
    (RESULTS / "ui.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _docs import demote, write_section

    intro = "keel's web UI measured in Debian's Chromium through Playwright, written by `python benchmarks/ui/bench_ui.py`."
    write_section("ui", "Web UI", intro + "\n\n" + demote("\n".join(lines)))


if __name__ == "__main__":
    main()
