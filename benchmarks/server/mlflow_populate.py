"""Fill an MLflow SQLite store with N runs for the server search benchmark (runs in the MLflow venv).

Usage: python mlflow_populate.py STORE_URI N_RUNS      (sqlite:///… or postgresql://…)

MLflow's client needs ~45 ms per run here (create_run + log_batch + set_terminated), so 10,000 runs
would take minutes. Instead one run is created through MLflow's own store (which also creates the
schema), and N copies of its rows are inserted with SQLAlchemy in one transaction: every column MLflow
wrote is kept, only the ids, names, times, params and metrics differ. The data set is the one of
benchmarks/workers/_common.py ``search_dataset`` (10 params, 5 metrics per run), and the result line
is JSON: {"experiment_id": ..., "runs": N, "seconds": ...}.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))

import _common as c


def main() -> None:
    uri, n_runs = sys.argv[1], int(sys.argv[2])
    import sqlalchemy as sa
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("search-bench")
    exp_id = experiment.experiment_id if experiment else client.create_experiment("search-bench")
    template = client.create_run(exp_id, run_name="template").info.run_id
    client.log_batch(template, metrics=[Metric("m0", 0.1, 1, 0)], params=[Param("p0", "x")])
    client.set_terminated(template)
    engine = sa.create_engine(uri)
    meta = sa.MetaData()
    tables = {name: sa.Table(name, meta, autoload_with=engine) for name in _TABLES}

    def rows(name: str) -> list[dict[str, Any]]:
        table = tables[name]
        with engine.connect() as con:
            return [
                dict(r._mapping) for r in con.execute(sa.select(table).where(table.c.run_uuid == template))
            ]

    run_row, metric_row = rows("runs")[0], rows("metrics")[0]
    latest_row, param_row, tag_rows = rows("latest_metrics")[0], rows("params")[0], rows("tags")
    new: dict[str, list[dict[str, Any]]] = {name: [] for name in _TABLES}
    stamp = c.now_ms()
    for i, (name, run_params, run_metrics) in enumerate(c.search_dataset(n_runs)):
        run_uuid = uuid.uuid4().hex
        new["runs"].append(
            run_row
            | {
                "run_uuid": run_uuid,
                "name": name,
                "start_time": stamp + i,
                "end_time": stamp + i + 1,
                "artifact_uri": str(run_row["artifact_uri"]).replace(template, run_uuid),
            }
        )
        for key, value in run_metrics.items():
            point = {"run_uuid": run_uuid, "key": key, "value": value, "timestamp": stamp}
            new["metrics"].append(metric_row | point)
            new["latest_metrics"].append(latest_row | point)
        new["params"].extend(
            param_row | {"run_uuid": run_uuid, "key": k, "value": v} for k, v in run_params.items()
        )
        for tag in tag_rows:
            new["tags"].append(
                tag
                | {"run_uuid": run_uuid, "value": name if tag["key"] == "mlflow.runName" else tag["value"]}
            )
    with engine.begin() as con:
        for name in reversed(_TABLES):  # children first
            con.execute(sa.delete(tables[name]).where(tables[name].c.run_uuid == template))
        for name in _TABLES:
            con.execute(sa.insert(tables[name]), new[name])
    engine.dispose()
    result = {
        "experiment_id": exp_id,
        "runs": n_runs,
        "matching": c.search_expected(n_runs),
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(result))


#: MLflow's tables that hold a run's rows, parents first
_TABLES = ("runs", "metrics", "latest_metrics", "params", "tags")


if __name__ == "__main__":
    main()
