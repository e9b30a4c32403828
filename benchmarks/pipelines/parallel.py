"""Process-pool speed-up of keel pipelines for independent CPU-bound steps, next to the machine's own
ceiling (the same work in plain `multiprocessing` processes).

    .venv/bin/python benchmarks/pipelines/parallel.py              # 8 steps of ~1 s each, 3 repeats
    .venv/bin/python benchmarks/pipelines/parallel.py --quick      # 4 steps of ~0.3 s, 1 repeat

Writes benchmarks/results/pipelines-parallel.{json,md}. Speed-up = inline wall ÷ process-pool wall,
pool start-up (spawning the workers, which import keel) included. The machine's ceiling = one process
doing all the work ÷ a pool of plain processes doing it: no pipeline can beat it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "workers"))

from keel_steps import burn_loop, parallel  # noqa: E402

from keel.pipelines import run_graph  # noqa: E402

RESULTS = HERE.parent / "results"


def _calibrate(seconds: float) -> int:
    """Loop count that burns about ``seconds`` of CPU here."""
    n = 200_000
    while True:
        t0 = time.process_time()
        burn_loop(n)
        spent = time.process_time() - t0
        if spent > 0.05:
            return int(n * seconds / spent)
        n *= 4


def _plain(steps: int, n: int, workers: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    for i in range(steps):
        burn_loop(n + i)
    serial = time.perf_counter() - t0
    with get_context("spawn").Pool(workers) as pool:  # started before the clock, like warm workers
        pool.map(burn_loop, [1] * workers)
        t0 = time.perf_counter()
        pool.map(burn_loop, [n + i for i in range(steps)])
        pooled = time.perf_counter() - t0
    return serial, pooled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 steps of ~0.3 s, 1 repeat")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    steps, seconds, repeats = (4, 0.3, 1) if args.quick else (8, 1.0, 3)
    n = _calibrate(seconds)
    rows = []
    for _ in range(repeats):
        graph = parallel.build(k=steps, n=n)
        t0 = time.perf_counter()
        inline = run_graph(graph)
        inline_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pooled = run_graph(parallel.build(k=steps, n=n), executor="process", max_workers=args.workers)
        pool_s = time.perf_counter() - t0
        assert inline.ok and pooled.ok and inline.outputs == pooled.outputs
        serial, plain = _plain(steps, n, args.workers)
        rows.append({"inline": inline_s, "process": pool_s, "plain_serial": serial, "plain_pool": plain})
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    result = {
        "steps": steps,
        "seconds_per_step": seconds,
        "workers": args.workers,
        "repeats": rows,
        "median": med,
        "speedup": med["inline"] / med["process"],
        "ceiling": med["plain_serial"] / med["plain_pool"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipelines-parallel.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Pipelines: process-pool speed-up",
        "",
        f"`python benchmarks/pipelines/parallel.py{' --quick' if args.quick else ''}` — {result['when']}, "
        f"{steps} independent CPU-bound steps of ~{seconds} s, {args.workers} workers, median of {repeats}.",
        "",
        "| | wall | speed-up |",
        "|---|---|---|",
        f"| keel inline | {med['inline']:.2f} s | 1.00× |",
        f"| keel `executor=\"process\"` (pool start-up included) | {med['process']:.2f} s | "
        f"**{result['speedup']:.2f}×** (target ≥ 1.8×) |",
        f"| plain Python, one process | {med['plain_serial']:.2f} s | 1.00× |",
        f"| plain `multiprocessing` pool (warm) | {med['plain_pool']:.2f} s | {result['ceiling']:.2f}× "
        "(the machine's ceiling) |",
        "",
        f"Machine: {os.cpu_count()} CPUs, load average at the end {tuple(round(x, 2) for x in os.getloadavg())}.",
        "",
    ]
    (RESULTS / "pipelines-parallel.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if not args.quick:
        sys.path.insert(0, str(HERE.parent))
        from _docs import demote, write_section

        write_section("pipelines-parallel", "Pipelines: process pool", demote("\n".join(lines)))


if __name__ == "__main__":
    main()
