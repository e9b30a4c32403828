"""How search time grows with the number of AND-ed conditions in a filter.

PostgreSQL's planner once took minutes on a few hundred conditions (one semi-join each); this
script measures planning and execution of ``SqlStore.search_runs`` on a fresh store of ~1,000
runs with params, tags and metrics, for filters of growing length, ordered by a metric::

    python benchmarks/search_planning.py --url postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/search_planning.py --url sqlite            # a temporary SQLite file

On PostgreSQL it works in a fresh schema (dropped at the end) and every statement runs under a
60 s ``statement_timeout``, so a slow plan never outlives the script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from keel.store import schema as t
from keel.store import search
from keel.store.sql import SqlStore

RUNS = 1_000
KEYS = 50  # params, metrics and tags per run


@contextlib.contextmanager
def _store(url: str) -> Iterator[SqlStore]:
    if url == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            store = SqlStore(f"sqlite:///{Path(folder) / 'keel.db'}", crash_check=False)
            yield store
            store.close()
        return
    import psycopg

    schema = f"keel_bench{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in url else "?"
        store = SqlStore(f"{url}{separator}options=-csearch_path%3D{schema}%20-cstatement_timeout%3D60000")
        yield store
        store.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _fill(store: SqlStore) -> None:
    experiment = store.create_experiment("bench").experiment_id
    for i in range(RUNS):
        store.create_run(experiment, f"run-{i}")
    with store.engine.begin() as c:
        pks = list(c.execute(sa.select(t.runs.c.pk)).scalars())
        c.execute(
            t.params.insert(),
            [{"run_pk": pk, "key": f"p{k}", "value": str(k)} for pk in pks for k in range(KEYS)],
        )
        c.execute(
            t.tags.insert(), [{"run_pk": pk, "key": f"t{k}", "value": "x"} for pk in pks for k in range(KEYS)]
        )
        c.execute(
            t.latest_metrics.insert(),
            [
                {
                    "run_pk": pk,
                    "key": f"m{k}",
                    "value": float(pk % 97 + k),
                    "special": 0,
                    "step": 0,
                    "timestamp": 0,
                }
                for pk in pks
                for k in range(KEYS)
            ],
        )
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("ANALYZE")


def _filter(terms: int) -> str:
    """``terms`` conditions AND-ed, a third each on metrics, params and tags (all true)."""
    parts = []
    for i in range(terms):
        k = i // 3 % KEYS
        parts.append([f"metrics.m{k} >= 0", f"params.p{k} = '{k}'", f"tags.t{k} != 'y'"][i % 3])
    return " AND ".join(parts)


def _explain(store: SqlStore, statements: list[tuple[str, Any]]) -> dict[str, float]:
    """PostgreSQL's own planning and execution times of the search statement."""
    sql, params = next((s, p) for s, p in statements if "LIMIT" in s)
    with store.engine.connect() as c:
        raw = c.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        cursor.execute("SET jit = off")  # as SqlStore.search_runs does
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0][0]
    return {"plan_ms": plan["Planning Time"], "exec_ms": plan["Execution Time"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="sqlite", help="PostgreSQL URL, or 'sqlite'")
    parser.add_argument("--terms", default="1,10,50,100,200,500", help="condition counts to measure")
    args = parser.parse_args()
    search.MAX_FILTER_TERMS = 10_000  # measure past the limit
    rows = []
    with _store(args.url) as store:
        _fill(store)
        statements: list[tuple[str, Any]] = []

        def capture(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            statements.append((statement, parameters))

        for terms in (int(n) for n in args.terms.split(",")):
            statements.clear()
            sa.event.listen(store.engine, "before_cursor_execute", capture)
            started = time.perf_counter()
            page = store.search_runs(
                filter_string=_filter(terms), order_by=["metrics.m1 DESC"], max_results=100
            )
            wall = (time.perf_counter() - started) * 1000
            sa.event.remove(store.engine, "before_cursor_execute", capture)
            row: dict[str, Any] = {"terms": terms, "wall_ms": round(wall, 1), "runs": len(page)}
            if store.engine.dialect.name == "postgresql":
                row.update({k: round(v, 1) for k, v in _explain(store, statements).items()})
            rows.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
