"""Steps importable by worker processes (the process executor needs module-level steps)."""

from __future__ import annotations

import os
import time

from keel.pipelines import pipeline, step

CALLS: dict[str, int] = {}


def burn(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


@step(cache=False)
def spin(iterations: int, seed: int = 0) -> int:
    return burn(iterations) + seed


@step
def collect(values: list[int]) -> int:
    return len(values)


@step
def boom(x: int) -> int:
    raise ValueError(f"boom on {x}")


@step
def add_one(x: int) -> int:
    return x + 1


@step(retries=2)
def flaky(x: int, key: str) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] < 2:
        raise RuntimeError("transient failure")
    return x * 10


@step(timeout=0.5)
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


@step
def pid(x: int) -> int:
    return os.getpid()


@pipeline
def four_spins(iterations: int = 1000) -> object:
    return collect([spin(iterations, seed=i) for i in range(4)])


@pipeline
def partly_failing() -> object:
    bad = boom(1)
    good = add_one(add_one(1))
    return add_one(bad), good


@step(cache=False)
def die(x: int) -> int:
    os._exit(3)  # a worker process that vanishes mid-step (OOM killer, segfault)


@pipeline
def with_dying_worker(n: int = 2):
    return {"gone": die(n), "fine": add_one(n)}


@step(cache=False)
def nap(seconds: float, seed: int = 0) -> int:
    """Sleeps (so it overlaps with others whatever the CPU load) and says which process ran it."""
    time.sleep(seconds)
    return os.getpid()


@pipeline
def four_naps(seconds: float = 0.5) -> object:
    return [nap(seconds, seed=i) for i in range(4)]


def plain_triple(x: int) -> int:
    return 3 * x


# a step made from a plain function and bound to another name: workers find it through the function
triple = step(plain_triple)


@pipeline
def tripled(n: int = 3) -> object:
    return [triple(i) for i in range(n)]
