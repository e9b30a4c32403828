"""One way in for every kind of tabular data keel can check, profile or compare.

:func:`open_source` accepts a pandas or polars DataFrame, a polars LazyFrame, a pyarrow Table, a Parquet or
CSV path, folder or glob, or a SQL table URL, and returns a :class:`Source`: a name, a kind, a polars
``LazyFrame`` (streaming-capable scans for files), a schema, a cheap fingerprint and its partitions.

SQL table URLs::

    duckdb:///path/to/file.duckdb?table=events
    sqlite:///path/to/file.db?table=events
    postgresql://user@host/db#events            (DuckDB's postgres extension must be installed)

Errors name what is wrong and where: a missing path, an empty file, a malformed CSV line (with its line
number), an object keel cannot read.
"""

from __future__ import annotations

import csv
import glob as globbing
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from keel.data.errors import DataSourceError, MalformedFileError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SQL_SCHEMES", "Source", "open_source"]

SQL_SCHEMES = ("duckdb", "sqlite", "postgresql", "postgres")
_GLOB_CHARS = re.compile(r"[*?\[]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class Source:
    """A table keel can read: ``name``, ``kind`` (frame | parquet | csv | sql) and how to scan it."""

    name: str
    kind: str

    def lazy(self) -> pl.LazyFrame:
        raise NotImplementedError

    def schema(self) -> dict[str, pl.DataType]:
        """Column names and polars types, in order, read without scanning the data."""
        try:
            return dict(self.lazy().collect_schema())
        except DataSourceError:
            raise
        except Exception as exc:  # polars raises several types for unreadable files
            raise self.explain(exc) from exc

    def fingerprint(self) -> str:
        raise NotImplementedError

    def partitions(self) -> list[Source]:
        """One source per file for globs and partitioned folders, otherwise ``[self]``."""
        return [self]

    def location(self) -> str:
        """Where the data lives, for messages and lineage (a path, a URL or ``<dataframe>``)."""
        return self.name

    def explain(self, exc: BaseException) -> Exception:
        """Turn an engine error raised while reading this source into an error naming the problem."""
        return DataSourceError(f"cannot read {self.location()}: {_first_line(exc)}", source=self.location())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.location()!r}>"


class FrameSource(Source):
    """An in-memory frame (polars, pandas, pyarrow) or a polars LazyFrame."""

    kind = "frame"

    def __init__(self, frame: pl.DataFrame | pl.LazyFrame, *, name: str):
        self.frame = frame
        self.name = name
        self._fingerprint: str | None = None

    def lazy(self) -> pl.LazyFrame:
        return self.frame.lazy()

    def location(self) -> str:
        return f"<dataframe {self.name}>"

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import polars as pl

            lazy = self.frame.lazy()
            schema = lazy.collect_schema()
            digest = hashlib.sha256(repr([(c, str(t)) for c, t in schema.items()]).encode())
            if len(schema):
                row_hash = pl.struct(pl.all()).hash(seed=0)
                index = pl.int_range(pl.len(), dtype=pl.UInt64) + 1
                try:
                    stats = lazy.select(
                        row_hash.sum().alias("sum"),
                        (row_hash * index).sum().alias("weighted"),
                        pl.len().alias("rows"),
                    ).collect()
                except pl.exceptions.PolarsError as exc:
                    unhashable = [c for c, t in schema.items() if t == pl.Object]
                    what = f"columns {unhashable} hold Python objects" if unhashable else _first_line(exc)
                    raise DataSourceError(
                        f"cannot fingerprint {self.location()}: {what}; convert them to a polars type "
                        "(dates, strings, numbers) first",
                        source=self.location(),
                    ) from None
                digest.update(repr(stats.row(0)).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class FileSource(Source):
    """Parquet or CSV: one file, a folder of files (hive partitions allowed) or a glob."""

    def __init__(self, kind: str, target: str, files: list[Path], *, name: str, folder: bool):
        self.kind = kind
        self.target = target
        self.files = files
        self.name = name
        self.folder = folder

    def location(self) -> str:
        return self.target

    def lazy(self) -> pl.LazyFrame:
        import polars as pl

        paths = [str(f) for f in self.files]
        if self.kind == "parquet":
            if self.folder:
                return pl.scan_parquet(self.target, hive_partitioning=True)
            return pl.scan_parquet(paths)
        return pl.scan_csv(paths, infer_schema_length=10_000)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def partitions(self) -> list[Source]:
        if len(self.files) == 1:
            return [self]
        return [
            FileSource(self.kind, str(f), [f], name=f"{self.name}/{f.name}", folder=False) for f in self.files
        ]

    def check_structure(self) -> None:
        """Fail with the file and line of the first CSV record whose field count differs from the header.

        polars fills short lines with nulls silently, so CSV input is checked with pyarrow's streaming
        reader first (it stops on both short and long lines); Parquet needs no such check.
        """
        if self.kind != "csv":
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv

        for file in self.files:
            try:
                reader = pacsv.open_csv(
                    file,
                    read_options=pacsv.ReadOptions(block_size=1 << 24),
                    convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=True),
                )
                for _ in reader:
                    pass
            except pa.ArrowInvalid as exc:
                raise _locate_ragged_line(file, exc) from exc

    def explain(self, exc: BaseException) -> Exception:
        if self.kind != "csv":
            return super().explain(exc)
        text = str(exc)
        parse = re.search(r"could not parse `(.*?)` as dtype `(.*?)` at column '(.*?)'", text)
        if parse:
            value, dtype, column = parse.groups()
            for file in self.files:
                line = _find_value(file, column, value)
                if line is not None:
                    return MalformedFileError(
                        f"value {value!r} in column {column!r} does not parse as {dtype} (the type inferred "
                        f"from earlier lines); fix the value or give the column a consistent type",
                        source=str(file),
                        line=line,
                        column=column,
                    )
            return MalformedFileError(
                f"value {value!r} in column {column!r} does not parse as {dtype}",
                source=self.target,
                column=column,
            )
        if "more fields" in text or "fewer fields" in text:
            for file in self.files:
                try:
                    FileSource("csv", str(file), [file], name=self.name, folder=False).check_structure()
                except MalformedFileError as located:
                    return located
        return super().explain(exc)


class SqlSource(Source):
    """A table in a SQL database, read through DuckDB (or Python's sqlite3 for SQLite files)."""

    kind = "sql"

    def __init__(self, url: str, *, scheme: str, database: str, table: str, name: str):
        self.url = url
        self.scheme = scheme
        self.database = database
        self.table = table
        self.name = name
        self._connection: Any = None

    def location(self) -> str:
        return self.url

    @property
    def dialect(self) -> str:
        """``sqlite`` when queries run on Python's sqlite3, else ``duckdb``."""
        return "sqlite" if self.scheme == "sqlite" else "duckdb"

    def quoted_table(self) -> str:
        return ".".join(_quote(part) for part in self.table.split("."))

    def connect(self) -> Any:
        """An open DB-API connection on which ``quoted_table()`` can be queried."""
        if self._connection is not None:
            return self._connection
        if self.scheme == "sqlite":
            import sqlite3

            if not Path(self.database).is_file():
                raise DataSourceError(f"SQLite database {self.database} does not exist", source=self.url)
            self._connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        else:
            import duckdb

            if self.scheme == "duckdb":
                if not Path(self.database).is_file():
                    raise DataSourceError(f"DuckDB database {self.database} does not exist", source=self.url)
                self._connection = duckdb.connect(self.database, read_only=True)
            else:
                connection = duckdb.connect()
                try:
                    connection.execute("LOAD postgres")
                except duckdb.Error as exc:
                    raise DataSourceError(
                        "reading PostgreSQL tables needs DuckDB's postgres extension; install it once with "
                        "`python -c \"import duckdb; duckdb.install_extension('postgres')\"`",
                        source=self.url,
                    ) from exc
                connection.execute(f"ATTACH {_literal(self.database)} AS pg (TYPE postgres, READ_ONLY)")
                self.table = f"pg.{self.table}"
                self._connection = connection
        self._check_table()
        return self._connection

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        connection = self.connect()
        cursor = connection.execute(sql)
        return list(cursor.fetchall())

    def _check_table(self) -> None:
        try:
            self._connection.execute(f"SELECT * FROM {self.quoted_table()} LIMIT 0")
        except Exception as exc:
            raise DataSourceError(
                f"table {self.table!r} not found in {self.url}: {_first_line(exc)}", source=self.url
            ) from exc

    def schema(self) -> dict[str, pl.DataType]:
        """Column types without reading the table (SQLite: inferred from the first 1,000 rows)."""
        import polars as pl

        connection = self.connect()
        if self.dialect == "duckdb":
            frame = connection.sql(f"SELECT * FROM {self.quoted_table()} LIMIT 0").pl()
        else:
            frame = pl.read_database(
                f"SELECT * FROM {self.quoted_table()} LIMIT 1000", connection, infer_schema_length=None
            )
        return dict(frame.schema)

    def lazy(self) -> pl.LazyFrame:
        import polars as pl

        connection = self.connect()
        sql = f"SELECT * FROM {self.quoted_table()}"
        if self.dialect == "duckdb":
            return connection.sql(sql).pl().lazy()  # type: ignore[no-any-return]
        return pl.read_database(sql, connection, infer_schema_length=None).lazy()

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.url}\0{self.table}".encode())
        if self.scheme in ("sqlite", "duckdb"):
            stat = Path(self.database).stat()
            digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}".encode())
        else:
            digest.update(repr(self.query(f"SELECT COUNT(*) FROM {self.quoted_table()}")).encode())
        return digest.hexdigest()


def open_source(data: Any, *, name: str | None = None) -> Source:
    """Wrap ``data`` as a :class:`Source`.

    >>> import polars as pl
    >>> open_source(pl.DataFrame({"x": [1, 2]}), name="numbers").kind
    'frame'
    """
    if isinstance(data, Source):
        if name is not None:
            data.name = name
        return data
    if isinstance(data, str | os.PathLike):
        text = os.fspath(data)
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in SQL_SCHEMES:
            return _open_sql(text, name=name)
        return _open_files(text, name=name)
    module = type(data).__module__.split(".")[0]
    if module in ("polars", "pandas", "pyarrow"):
        import polars as pl

        frame: pl.DataFrame | pl.LazyFrame
        if isinstance(data, pl.DataFrame | pl.LazyFrame):
            frame = data
        elif module == "pandas":
            frame = pl.from_pandas(data)
        else:
            try:
                converted = pl.from_arrow(data)
            except TypeError as exc:
                raise DataSourceError(f"cannot read a {type(data).__name__}: {exc}") from exc
            if not isinstance(converted, pl.DataFrame):
                raise DataSourceError(
                    f"a pyarrow {type(data).__name__} is not a table; pass a pyarrow.Table or RecordBatch"
                )
            frame = converted
        return FrameSource(frame, name=name or "dataframe")
    raise DataSourceError(
        f"cannot read data of type {type(data).__name__}; pass a pandas/polars DataFrame, a LazyFrame, "
        "a pyarrow Table, a Parquet/CSV path or glob, or a SQL table URL such as sqlite:///file.db?table=t"
    )


def _open_files(text: str, *, name: str | None) -> FileSource:
    path = Path(text).expanduser()
    folder = False
    if _GLOB_CHARS.search(text):
        files = sorted(Path(p) for p in globbing.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise DataSourceError(f"no files match the pattern {text!r}; check the path", source=text)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _kind_of(p) is not None)
        if not files:
            raise DataSourceError(f"folder {text} holds no .parquet or .csv files", source=text)
        folder = True
    elif path.exists():
        files = [path]
    else:
        raise DataSourceError(f"data path {text} does not exist; check the path", source=text)
    kinds = {_kind_of(f) for f in files}
    if None in kinds:
        odd = next(f for f in files if _kind_of(f) is None)
        raise DataSourceError(
            f"{odd} is neither Parquet nor CSV (by its extension); keel reads .parquet, .pq, .csv, .tsv",
            source=text,
        )
    if len(kinds) > 1:
        raise DataSourceError(f"{text} mixes Parquet and CSV files; point at one kind", source=text)
    kind = kinds.pop()
    assert kind is not None
    for file in files:
        if file.stat().st_size == 0:
            raise DataSourceError(
                f"{file} is empty (0 bytes); it holds no header and no rows", source=str(file)
            )
    if kind == "csv":
        for file in files:
            with file.open("rb") as handle:
                if not handle.read(1 << 16).strip():
                    raise DataSourceError(f"{file} is empty: it holds no header line", source=str(file))
    default_name = path.name if not _GLOB_CHARS.search(path.name) else path.parent.name
    return FileSource(kind, text, files, name=name or default_name or text, folder=folder)


def _kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    return None


def _open_sql(url: str, *, name: str | None) -> SqlSource:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    table = parts.fragment or (query.get("table") or [""])[0]
    if not table:
        raise DataSourceError(
            f"SQL URL {url!r} names no table; add '?table=NAME' (or '#NAME' for postgresql://)", source=url
        )
    if not _IDENT.match(table):
        raise DataSourceError(
            f"table name {table!r} in {url!r} is not a plain identifier (letters, digits, _, schema.table)",
            source=url,
        )
    if scheme in ("sqlite", "duckdb"):
        # SQLAlchemy's convention: three slashes for a relative path, four for an absolute one
        database = parts.netloc + parts.path
        if database.startswith("//"):
            database = database[1:]
        elif database.startswith("/"):
            relative = database[1:]
            database = relative if Path(relative).exists() or not Path(database).exists() else database
        if not database:
            raise DataSourceError(f"SQL URL {url!r} names no database file", source=url)
    else:
        database = url.split("#", 1)[0]
        scheme = "postgresql"
    return SqlSource(url, scheme=scheme, database=database, table=table, name=name or table)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _records(file: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line number, fields) per CSV record."""
    delimiter = "\t" if file.suffix.lower() == ".tsv" else ","
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        start = 1
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1


def _locate_ragged_line(file: Path, exc: BaseException) -> MalformedFileError:
    expected: int | None = None
    for line, fields in _records(file):
        if expected is None:
            expected = len(fields)
            continue
        if not fields:
            continue
        if len(fields) != expected:
            return MalformedFileError(
                f"line has {len(fields)} fields but the header has {expected}; fix or remove the line",
                source=str(file),
                line=line,
            )
    return MalformedFileError(f"malformed CSV: {_first_line(exc)}", source=str(file))


def _find_value(file: Path, column: str, value: str) -> int | None:
    index: int | None = None
    for line, fields in _records(file):
        if index is None:
            if column not in fields:
                return None
            index = fields.index(column)
            continue
        if index < len(fields) and fields[index] == value:
            return line
    return None
