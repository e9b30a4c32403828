"""Prefect worker: a flow calling n tasks in sequence, against Prefect's local (ephemeral) server.

PREFECT_HOME points into the fresh folder. The cached variant uses tasks with
cache_policy=INPUTS + TASK_SOURCE and persisted results (Prefect's default policy includes the flow
run id, so nothing would be reused across runs)."""

from __future__ import annotations

from typing import Any

from _common import bare, main, timed


def plain_inc(x):
    return x + 1


def _flows(n):
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    inc = task(plain_inc, name="inc")
    cinc = task(plain_inc, name="cinc", cache_policy=INPUTS + TASK_SOURCE, persist_result=True)

    @flow(name="chain")
    def chain(x0: int = 0):
        x = x0
        for _ in range(n):
            x = inc(x)
        return x

    @flow(name="cached_chain")
    def cached_chain(x0: int = 0):
        x = x0
        for _ in range(n):
            x = cinc(x)
        return x

    return chain, cached_chain


def overhead(n: int, bare_loops: int = 2000) -> dict[str, Any]:
    def plain():
        x = 0
        for _ in range(n):
            x = plain_inc(x)
        return x

    out: dict[str, Any] = {"steps": n}
    out["bare"] = bare(plain, bare_loops)
    chain, cached_chain = _flows(n)
    with timed(out, "first"):  # includes starting the local server / creating its database
        r = chain()
    with timed(out, "warm"):
        r2 = chain()
    with timed(out, "cache_first"):
        r3 = cached_chain()
    with timed(out, "cached"):
        r4 = cached_chain()
    assert r == r2 == r3 == r4 == n, (r, r2, r3, r4)
    return out


def chain_long(n: int) -> dict[str, Any]:
    chain, _ = _flows(n)
    out: dict[str, Any] = {"steps": n}
    with timed(out, "run"):
        assert chain() == n
    return out


if __name__ == "__main__":
    main({"overhead": overhead, "chain_long": chain_long})
