"""A vectorised HyperLogLog for numeric columns: numpy in, mergeable registers out.

DataSketches' HLL and CPC sketches take one value per Python call (about 140 ns each), which is too slow for
a million-row numeric column. This sketch hashes a whole numpy array at once with a fixed 64-bit mixer (the
MurmurHash3 finaliser over the value's IEEE-754 bits, so the hash never changes between versions of keel,
numpy or polars), keeps 2**12 registers (relative standard error about 1.6 %), merges by element-wise
maximum, and estimates with Ertl's improved raw estimator ("New cardinality estimation algorithms for
HyperLogLog sketches", 2017), which needs no bias tables and is accurate from one distinct value upwards.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

__all__ = ["HyperLogLog"]

P = 12  # index bits: 4096 registers
Q = 64 - P  # bits left for the rank
M = 1 << P
BLOCK = 16_384  # values hashed at a time
_SEED = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_LOW = np.uint64((1 << Q) - 1)


def hash_values(values: Any) -> Any:
    """64-bit hashes of a float64 array (``-0.0`` and ``0.0`` hash alike)."""
    bits = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)
    with np.errstate(over="ignore"):
        h = bits ^ _SEED
        h ^= h >> _S33
        h *= _MIX1
        h ^= h >> _S33
        h *= _MIX2
        h ^= h >> _S33
    return h


class HyperLogLog:
    """Distinct-count sketch over float64 values; ``update`` takes whole arrays."""

    __slots__ = ("registers",)

    def __init__(self, registers: Any = None):
        self.registers = np.zeros(M, dtype=np.uint8) if registers is None else registers

    def update(self, values: Any) -> None:
        if len(values) == 0:
            return
        # blocks small enough for the temporaries to stay in the CPU cache: about 5x faster than whole arrays
        for start in range(0, len(values), BLOCK):
            h = hash_values(values[start : start + BLOCK])
            # register index in the top P bits; rank = leading zeros of the low Q bits, plus one (the low
            # bits are < 2**52, so exact as doubles for frexp)
            index = (h >> np.uint64(Q)).view(np.int64)
            _, exponent = np.frexp((h & _LOW).view(np.int64).astype(np.float64))
            np.maximum.at(self.registers, index, ((Q + 1) - exponent).astype(np.uint8))

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        return HyperLogLog(np.maximum(self.registers, other.registers))

    def estimate(self) -> float:
        counts = np.bincount(self.registers, minlength=Q + 2).astype(np.float64)
        if counts[0] == M:
            return 0.0
        z = M * _tau(1.0 - counts[Q + 1] / M)
        for k in range(Q, 0, -1):
            z = 0.5 * (z + counts[k])
        z += M * _sigma(counts[0] / M)
        return float(M * M / (2.0 * math.log(2.0)) / z)

    def to_bytes(self) -> bytes:
        return zlib.compress(self.registers.tobytes(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> HyperLogLog:
        registers = np.frombuffer(zlib.decompress(data), dtype=np.uint8).copy()
        if registers.size != M:
            raise ValueError(f"a HyperLogLog needs {M} registers, got {registers.size}")
        return cls(registers)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0
