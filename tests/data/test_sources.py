from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from keel.data.errors import DataSourceError, MalformedFileError
from keel.data.sources import open_source
from keel.errors import InvalidInputError

FRAME = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None], "score": [0.5, 1.5, 2.5]})


@pytest.mark.parametrize(
    "data",
    [FRAME, FRAME.lazy(), FRAME.to_pandas(), FRAME.to_arrow()],
    ids=["polars", "lazy", "pandas", "arrow"],
)
def test_in_memory_frames_read_back_equal(data: object) -> None:
    source = open_source(data, name="t")
    assert source.kind == "frame"
    assert source.name == "t"
    assert list(source.schema()) == ["id", "name", "score"]
    assert source.lazy().collect().equals(FRAME)
    assert source.partitions() == [source]


def test_frame_fingerprint_follows_content_and_order() -> None:
    same = open_source(FRAME.clone()).fingerprint()
    assert open_source(FRAME).fingerprint() == same
    assert open_source(FRAME.reverse()).fingerprint() != same
    changed = FRAME.with_columns(
        pl.when(pl.col("id") == 2).then(9.0).otherwise(pl.col("score")).alias("score")
    )
    assert open_source(changed).fingerprint() != same


def test_parquet_file_glob_and_partitioned_folder(tmp_path: Path) -> None:
    FRAME.write_parquet(tmp_path / "one.parquet")
    parts = tmp_path / "parts"
    for i in range(3):
        (parts / f"day={i}").mkdir(parents=True)
        FRAME.write_parquet(parts / f"day={i}" / "data.parquet")
    one = open_source(tmp_path / "one.parquet")
    assert (one.kind, one.name) == ("parquet", "one.parquet")
    assert one.lazy().collect().equals(FRAME)

    folder = open_source(parts)
    assert folder.lazy().collect().height == 9
    assert "day" in folder.schema()
    assert len(folder.partitions()) == 3
    assert sum(p.lazy().collect().height for p in folder.partitions()) == 9

    glob = open_source(str(parts / "*" / "*.parquet"))
    assert glob.lazy().collect().height == 9
    fingerprint = glob.fingerprint()
    FRAME.head(1).write_parquet(parts / "day=0" / "data.parquet")
    assert open_source(str(parts / "*" / "*.parquet")).fingerprint() != fingerprint


def test_csv_reads_and_streams(tmp_path: Path) -> None:
    FRAME.write_csv(tmp_path / "a.csv")
    source = open_source(str(tmp_path / "a.csv"))
    assert source.kind == "csv"
    assert source.lazy().collect().equals(FRAME)


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="nope.parquet does not exist"):
        open_source(tmp_path / "nope.parquet")
    with pytest.raises(DataSourceError, match="no files match"):
        open_source(str(tmp_path / "*.csv"))


def test_empty_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataSourceError, match=r"e\.csv is empty"):
        open_source(tmp_path / "e.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataSourceError, match="no header"):
        open_source(tmp_path / "blank.csv")
    (tmp_path / "e.parquet").write_bytes(b"")
    with pytest.raises(DataSourceError, match="empty"):
        open_source(tmp_path / "e.parquet")


def test_malformed_csv_lines_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4\n5\n6,7\n")
    source = open_source(path)
    with pytest.raises(MalformedFileError) as info:
        source.check_structure()  # type: ignore[attr-defined]
    assert info.value.line == 4
    assert "bad.csv:4" in str(info.value)
    assert isinstance(info.value, InvalidInputError)

    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(MalformedFileError, match=r"bad\.csv:3: line has 3 fields"):
        open_source(path).check_structure()  # type: ignore[attr-defined]


def test_wrong_type_in_csv_is_located(tmp_path: Path) -> None:
    path = tmp_path / "typed.csv"
    rows = ["x,y"] + [f"{i},{i}" for i in range(20_000)] + ["oops,1"]
    path.write_text("\n".join(rows) + "\n")
    source = open_source(path)
    with pytest.raises(pl.exceptions.ComputeError) as info:
        source.lazy().collect()
    located = source.explain(info.value)
    assert isinstance(located, MalformedFileError)
    assert located.line == 20_002
    assert located.column == "x"
    assert "'oops'" in str(located)


def test_unknown_objects_and_extensions(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="cannot read data of type list"):
        open_source([1, 2])
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataSourceError, match="neither Parquet nor CSV"):
        open_source(tmp_path / "x.json")


def test_sqlite_table(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE events (id INTEGER, name TEXT)")
        connection.executemany("INSERT INTO events VALUES (?, ?)", [(1, "a"), (2, None)])
    source = open_source(f"sqlite:///{db}?table=events")
    assert (source.kind, source.name) == ("sql", "events")
    assert source.lazy().collect().to_dict(as_series=False) == {"id": [1, 2], "name": ["a", None]}
    assert len(source.fingerprint()) == 64
    with pytest.raises(DataSourceError, match="table 'missing' not found"):
        open_source(f"sqlite:///{db}?table=missing").lazy()
    with pytest.raises(DataSourceError, match="names no table"):
        open_source(f"sqlite:///{db}")
    with pytest.raises(DataSourceError, match="not a plain identifier"):
        open_source(f"sqlite:///{db}?table=x;drop")


def test_duckdb_table(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with duckdb.connect(str(db)) as connection:
        connection.execute("CREATE TABLE t AS SELECT range AS id, range * 2.0 AS v FROM range(5)")
    source = open_source(f"duckdb:///{db}?table=t")
    assert source.lazy().collect()["v"].sum() == 20.0


def test_pandas_and_arrow_objects_are_not_copied_wrongly() -> None:
    frame = pd.DataFrame({"x": [1.0, float("nan"), float("inf")]})
    values = open_source(frame).lazy().collect()["x"].to_list()
    assert values[2] == float("inf")
    batch = pa.record_batch({"x": [1, 2]})
    assert open_source(batch).lazy().collect().height == 2


def test_import_keel_data_is_light() -> None:
    code = "import sys, keel.data; print(any(m in sys.modules for m in ('polars', 'duckdb', 'pyarrow')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_frame_of_python_objects_cannot_be_fingerprinted_and_says_so():
    import datetime

    import numpy as np
    import polars as pl
    import pytest

    from keel.data.errors import DataSourceError
    from keel.data.sources import open_source

    values = np.array([datetime.date(2020, 1, 1), object()], dtype=object)
    frame = pl.DataFrame({"d": pl.Series(values, dtype=pl.Object)})
    with pytest.raises(DataSourceError, match=r"columns \['d'\] hold Python objects"):
        open_source(frame).fingerprint()
