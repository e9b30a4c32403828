"""ZenML worker: a pipeline of n `inc` steps in sequence on the default local stack, with the ZenML
config and SQLite store in the fresh folder (ZENML_CONFIG_PATH). Step caching is ZenML's default, so the
second run of the same pipeline is the cached rerun."""

from __future__ import annotations

from typing import Any

from _common import bare, main, timed


def plain_inc(x: int) -> int:
    return x + 1


def _pipeline(n: int, name: str):
    from zenml import pipeline, step

    inc = step(plain_inc)

    @pipeline(name=name)
    def chain():
        x = inc(0)
        for _ in range(n - 1):
            x = inc(x)
        return x

    return chain


def _value(run, n):
    from zenml.client import Client

    run = Client().get_pipeline_run(run.id)
    last = run.steps[sorted(run.steps, key=lambda s: (len(s), s))[-1]]
    return last.output.load()


def overhead(n: int, bare_loops: int = 2000) -> dict[str, Any]:
    def plain():
        x = 0
        for _ in range(n):
            x = plain_inc(x)
        return x

    out: dict[str, Any] = {"steps": n, "bare": bare(plain, bare_loops)}
    chain = _pipeline(n, f"chain{n}")
    with timed(out, "first"):  # includes creating the local store
        r1 = chain()
    with timed(out, "cached"):
        r2 = chain()
    with timed(out, "warm"):
        r3 = chain.with_options(enable_cache=False)()
    out["values"] = [_value(r, n) for r in (r1, r2, r3)]
    return out


if __name__ == "__main__":
    main({"overhead": overhead})
