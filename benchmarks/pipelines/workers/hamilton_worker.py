"""Hamilton worker: a generated module of n functions s1..sn, each taking the previous one's output."""

from __future__ import annotations

import importlib
import os
from typing import Any

from _common import bare, main, timed, write_module


def _module(n: int, name: str):
    lines = ["def s1(x0: int) -> int:\n    return x0 + 1\n"]
    lines += [f"def s{i}(s{i - 1}: int) -> int:\n    return s{i - 1} + 1\n" for i in range(2, n + 1)]
    write_module(os.path.join(os.getcwd(), f"{name}.py"), "\n".join(lines))
    return importlib.import_module(name)


def _bare(mod, n):
    fns = [getattr(mod, f"s{i}") for i in range(1, n + 1)]

    def run():
        x = 0
        for f in fns:
            x = f(x)
        return x

    return run


def overhead(n: int, bare_loops: int = 2000) -> dict[str, Any]:
    from hamilton import driver

    mod = _module(n, f"hchain{n}")
    out: dict[str, Any] = {"steps": n}
    out["bare"] = bare(_bare(mod, n), bare_loops)
    with timed(out, "first"):  # build the driver + execute
        dr = driver.Builder().with_modules(mod).build()
        res = dr.execute([f"s{n}"], inputs={"x0": 0})
    with timed(out, "warm"):
        res2 = dr.execute([f"s{n}"], inputs={"x0": 0})
    assert res[f"s{n}"] == res2[f"s{n}"] == n
    # caching (Hamilton >= 1.80): a cached driver, run twice; the second run is the cached rerun
    cdr = driver.Builder().with_modules(mod).with_cache(path=os.path.join(os.getcwd(), "hcache")).build()
    with timed(out, "cache_first"):
        cdr.execute([f"s{n}"], inputs={"x0": 0})
    with timed(out, "cached"):
        res3 = cdr.execute([f"s{n}"], inputs={"x0": 0})
    assert res3[f"s{n}"] == n
    return out


def chain_long(n: int) -> dict[str, Any]:
    from hamilton import driver

    mod = _module(n, f"hchain{n}")
    out: dict[str, Any] = {"steps": n}
    with timed(out, "build"):
        dr = driver.Builder().with_modules(mod).build()
    with timed(out, "run"):
        res = dr.execute([f"s{n}"], inputs={"x0": 0})
    assert res[f"s{n}"] == n
    return out


if __name__ == "__main__":
    main({"overhead": overhead, "chain_long": chain_long})
