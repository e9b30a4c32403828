"""The keel pipelines under test (a module, so that keel can hash step sources for its cache keys)."""

from __future__ import annotations

import numpy as np

import keel


def plain_inc(x):
    return x + 1


def plain_make(mb):
    return np.zeros(int(mb * 2**20) // 8, dtype=np.float64)


def plain_square(i):
    return i * i


def plain_total(xs):
    return sum(xs)


def burn_loop(n):
    """CPU-bound pure Python work (holds the GIL): the kind of step a process pool speeds up."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


inc = keel.step(plain_inc)
make = keel.step(plain_make)
square = keel.step(plain_square)
total = keel.step(plain_total)
burn = keel.step(burn_loop)


@keel.pipeline
def chain(n: int = 20, x0: int = 0):
    x = x0
    for _ in range(n):
        x = inc(x)
    return x


@keel.pipeline
def array_chain(mb: float = 100.0, n: int = 20):
    x = make(mb)
    for _ in range(n):
        x = inc(x)
    return x


@keel.pipeline
def fan(n: int = 10_000):
    return total(square.map(range(n)))


@keel.pipeline
def parallel(k: int = 8, n: int = 1_000_000):
    return total([burn(n + i) for i in range(k)])


def bare_chain(n, x0=0):
    x = x0
    for _ in range(n):
        x = plain_inc(x)
    return x


def bare_array(mb, n):
    x = plain_make(mb)
    for _ in range(n):
        x = plain_inc(x)
    return x


def bare_fan(n):
    return plain_total([plain_square(i) for i in range(n)])
