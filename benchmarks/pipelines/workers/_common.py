"""Shared helpers for the pipeline benchmark workers (standard library only, importable from any venv)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


@contextmanager
def timed(into: dict[str, Any], key: str):
    w, c = clock()
    yield
    into[key] = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c}


def bare(fn: Callable[[], Any], loops: int) -> dict[str, float]:
    """Median wall/CPU of ``fn`` over ``loops`` calls (after one warm-up call)."""
    fn()
    walls, cpus = [], []
    for _ in range(loops):
        w, c = clock()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    walls.sort()
    cpus.sort()
    return {"wall": walls[len(walls) // 2], "cpu": cpus[len(cpus) // 2]}


def emit(result: dict[str, Any], real_stdout) -> None:
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()


def main(cases: dict[str, Callable[..., dict[str, Any]]]) -> None:
    """``worker.py CASE JSON_ARGS``: run one case, print one JSON object on the real stdout."""
    case, args = sys.argv[1], json.loads(sys.argv[2])
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the library prints goes to stderr
    sys.stdout = sys.stderr
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    try:
        out = cases[case](**args)
        out.setdefault("ok", True)
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        out = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:400]}"}
    emit(out, real_stdout)


def write_module(path: str, source: str) -> None:
    with open(path, "w") as f:
        f.write(source)
    if os.path.dirname(path) not in sys.path:
        sys.path.insert(0, os.path.dirname(path) or ".")
