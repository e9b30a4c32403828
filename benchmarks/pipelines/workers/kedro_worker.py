"""Kedro worker: n nodes d0 -> d1 -> ... -> dn in memory, SequentialRunner (Kedro has no step cache)."""

from __future__ import annotations

from typing import Any

from _common import bare, main, timed


def inc(x):
    return x + 1


def _run(n):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    pipe = pipeline([node(inc, f"d{i}", f"d{i + 1}", name=f"s{i + 1}") for i in range(n)])
    catalog = DataCatalog({"d0": MemoryDataset(0), f"d{n}": MemoryDataset()})
    SequentialRunner().run(pipe, catalog)
    return catalog.load(f"d{n}")


def overhead(n: int, bare_loops: int = 2000) -> dict[str, Any]:
    def plain():
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    out: dict[str, Any] = {"steps": n}
    out["bare"] = bare(plain, bare_loops)
    with timed(out, "first"):
        r = _run(n)
    with timed(out, "warm"):
        r2 = _run(n)
    assert r == r2 == n, (r, r2)
    return out


def chain_long(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": n}
    with timed(out, "run"):  # build + run
        assert _run(n) == n
    return out


if __name__ == "__main__":
    main({"overhead": overhead, "chain_long": chain_long})
