"""Metaflow worker: a generated FlowSpec with n steps (start, s1.., end), each adding 1 to an artifact,
run with `python flow.py run` (Metaflow's way: every step is its own process) and the local datastore
in the fresh folder. Timed: the whole command, wall and CPU of the child processes. Metaflow has no
step cache (`resume` re-runs from a failed step), so there is no cached-rerun figure."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from typing import Any

from _common import bare, main


def _flow_source(n: int) -> str:
    names = ["start"] + [f"s{i}" for i in range(1, n - 1)] + ["end"]
    lines = ["from metaflow import FlowSpec, step", "", "", f"class Chain{n}(FlowSpec):"]
    for i, name in enumerate(names):
        body = "self.x = 1" if i == 0 else "self.x = self.x + 1"
        lines += ["    @step", f"    def {name}(self):", f"        {body}"]
        if name != "end":
            lines += [f"        self.next(self.{names[i + 1]})"]
        lines += [""]
    lines += ["", "if __name__ == '__main__':", f"    Chain{n}()", ""]
    return "\n".join(lines)


def _run(path: str) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, path, "--quiet", "run"], stdout=sys.stderr, stderr=sys.stderr)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"metaflow run exited {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def overhead(n: int, bare_loops: int = 2000) -> dict[str, Any]:
    def inc(x):
        return x + 1

    def plain():
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    path = os.path.join(os.getcwd(), f"chain{n}.py")
    with open(path, "w") as f:
        f.write(_flow_source(n))
    out: dict[str, Any] = {"steps": n, "bare": bare(plain, bare_loops)}
    out["first"] = _run(path)
    out["warm"] = _run(path)
    return out


def chain_long(n: int) -> dict[str, Any]:
    path = os.path.join(os.getcwd(), f"chain{n}.py")
    with open(path, "w") as f:
        f.write(_flow_source(n))
    return {"steps": n, "run": _run(path)}


if __name__ == "__main__":
    main({"overhead": overhead, "chain_long": chain_long})
