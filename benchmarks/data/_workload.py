"""The shared workload of the data-validation benchmark: generated data and the 17-check suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CATEGORIES = ["books", "games", "garden", "music", "tools"]
COUNTRIES = [f"C{i:02d}" for i in range(20)]
CODE_PATTERN = r"^[A-Z]{2}-[0-9]{4}$"
EMAIL_PATTERN = r"^[a-z0-9._]+@[a-z0-9.]+\.[a-z]{2,}$"
COLUMNS = [
    "id",
    "amount",
    "quantity",
    "score",
    "category",
    "country",
    "code",
    "email",
    "created",
    "flag",
    "rating",
    "weight",
]


def generate(path: Path, rows: int, *, seed: int = 7, chunk: int = 5_000_000) -> Path:
    """Write ``rows`` rows × 12 columns of clean synthetic orders to a Parquet file (in chunks)."""
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    start = 0
    try:
        while start < rows:
            n = min(chunk, rows - start)
            ids = np.arange(start, start + n, dtype=np.int64)
            letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
            code = (
                pl.Series(letters[rng.integers(0, 26, n)])
                + pl.Series(letters[rng.integers(0, 26, n)])
                + "-"
                + pl.Series(rng.integers(1000, 10000, n)).cast(pl.String)
            )
            frame = pl.DataFrame(
                {
                    "id": ids,
                    "amount": rng.gamma(2.0, 50.0, n),
                    "quantity": rng.integers(1, 100, n).astype(np.int32),
                    "score": rng.uniform(0, 1, n),
                    "category": pl.Series(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n)]),
                    "country": pl.Series(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)]),
                    "code": code,
                    "email": pl.Series(ids)
                    .cast(pl.String)
                    .map_elements(lambda i: f"user{i}@example.com", return_dtype=pl.String)
                    if n < 1000
                    else ("user" + pl.Series(ids).cast(pl.String) + "@example.com"),
                    "created": pl.Series(1_700_000_000_000_000 + ids * 1_000_000).cast(pl.Datetime("us")),
                    "flag": rng.random(n) < 0.5,
                    "rating": rng.integers(1, 6, n).astype(np.int8),
                    "weight": rng.normal(10.0, 2.0, n),
                }
            ).select(COLUMNS)
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
            writer.write_table(table, row_group_size=1_000_000)
            start += n
    finally:
        if writer is not None:
            writer.close()
    return path


def suite(rows: int) -> dict[str, Any]:
    """The 17 checks: schema, not-null, ranges, unique id, sets, regex, mean, median, row count, length."""
    return {
        "keel_suite": 1,
        "name": "orders-17",
        "id_columns": ["id"],
        "checks": [
            {"columns_match": {"columns": COLUMNS}},
            {"column_types": {"types": {"id": "int64", "amount": "float64", "category": "string"}}},
            {"not_null": {"column": "id"}},
            {"not_null": {"column": "amount"}},
            {"not_null": {"column": "category"}},
            {"unique": {"column": "id"}},
            {"between": {"column": "amount", "min": 0, "max": 10_000}},
            {"between": {"column": "quantity", "min": 1, "max": 99}},
            {"between": {"column": "score", "min": 0, "max": 1}},
            {"in_set": {"column": "category", "values": CATEGORIES}},
            {"in_set": {"column": "country", "values": COUNTRIES}},
            {"matches_regex": {"column": "code", "pattern": CODE_PATTERN}},
            {"matches_regex": {"column": "email", "pattern": EMAIL_PATTERN}},
            {"length_between": {"column": "code", "min": 7, "max": 7}},
            {"mean_between": {"column": "amount", "min": 90, "max": 110}},
            {"median_between": {"column": "amount", "min": 60, "max": 100}},
            {"row_count_between": {"min": rows, "max": rows}},
        ],
    }
