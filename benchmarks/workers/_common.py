"""Helpers shared by the benchmark workers (standard library only).

Every worker runs in the virtualenv of the tool it measures, in a fresh
process, with its current directory set to a private temp folder. It prints
exactly one JSON object on its real stdout; everything else the measured
library prints (logging, warnings, banners) is redirected to stderr, which the
runner keeps in a log file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

# The JSON result goes to this stream: a duplicate of the original stdout.
# fd 1 itself is pointed at stderr so that C-level writes and print() calls
# made by the measured library cannot corrupt the result line.
_RESULT_STREAM = None

Case = Callable[[dict[str, Any]], dict[str, Any]]


def _redirect_stdout() -> None:
    global _RESULT_STREAM
    sys.stdout.flush()
    _RESULT_STREAM = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)


def _emit(obj: dict[str, Any]) -> None:
    stream = _RESULT_STREAM or sys.__stdout__
    stream.write(json.dumps(obj, default=_json_default) + "\n")
    stream.flush()


def _json_default(o: Any) -> Any:
    try:
        return float(o)
    except Exception:
        return repr(o)


def proc_usage() -> dict[str, float]:
    """CPU (user+sys) and peak RSS of this whole process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "maxrss_mb": ru.ru_maxrss / 1024.0,
    }


def main(cases: dict[str, Case]) -> None:
    t_start = time.perf_counter()
    _redirect_stdout()
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(cases))
    parser.add_argument("--params", default="{}", help="JSON object of case parameters")
    args = parser.parse_args()
    params = json.loads(args.params)
    try:
        result = cases[args.case](params)
    except BaseException as exc:  # report anything, including SystemExit from a library
        _emit(
            {
                "ok": False,
                "case": args.case,
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": traceback.format_exc()[-6000:],
                "proc": proc_usage(),
            }
        )
        sys.stderr.flush()
        os._exit(1)
    result = dict(result)
    result.setdefault("ok", True)
    result["case"] = args.case
    result["proc"] = proc_usage()
    result["proc"]["process_wall_s"] = time.perf_counter() - t_start
    _emit(result)
    sys.stderr.flush()
    # Leave through the normal path so atexit handlers (background writers,
    # flushers) run: their cost is part of the process CPU the runner sees.


# ---------------------------------------------------------------- timing


class Span:
    """Wall (perf_counter) and CPU (process_time: all threads) of a block."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def __enter__(self) -> Span:
        self._w = time.perf_counter()
        self._c = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._w
        self.cpu_s = time.process_time() - self._c

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s}


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- data sets
# Both peers get the same data, generated here, so the stores hold the same
# rows and the same share of runs matches the search filter.

SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'a'"
SEARCH_ORDER_BY = ["metrics.m1 DESC"]


def search_dataset(
    n_runs: int, n_params: int = 10, n_metrics: int = 5, seed: int = 42
) -> Iterator[tuple[str, dict[str, str], dict[str, float]]]:
    """Runs of the search benchmark: ~50% have p0='a', ~50% have m0 > 0.5
    (independently, so ~25% match both)."""
    rng = random.Random(seed)
    for i in range(n_runs):
        params = {"p0": "a" if i % 2 == 0 else "b"}
        for p in range(1, n_params):
            params[f"p{p}"] = f"v{rng.randrange(1000)}"
        metrics = {f"m{m}": rng.random() for m in range(n_metrics)}
        yield f"run-{i:05d}", params, metrics


def search_expected(n_runs: int) -> int:
    return sum(1 for _, p, m in search_dataset(n_runs) if m["m0"] > 0.5 and p["p0"] == "a")


def ingest_keys(n_keys: int) -> list[str]:
    return [f"k{i}" for i in range(n_keys)]


# ---------------------------------------------------------------- barrier
# The concurrency case starts N processes that each import and initialise,
# then wait for a "go" file so the logging phases overlap as much as possible.


def barrier(ready_path: str, go_path: str, timeout_s: float = 600.0) -> float:
    with open(ready_path, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(go_path):
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal from the runner")
        time.sleep(0.002)
    return time.time()


def short_error(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    return msg.splitlines()[0][:300] if msg else type(exc).__name__


class ErrorTally:
    def __init__(self) -> None:
        self.count = 0
        self.samples: dict[str, int] = {}

    def add(self, stage: str, exc: BaseException) -> None:
        self.count += 1
        key = f"{stage}: {short_error(exc)}"
        if key in self.samples or len(self.samples) < 5:
            self.samples[key] = self.samples.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"errors": self.count, "error_samples": self.samples}


def workdir() -> str:
    return os.getcwd()


def hist_value(i: int) -> float:
    # cheap, deterministic, not constant (so min/max downsampling has work to do)
    return ((i * 7919) % 10007) / 10007.0


def sleep_with_cpu_trace(seconds: float) -> list[float]:
    """Sleep for `seconds`, recording this process's CPU time (since the start of
    the sleep) at every whole second, so the runner can separate start-up costs
    of a sampler from its steady state. One wake-up per second costs a few µs,
    the same with the sampler on or off."""
    t0, c0 = time.perf_counter(), time.process_time()
    trace = []
    whole = int(seconds)
    for i in range(1, whole + 1):
        time.sleep(max(0.0, t0 + i - time.perf_counter()))
        trace.append(time.process_time() - c0)
    rest = t0 + seconds - time.perf_counter()
    if rest > 0:
        time.sleep(rest)
    return trace
