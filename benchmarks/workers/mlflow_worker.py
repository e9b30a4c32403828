"""MLflow side of the benchmarks. Runs inside benchmarks/.venvs/mlflow.

Usage: python mlflow_worker.py CASE --params '{"n": 300, ...}'
The store is SQLite in the current directory (mlflow.db), artifacts in ./mlruns.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import _common as c

EXPERIMENT = "bench"


def _setup() -> Any:
    import mlflow

    db = os.path.join(os.getcwd(), "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    return mlflow


def _client() -> Any:
    from mlflow.tracking import MlflowClient

    mlflow = _setup()
    return mlflow, MlflowClient()


def _experiment_id(client: Any) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    return exp.experiment_id if exp is not None else client.create_experiment(EXPERIMENT)


# ---------------------------------------------------------------- info


def case_info(p: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md
    import platform

    versions = {}
    for dist in ("mlflow", "mlflow-skinny", "sqlalchemy", "alembic", "psutil", "numpy"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    import sqlite3

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "versions": versions,
    }


def case_init_store(p: dict[str, Any]) -> dict[str, Any]:
    """Create an empty, fully migrated store; the runner copies mlflow.db into
    each fresh work folder (running MLflow's migrations costs several CPU
    seconds per process and is not what is being measured)."""
    mlflow, client = _client()
    with c.Span() as span:
        client.search_experiments()
    return {"init": span.as_dict()}


# ---------------------------------------------------------------- 1. log_metric


def case_log_metric(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    n, chunk = int(p["n"]), int(p["chunk"])
    mlflow.set_experiment(EXPERIMENT)
    chunks_ns: list[int] = []
    perf_ns = time.perf_counter_ns
    log_metric = mlflow.log_metric
    with c.Span() as total:
        run = mlflow.start_run(run_name="log-metric")
        run_id = run.info.run_id
        with c.Span() as loop:
            i = 0
            for _ in range(n // chunk):
                t0 = perf_ns()
                for _ in range(chunk):
                    log_metric("loss", i * 0.001, step=i)
                    i += 1
                chunks_ns.append(perf_ns() - t0)
        with c.Span() as end:
            mlflow.end_run()
    stored = len(client.get_metric_history(run_id, "loss"))
    per_call = [ns / chunk / 1e3 for ns in chunks_ns]
    return {
        "n": n,
        "chunk": chunk,
        "stored": stored,
        "per_call_us_median": c.median(per_call),
        "per_call_us_chunks": per_call,
        "loop": loop.as_dict(),
        "end": end.as_dict(),
        "total": total.as_dict(),
        # everything from start_run to end_run returning, per call
        "cpu_us_per_call": loop.cpu_s / n * 1e6,
        "wall_us_per_call": loop.wall_s / n * 1e6,
        "total_cpu_us_per_call": total.cpu_s / n * 1e6,
        "total_wall_us_per_call": total.wall_s / n * 1e6,
    }


# ---------------------------------------------------------------- 2. ingest


def case_ingest_batch(p: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Metric

    mlflow, client = _client()
    points, batch, n_keys = int(p["points"]), int(p["batch"]), int(p.get("keys", 10))
    keys = c.ingest_keys(n_keys)
    exp_id = _experiment_id(client)
    run_id = client.create_run(exp_id, run_name="ingest-batch").info.run_id
    ts = c.now_ms()
    with c.Span() as build:
        batches = []
        for start in range(0, points, batch):
            batches.append(
                [
                    Metric(keys[i % n_keys], float(i), ts + i // n_keys, i // n_keys)
                    for i in range(start, min(points, start + batch))
                ]
            )
    with c.Span() as ingest:
        for metrics in batches:
            client.log_batch(run_id, metrics=metrics)
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, keys[0]))
    return {
        "points": points,
        "batch": batch,
        "stored_key0": stored,
        "expected_key0": len(range(0, points, n_keys)),
        "build": build.as_dict(),
        "ingest": ingest.as_dict(),
        "points_per_s": points / ingest.wall_s,
        "cpu_us_per_point": ingest.cpu_s / points * 1e6,
        "wall_us_per_point": ingest.wall_s / points * 1e6,
    }


# ---------------------------------------------------------------- 3. history


def case_history_populate(p: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Metric

    mlflow, client = _client()
    points, batch = int(p["points"]), int(p["batch"])
    exp_id = _experiment_id(client)
    run_id = client.create_run(exp_id, run_name=f"history-{points}").info.run_id
    ts = c.now_ms()
    with c.Span() as span:
        for start in range(0, points, batch):
            client.log_batch(
                run_id,
                metrics=[
                    Metric("loss", c.hist_value(i), ts + i, i)
                    for i in range(start, min(points, start + batch))
                ],
            )
    client.set_terminated(run_id)
    return {"run_id": run_id, "points": points, "populate": span.as_dict()}


def case_history_query(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    run_id, key = p["run_id"], p.get("key", "loss")
    exp_id = _experiment_id(client)
    with c.Span() as warm:  # opens the store; not part of the measure
        client.search_runs([exp_id], max_results=1)
    calls = []
    length = None
    for _ in range(int(p.get("calls", 1))):
        with c.Span() as span:
            h = client.get_metric_history(run_id, key)
        length = len(h)
        calls.append(span.as_dict())
    return {
        "len": length,
        "expected": p.get("expected"),
        "warmup": warm.as_dict(),
        "wall_s": calls[0]["wall_s"],
        "cpu_s": calls[0]["cpu_s"],
        "calls": calls,
    }


# ---------------------------------------------------------------- 4. search


def case_search_populate(p: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Metric, Param

    mlflow, client = _client()
    n_runs = int(p["runs"])
    exp_id = _experiment_id(client)
    ts = c.now_ms()
    with c.Span() as span:
        for name, params, metrics in c.search_dataset(n_runs):
            run_id = client.create_run(exp_id, run_name=name).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )
            client.set_terminated(run_id)
    return {
        "experiment_id": exp_id,
        "runs": n_runs,
        "matching": c.search_expected(n_runs),
        "populate": span.as_dict(),
    }


def case_search_query(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    exp_id = _experiment_id(client)
    kwargs: dict[str, Any] = {
        "filter_string": p.get("filter", c.SEARCH_FILTER),
        "order_by": p.get("order_by", c.SEARCH_ORDER_BY),
    }
    if p.get("max_results") is not None:
        kwargs["max_results"] = int(p["max_results"])
    with c.Span() as warm:
        client.search_runs([exp_id], max_results=1)
    calls = []
    n_results = None
    for _ in range(int(p.get("calls", 1))):
        with c.Span() as span:
            page = client.search_runs([exp_id], **kwargs)
        n_results = len(page)
        calls.append(span.as_dict())
    ordered = None
    if n_results:
        m1 = [r.data.metrics.get("m1") for r in page]
        ordered = all(a >= b for a, b in zip(m1, m1[1:], strict=False))
    return {
        "n_results": n_results,
        "ordered": ordered,
        "warmup": warm.as_dict(),
        "wall_s": calls[0]["wall_s"],
        "cpu_s": calls[0]["cpu_s"],
        "calls": calls,
    }


# ---------------------------------------------------------------- 5. concurrency


def case_concurrent_setup(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    return {"experiment_id": _experiment_id(client)}


def case_concurrent_log(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    n, idx = int(p["n"]), int(p["idx"])
    mlflow.set_experiment(EXPERIMENT)
    errors = c.ErrorTally()
    ok_calls = 0
    run_id = None
    c.barrier(p["ready"], p["go"])
    with c.Span() as span:
        try:
            run_id = mlflow.start_run(run_name=f"w{idx}").info.run_id
        except Exception as exc:
            errors.add("start_run", exc)
        if run_id is not None:
            for i in range(n):
                try:
                    mlflow.log_metric("x", float(i), step=i)
                    ok_calls += 1
                except Exception as exc:
                    errors.add("log_metric", exc)
            try:
                mlflow.end_run()
            except Exception as exc:
                errors.add("end_run", exc)
    return {
        "run_id": run_id,
        "n": n,
        "ok_calls": ok_calls,
        **errors.as_dict(),
        **span.as_dict(),
    }


def case_concurrent_count(p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client = _client()
    exp_id = _experiment_id(client)
    runs = client.search_runs([exp_id], max_results=1000)
    per_run = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "x")) for r in runs}
    return {"runs": len(per_run), "stored": sum(per_run.values()), "per_run": per_run}


# ---------------------------------------------------------------- 7. sampler


def case_sampler(p: dict[str, Any]) -> dict[str, Any]:
    import importlib.util

    seconds, enabled = float(p["seconds"]), bool(p["enabled"])
    if enabled and importlib.util.find_spec("psutil") is None:
        return {
            "ok": False,
            "skipped": True,
            "error": "psutil is not installed in the mlflow venv (mlflow does not depend "
            "on it); run with --mlflow-psutil to measure MLflow's sampler",
        }
    mlflow, client = _client()
    mlflow.set_experiment(EXPERIMENT)
    if enabled:
        mlflow.enable_system_metrics_logging()
        mlflow.set_system_metrics_sampling_interval(float(p.get("interval", 5)))
    else:
        mlflow.disable_system_metrics_logging()
    c0 = time.process_time()
    with mlflow.start_run(run_name="sampler-on" if enabled else "sampler-off") as run:
        time.sleep(float(p.get("warmup", 0.5)))  # past start-up: the window measures the steady state
        threads = threading.active_count()
        with c.Span() as sleep:
            trace = c.sleep_with_cpu_trace(seconds)
    total_cpu = time.process_time() - c0
    sys_keys = [k for k in client.get_run(run.info.run_id).data.metrics if k.startswith("system/")]
    return {
        "enabled": enabled,
        "seconds": seconds,
        "threads": threads,
        "sleep": sleep.as_dict(),
        "run_cpu_s": total_cpu,
        "cpu_trace": trace,
        "system_metric_keys": len(sys_keys),
    }


if __name__ == "__main__":
    c.main(
        {
            "info": case_info,
            "init_store": case_init_store,
            "log_metric": case_log_metric,
            "ingest_batch": case_ingest_batch,
            "history_populate": case_history_populate,
            "history_query": case_history_query,
            "search_populate": case_search_populate,
            "search_query": case_search_query,
            "concurrent_setup": case_concurrent_setup,
            "concurrent_log": case_concurrent_log,
            "concurrent_count": case_concurrent_count,
            "sampler": case_sampler,
        }
    )
