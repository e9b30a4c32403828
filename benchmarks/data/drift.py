#!/usr/bin/env python3
"""keel drift from a stored profile vs Evidently's data-drift preset; profile size; wide-table profiling.

    python benchmarks/data/drift.py              # 1M vs 1M rows × 9 columns; 100..1000 columns scaling
    python benchmarks/data/drift.py --quick      # 100k rows, 10..100 columns: a smoke test of the harness
    python benchmarks/data/drift.py --scale-rows 1000000   # the scaling runs at 1M rows (8 GB at 1000 cols)

Three measurements, each in a fresh worker process (keel: the project's .venv; Evidently: its own virtualenv
under benchmarks/.venvs/evidently, created with `uv venv` + `uv pip install` when missing):

1. drift, 1M reference vs 1M current rows × 9 columns (6 numeric, 3 categorical; 2 drifted), the same Parquet
   files for both. keel reads the stored reference profile (.kprof, built once beforehand and not measured)
   and the current Parquet file, profiles it and computes drift. Evidently reads both files into pandas and
   runs ``Report([DataDriftPreset()])``. Measured: CPU-seconds of the work (user + system, all threads, from
   getrusage, after imports) and of the whole process, and peak RSS (VmHWM).
2. reference profile size: bytes of the 9-column profile and of a 10-numeric-column profile at 1M rows,
   per 10 columns.
3. profiling wide tables: N numeric columns × --scale-rows rows for N in 100, 250, 500, 1000 (in memory),
   wall and CPU seconds; the fit of time against columns shows whether it is linear.

Results: benchmarks/results/data-drift.json and .md (data-drift-quick.* with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
BENCH = HERE.parent.parent
REPO = BENCH.parent
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work" / "data-drift"
RESULTS = BENCH / "results"
KEEL_PYTHON = REPO / ".venv" / "bin" / "python"
EVIDENTLY_SPECS = ["evidently", "pandas<3", "pyarrow"]  # evidently 0.7 does not import under pandas 3
TARGETS = {"drift_cpu_s": 1.0, "speedup_vs_evidently": 30.0, "bytes_per_10_columns": 100_000, "wide_s": 60.0}


# ------------------------------------------------------------------------------------------- workers
def _rusage() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_generate(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    rows = args["rows"]

    def frame(seed: int, drifted: bool) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        shift = 0.5 if drifted else 0.0
        p = [0.2, 0.3, 0.2, 0.2, 0.1] if drifted else [0.4, 0.3, 0.15, 0.1, 0.05]
        values = rng.normal(50, 10, rows)
        return pl.DataFrame(
            {
                "amount": rng.normal(100 + 10 * shift, 15, rows),
                "latency": rng.lognormal(3, 0.5, rows),
                "ratio": rng.uniform(0, 1, rows),
                "items": rng.poisson(4, rows),
                "wait": rng.exponential(2.0, rows),
                "score": np.where(rng.random(rows) < 0.05, np.nan, values),
                "segment": rng.choice(["a", "b", "c", "d", "e"], rows, p=p),
                "country": rng.choice([f"C{i:02d}" for i in range(20)], rows),
                "channel": rng.choice(["web", "app", "store"], rows),
            }
        ).with_columns(pl.col("score").fill_nan(None))

    WORK.mkdir(parents=True, exist_ok=True)
    frame(1, False).write_parquet(WORK / "reference.parquet")
    frame(2, True).write_parquet(WORK / "current.parquet")
    return {"rows": rows}


def worker_keel_reference(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    from keel.data.profiles import profile

    start = time.perf_counter()
    reference = profile(WORK / "reference.parquet")
    seconds = time.perf_counter() - start
    reference.save(WORK / "reference.kprof")
    rng = np.random.default_rng(3)
    numeric = pl.DataFrame({f"n{i}": rng.normal(i, 1 + i, args["rows"]) for i in range(10)})
    numeric_bytes = len(profile(numeric).to_bytes())
    return {
        "profile_seconds": seconds,
        "bytes_9_columns": (WORK / "reference.kprof").stat().st_size,
        "bytes_10_numeric_columns": numeric_bytes,
    }


def worker_keel_drift(args: dict[str, Any]) -> dict[str, Any]:
    from keel.data.drift_detection import drift
    from keel.data.profiles import Profile

    cpu0, wall0 = _rusage(), time.perf_counter()
    reference = Profile.load(WORK / "reference.kprof")
    result = drift(reference, WORK / "current.parquet")
    return {
        "cpu_s": _rusage() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "drifted": sorted(result.drifted_columns),
        "dataset_drift": result.dataset_drift,
    }


def worker_evidently_drift(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    cpu0, wall0 = _rusage(), time.perf_counter()
    reference = pd.read_parquet(WORK / "reference.parquet")
    current = pd.read_parquet(WORK / "current.parquet")
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    payload = snapshot.dict()
    drifted = []
    for metric in payload["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            method = config.get("method", "")
            value, threshold = float(metric["value"]), float(config["threshold"])
            if (value < threshold) if "p_value" in method else (value >= threshold):
                drifted.append(config["column"])
    return {"cpu_s": _rusage() - cpu0, "wall_s": time.perf_counter() - wall0, "drifted": sorted(drifted)}


def worker_keel_wide(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    from keel.data.profiles import profile

    rng = np.random.default_rng(5)
    rows, columns = args["rows"], args["columns"]
    # column by column, so the peak is one frame (8 bytes × rows × columns), not the frame and its source
    frame = pl.DataFrame(
        [pl.Series(f"c{i}", rng.standard_normal(rows) * (1 + i % 7)) for i in range(columns)]
    )
    cpu0, wall0 = _rusage(), time.perf_counter()
    result = profile(frame, fingerprint=False)  # the content hash of an in-memory frame is measured apart
    cpu1, wall1 = _rusage(), time.perf_counter()
    from keel.data.sources import open_source

    open_source(frame).fingerprint()
    return {
        "fingerprint_cpu_s": _rusage() - cpu1,
        "fingerprint_wall_s": time.perf_counter() - wall1,
        "columns": columns,
        "rows": rows,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "bytes": len(result.to_bytes()),
    }


WORKERS = {
    "generate": worker_generate,
    "keel-reference": worker_keel_reference,
    "keel-drift": worker_keel_drift,
    "evidently-drift": worker_evidently_drift,
    "keel-wide": worker_keel_wide,
}


def worker_main(name: str, payload: str) -> None:
    args = json.loads(payload)
    started = _rusage()
    result = WORKERS[name](args)
    result["process_cpu_s"] = _rusage()  # interpreter start and imports included
    result["imports_cpu_s"] = started
    result["peak_rss"] = _peak_rss()
    sys.stdout.write(json.dumps(result) + "\n")


# -------------------------------------------------------------------------------------------- runner
def ensure_evidently() -> Path:
    python = VENVS / "evidently" / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([str(python), "-c", "import evidently"], capture_output=True).returncode == 0
    ):
        return python
    subprocess.run(["uv", "venv", "-q", "-p", "3.11", str(VENVS / "evidently")], check=True)
    subprocess.run(["uv", "pip", "install", "-q", "-p", str(python), *EVIDENTLY_SPECS], check=True)
    return python


def run_worker(python: Path, name: str, args: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "KEEL_SYSTEM_METRICS": "false"}
    done = subprocess.run(
        [str(python), str(HERE), "--worker", name, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _available_memory() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024.0
    return 0.0


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the harness")
    parser.add_argument("--rows", type=int, default=None, help="rows per side of the drift comparison")
    parser.add_argument("--scale-rows", type=int, default=None, help="rows of the wide-table profiles")
    parser.add_argument("--columns", default=None, help="comma-separated widths for the scaling runs")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("payload", nargs="?", default="{}", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker_main(options.worker, options.payload)
        return

    quick = options.quick
    rows = options.rows or (100_000 if quick else 1_000_000)
    scale_rows = options.scale_rows or (20_000 if quick else 200_000)
    widths = [
        int(w) for w in (options.columns or ("10,25,50,100" if quick else "100,250,500,1000")).split(",")
    ]
    repeats = options.repeats or (1 if quick else 3)

    print(f"generating {rows:,} + {rows:,} rows × 9 columns ...", flush=True)
    run_worker(KEEL_PYTHON, "generate", {"rows": rows})
    reference = run_worker(KEEL_PYTHON, "keel-reference", {"rows": rows})
    print(f"reference profile: {reference['bytes_9_columns']:,} bytes for 9 columns", flush=True)

    keel_runs = [run_worker(KEEL_PYTHON, "keel-drift", {}) for _ in range(repeats)]
    print(f"keel drift: {median_of(keel_runs, 'cpu_s'):.3f} CPU-s", flush=True)
    evidently_runs: list[dict[str, Any]] = []
    evidently_version = None
    if not options.skip_evidently:
        python = ensure_evidently()
        evidently_version = subprocess.run(
            [str(python), "-c", "import evidently; print(evidently.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        evidently_runs = [run_worker(python, "evidently-drift", {}) for _ in range(repeats)]
        print(f"evidently drift: {median_of(evidently_runs, 'cpu_s'):.3f} CPU-s", flush=True)

    wide = []
    for columns in widths:
        runs = [
            run_worker(KEEL_PYTHON, "keel-wide", {"rows": scale_rows, "columns": columns}) for _ in range(1)
        ]
        wide.append(
            {
                "columns": columns,
                "rows": scale_rows,
                "cpu_s": median_of(runs, "cpu_s"),
                "wall_s": median_of(runs, "wall_s"),
                "peak_rss": median_of(runs, "peak_rss"),
                "fingerprint_cpu_s": median_of(runs, "fingerprint_cpu_s"),
            }
        )
        print(f"profile {columns} columns × {scale_rows:,} rows: {wide[-1]['wall_s']:.2f} s wall", flush=True)

    long_rows = rows * 5 if quick else 1_000_000
    long_run = None
    if scale_rows != long_rows:  # the same width at more rows: is time linear in rows too?
        long_run = run_worker(KEEL_PYTHON, "keel-wide", {"rows": long_rows, "columns": widths[0]})
        print(
            f"profile {widths[0]} columns × {long_rows:,} rows: {long_run['wall_s']:.2f} s wall", flush=True
        )

    direct = None
    if not quick and scale_rows != 1_000_000 and 1000 in widths:
        # the target itself, when the 8 GB frame fits comfortably in the memory available now
        need = 8 * 1_000_000 * 1000 * 1.5
        if _available_memory() > need:
            direct = run_worker(KEEL_PYTHON, "keel-wide", {"rows": 1_000_000, "columns": 1000})
            print(f"profile 1000 columns × 1,000,000 rows: {direct['wall_s']:.2f} s wall", flush=True)
        else:
            print("skipping the direct 1000 × 1M run: not enough free memory for the 8 GB frame", flush=True)

    report = summarise(rows, scale_rows, reference, keel_runs, evidently_runs, evidently_version, wide)
    if direct is not None:
        keys = ("columns", "rows", "cpu_s", "wall_s", "peak_rss", "fingerprint_cpu_s")
        report["direct"] = {k: direct[k] for k in keys}
    if long_run is not None:
        keys = ("columns", "rows", "cpu_s", "wall_s", "peak_rss", "fingerprint_cpu_s")
        report["long"] = {k: long_run[k] for k in keys}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "data-drift-quick" if quick else "data-drift"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(f"results: {RESULTS / stem}.md / .json")
    if not quick:  # the full run is what users read
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from _docs import demote, write_section

        intro = (
            "keel's drift from a stored profile next to Evidently's data-drift preset in its own virtualenv, "
            "written by `python benchmarks/data/drift.py`."
        )
        write_section("data-drift", "Drift", intro + "\n\n" + demote(markdown(report)))


def summarise(
    rows: int,
    scale_rows: int,
    reference: dict[str, Any],
    keel_runs: list[dict[str, Any]],
    evidently_runs: list[dict[str, Any]],
    evidently_version: str | None,
    wide: list[dict[str, Any]],
) -> dict[str, Any]:
    keel = {k: median_of(keel_runs, k) for k in ("cpu_s", "process_cpu_s", "wall_s", "peak_rss")}
    keel["drifted"] = keel_runs[0]["drifted"]
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "rows_per_side": rows,
        "reference": reference,
        "keel": keel,
        "bytes_per_10_columns": {
            "mixed_9_columns": reference["bytes_9_columns"] * 10 / 9,
            "numeric_10_columns": reference["bytes_10_numeric_columns"],
        },
        "wide": wide,
        "targets": TARGETS,
    }
    if evidently_runs:
        evidently = {
            k: median_of(evidently_runs, k) for k in ("cpu_s", "process_cpu_s", "wall_s", "peak_rss")
        }
        evidently["drifted"] = evidently_runs[0]["drifted"]
        evidently["version"] = evidently_version
        out["evidently"] = evidently
        out["speedup_cpu"] = evidently["cpu_s"] / keel["cpu_s"]
        out["speedup_process_cpu"] = evidently["process_cpu_s"] / keel["process_cpu_s"]
    if len(wide) >= 2:
        xs = [w["columns"] for w in wide]
        ys = [w["wall_s"] for w in wide]
        cs = [w["cpu_s"] for w in wide]
        out["wide_fit"] = {"wall": _fit(xs, ys), "cpu": _fit(xs, cs)}
        last = wide[-1]
        factor = 1_000_000 / last["rows"] * 1000 / last["columns"]
        out["wide_1000x1M_estimate"] = {
            "wall_s": last["wall_s"] * factor,
            "cpu_s": last["cpu_s"] * factor,
            "measured": factor == 1,
        }
    return out


def _fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least squares y = a + b x and the coefficient of determination."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys) or 1.0
    return {"intercept_s": a, "per_column_s": b, "r2": 1 - ss_res / ss_tot}


def markdown(r: dict[str, Any]) -> str:
    keel = r["keel"]
    lines = [
        "# Drift: keel vs Evidently; profile size; wide tables",
        "",
        f"Measured {r['date']} on {r['machine']['cpus']} CPUs ({r['machine']['platform']}, Python "
        f"{r['machine']['python']}). Command: `python benchmarks/data/drift.py`. CPU-seconds are user + "
        "system of the worker process (all threads) for the work after imports; 'process' includes "
        "interpreter start and imports. The machine is shared, so wall times are noisy; CPU-seconds and "
        "ratios are the figures to quote.",
        "",
        f"## Drift, {r['rows_per_side']:,} vs {r['rows_per_side']:,} rows × 9 columns",
        "",
        "| peer | work CPU-s | process CPU-s | wall s | peak RSS | drifted columns |",
        "|---|---:|---:|---:|---:|---|",
        f"| keel (stored reference profile) | {keel['cpu_s']:.3f} | {keel['process_cpu_s']:.3f} | "
        f"{keel['wall_s']:.3f} | {keel['peak_rss'] / 2**20:.0f} MiB | {', '.join(keel['drifted'])} |",
    ]
    if "evidently" in r:
        ev = r["evidently"]
        lines.append(
            f"| Evidently {ev['version']} DataDriftPreset | {ev['cpu_s']:.3f} | {ev['process_cpu_s']:.3f} | "
            f"{ev['wall_s']:.3f} | {ev['peak_rss'] / 2**20:.0f} MiB | {', '.join(ev['drifted'])} |"
        )
        lines += [
            "",
            f"keel is **{r['speedup_cpu']:.0f}×** faster in work CPU-seconds "
            f"({r['speedup_process_cpu']:.0f}× in whole-process CPU-seconds); target ≥ "
            f"{TARGETS['speedup_vs_evidently']:.0f}× and ≤ {TARGETS['drift_cpu_s']} CPU-s for keel.",
        ]
    ref = r["reference"]
    per10 = r["bytes_per_10_columns"]
    lines += [
        "",
        "## Reference profile size",
        "",
        f"- 9 columns (6 numeric, 3 categorical), {r['rows_per_side']:,} rows: "
        f"{ref['bytes_9_columns']:,} bytes = {per10['mixed_9_columns']:,.0f} bytes per 10 columns "
        f"(built in {ref['profile_seconds']:.2f} s wall)",
        f"- 10 numeric columns, {r['rows_per_side']:,} rows: {per10['numeric_10_columns']:,} bytes",
        f"- target: ≤ {TARGETS['bytes_per_10_columns']:,} bytes per 10 columns",
        "",
        "## Profiling wide tables (numeric columns, in memory)",
        "",
        "Profile time excludes the optional content hash of the in-memory frame (the dataset fingerprint, "
        "`profile(..., fingerprint=False)`), shown in its own column; for files the fingerprint is a stat.",
        "",
        "| columns | rows | wall s | CPU-s | peak RSS | content hash of the frame, CPU-s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for w in r["wide"]:
        lines.append(
            f"| {w['columns']:,} | {w['rows']:,} | {w['wall_s']:.2f} | {w['cpu_s']:.2f} | "
            f"{w['peak_rss'] / 2**20:.0f} MiB | {w['fingerprint_cpu_s']:.2f} |"
        )
    if "long" in r:
        long = r["long"]
        lines.append(
            f"| {long['columns']:,} | {long['rows']:,} | {long['wall_s']:.2f} | {long['cpu_s']:.2f} | "
            f"{long['peak_rss'] / 2**20:.0f} MiB | {long['fingerprint_cpu_s']:.2f} |"
        )
    if "direct" in r:
        d = r["direct"]
        lines.append(
            f"| {d['columns']:,} | {d['rows']:,} | {d['wall_s']:.2f} | {d['cpu_s']:.2f} | "
            f"{d['peak_rss'] / 2**20:.0f} MiB | {d['fingerprint_cpu_s']:.2f} |"
        )
    if "long" in r:
        long = r["long"]
        short = next(w for w in r["wide"] if w["columns"] == long["columns"])
        lines += [
            "",
            f"Rows: {long['rows'] / short['rows']:.0f}× the rows took {long['cpu_s'] / short['cpu_s']:.1f}× the "
            f"CPU-seconds at {long['columns']} columns.",
        ]
    if "wide_fit" in r:
        fit = r["wide_fit"]
        est = r["wide_1000x1M_estimate"]
        how = "measured" if est["measured"] else "extrapolated linearly from the widest run"
        lines += [
            "",
            f"Linear fit of wall time against columns: {fit['wall']['per_column_s'] * 1000:.1f} ms per "
            f"column, intercept {fit['wall']['intercept_s']:.2f} s, R² = {fit['wall']['r2']:.4f} (CPU: "
            f"{fit['cpu']['per_column_s'] * 1000:.1f} ms per column, R² = {fit['cpu']['r2']:.4f}).",
            f"1,000 columns × 1M rows ({how}): {est['wall_s']:.1f} s wall, {est['cpu_s']:.1f} CPU-s; "
            f"target ≤ {TARGETS['wide_s']:.0f} s.",
        ]
    if "direct" in r:
        d = r["direct"]
        lines += [
            "",
            f"1,000 columns × 1M rows, measured: {d['wall_s']:.1f} s wall, {d['cpu_s']:.1f} CPU-s (peak RSS "
            f"{d['peak_rss'] / 2**30:.1f} GiB, the 8 GB frame included).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
