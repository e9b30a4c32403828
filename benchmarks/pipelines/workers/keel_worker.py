"""keel worker: one case per process (see ../run.py). Env: KEEL_TRACKING_URI/ARTIFACT_URI point into a fresh folder."""

from __future__ import annotations

import time
from typing import Any

from _common import bare, main, timed


def _tracked(pipe, params, **options):
    res = pipe.run(params, progress=False, **options)
    assert res.ok, res.failed
    return res


def _warm_store() -> None:
    """One tracked one-step run: creates the store, so a case measures running, not store creation
    (which the overhead case's first run reports)."""
    import keel_steps as k

    _tracked(k.chain, {"n": 1})


def _import_tracking() -> None:
    """keel imports lazily; import what a tracked run uses, as the peers' workers import theirs."""
    import importlib

    for module in ("keel.pipelines.tracking", "keel.store.sql", "keel.tracking.client"):
        importlib.import_module(module)


def _hits(res) -> int:
    return sum(1 for r in res.nodes.values() if r.cache_hit)


def overhead(n: int, mode: str, bare_loops: int = 2000) -> dict[str, Any]:
    import keel_steps as k

    from keel.pipelines import run_graph

    out: dict[str, Any] = {"steps": n, "mode": mode}
    out["bare"] = bare(lambda: k.bare_chain(n), bare_loops)
    if mode == "untracked":
        with timed(out, "first"):
            res = run_graph(k.chain.build(n=n))
        with timed(out, "warm"):
            res2 = run_graph(k.chain.build(n=n))
        assert res.outputs == res2.outputs == n
        return out
    _import_tracking()
    with timed(out, "first"):  # fresh process, fresh store: includes creating the store
        res = _tracked(k.chain, {"n": n})
    with timed(out, "cached"):  # second run, same store: every step a cache hit
        res2 = _tracked(k.chain, {"n": n})
    with timed(out, "warm"):  # third run, cache off: steady-state tracked cost
        res3 = _tracked(k.chain, {"n": n}, cache=False)
    assert res.outputs == res2.outputs == res3.outputs == n
    out["cache_hits"] = _hits(res2)
    out["first_hits"] = _hits(res)
    return out


def chain_long(n: int, tracked: bool = False) -> dict[str, Any]:
    import keel_steps as k

    from keel.pipelines import run_graph

    out: dict[str, Any] = {"steps": n}
    with timed(out, "build"):
        graph = k.chain.build(n=n)
    with timed(out, "run"):
        res = run_graph(graph)
    assert res.outputs == n
    if tracked:
        _warm_store()
        with timed(out, "tracked"):
            res = _tracked(k.chain, {"n": n})
        assert res.outputs == n
    out["bare"] = bare(lambda: k.bare_chain(n), 50)
    return out


def array(mb: float, n: int, mode: str) -> dict[str, Any]:
    import keel_steps as k

    from keel.pipelines import run_graph

    out: dict[str, Any] = {"mb": mb, "steps": n, "mode": mode}
    walls, cpus = [], []
    for _ in range(3):  # bare: median of 3, measured in the same process
        t0, c0 = time.perf_counter(), time.process_time()
        x = k.bare_array(mb, n)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del x
    out["bare"] = {"wall": sorted(walls)[1], "cpu": sorted(cpus)[1]}
    if mode == "untracked":
        with timed(out, "first"):
            res = run_graph(k.array_chain.build(mb=mb, n=n))
    else:
        _warm_store()
        with timed(out, "first"):
            res = _tracked(k.array_chain, {"mb": mb, "n": n})
    assert float(res.outputs[0]) == n
    return out


def fan(n: int, mode: str) -> dict[str, Any]:
    import keel_steps as k

    from keel.pipelines import run_graph

    out: dict[str, Any] = {"items": n, "mode": mode}
    out["bare"] = bare(lambda: k.bare_fan(n), 20)
    with timed(out, "build"):
        graph = k.fan.build(n=n)
    if mode != "untracked":
        _warm_store()
    if mode == "untracked":
        with timed(out, "first"):
            res = run_graph(graph)
    else:
        with timed(out, "first"):
            res = _tracked(k.fan, {"n": n})
    assert res.outputs == k.bare_fan(n)
    return out


if __name__ == "__main__":
    main({"overhead": overhead, "chain_long": chain_long, "array": array, "fan": fan})
