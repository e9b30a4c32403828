"""keel side of the benchmarks. Runs inside the project's .venv.

Usage: python keel_worker.py CASE --params '{"n": 1000000, ...}'
The runner points the store at the current directory through
KEEL_TRACKING_URI=sqlite:///<cwd>/keel.db and KEEL_ARTIFACT_URI=file:///<cwd>/artifacts,
and sets KEEL_SYSTEM_METRICS=false except in the sampler case.

The keel API used here (and nothing else):
  keel.start_run(experiment=, name=) -> context manager yielding a run with .run_id
  keel.log_metric(key, value, step=)      keel.flush()
  keel.Metric(key, value, step, timestamp_ms)
  keel.Client(): create_experiment(name), create_run(experiment_name, name=) -> Run(.run_id),
                 set_terminated(run_id), log_batch(run_id, metrics=[...], params={...}),
                 get_metric_history(run_id, key[, max_points=]) -> sized history,
                 search_runs([experiment_name], filter_string=, order_by=, max_results=)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import _common as c

EXPERIMENT = "bench"


def _keel() -> Any:
    import keel

    return keel


def _new_run(client: Any, name: str) -> str:
    """Create the experiment if needed and a run in it; return the run id."""
    try:
        client.create_experiment(EXPERIMENT)
    except Exception:
        pass  # already exists (e.g. created by a setup step)
    return str(client.create_run(EXPERIMENT, name=name).run_id)


def _metric_of(run: Any, key: str) -> float | None:
    """Best-effort read of a metric from a search result (for the order check)."""
    for path in (("metrics",), ("data", "metrics")):
        obj = run
        try:
            for attr in path:
                obj = getattr(obj, attr)
            value = obj.get(key)
        except Exception:
            continue
        value = getattr(value, "value", value)  # keel: Mapping[str, Metric]
        return float(value) if isinstance(value, (int, float)) else None
    return None


# ---------------------------------------------------------------- info


def case_info(p: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md
    import platform
    import sqlite3

    versions = {}
    # keel is distributed as keel-mlops (`keel` on PyPI is another project; docs/decisions/010)
    dists = {name: name for name in ("sqlalchemy", "alembic", "psutil", "numpy")}
    for key, dist in {"keel": "keel-mlops", **dists}.items():
        try:
            versions[key] = md.version(dist)
        except md.PackageNotFoundError:
            versions[key] = None
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "versions": versions,
    }
    keel = _keel()
    out["keel_file"] = getattr(keel, "__file__", None)
    out["keel_version_attr"] = getattr(keel, "__version__", None)
    return out


# ---------------------------------------------------------------- 1. log_metric


def case_log_metric(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    n, chunk = int(p["n"]), int(p["chunk"])
    chunks_ns: list[int] = []
    perf_ns = time.perf_counter_ns
    log_metric = keel.log_metric
    with c.Span() as total:
        with keel.start_run(experiment=EXPERIMENT, name="log-metric") as run:
            run_id = run.run_id
            with c.Span() as loop:
                i = 0
                for _ in range(n // chunk):
                    t0 = perf_ns()
                    for _ in range(chunk):
                        log_metric("loss", i * 0.001, step=i)
                        i += 1
                    chunks_ns.append(perf_ns() - t0)
            with c.Span() as flush:
                keel.flush()
            end_w, end_c = time.perf_counter(), time.process_time()
        end = {"wall_s": time.perf_counter() - end_w, "cpu_s": time.process_time() - end_c}
    stored = len(keel.Client().get_metric_history(run_id, "loss"))
    per_call = [ns / chunk / 1e3 for ns in chunks_ns]
    return {
        "n": n,
        "chunk": chunk,
        "stored": stored,
        "per_call_us_median": c.median(per_call),
        "per_call_us_chunks": per_call,
        "loop": loop.as_dict(),
        "flush": flush.as_dict(),
        "end": end,
        "total": total.as_dict(),
        # loop + flush: every point committed; includes the writer thread's CPU
        "cpu_us_per_call": (loop.cpu_s + flush.cpu_s) / n * 1e6,
        "wall_us_per_call": (loop.wall_s + flush.wall_s) / n * 1e6,
        "total_cpu_us_per_call": total.cpu_s / n * 1e6,
        "total_wall_us_per_call": total.wall_s / n * 1e6,
    }


# ---------------------------------------------------------------- 2. ingest


def case_ingest_loop(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    points, n_keys = int(p["points"]), int(p.get("keys", 10))
    keys = c.ingest_keys(n_keys)
    steps = points // n_keys
    log_metric = keel.log_metric
    with keel.start_run(experiment=EXPERIMENT, name="ingest-loop") as run:
        run_id = run.run_id
        with c.Span() as loop:
            for step in range(steps):
                for k in keys:
                    log_metric(k, float(step), step=step)
        with c.Span() as flush:
            keel.flush()
        end_w = time.perf_counter()
    end_wall = time.perf_counter() - end_w
    stored = len(keel.Client().get_metric_history(run_id, keys[0]))
    points = steps * n_keys
    committed_wall = loop.wall_s + flush.wall_s
    committed_cpu = loop.cpu_s + flush.cpu_s
    return {
        "points": points,
        "stored_key0": stored,
        "expected_key0": steps,
        "loop": loop.as_dict(),
        "flush": flush.as_dict(),
        "end_wall_s": end_wall,
        "ingest": {"wall_s": committed_wall, "cpu_s": committed_cpu},
        "points_per_s": points / committed_wall,
        "loop_points_per_s": points / loop.wall_s,
        "cpu_us_per_point": committed_cpu / points * 1e6,
        "wall_us_per_point": committed_wall / points * 1e6,
    }


def case_ingest_batch(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    points, batch, n_keys = int(p["points"]), int(p["batch"]), int(p.get("keys", 10))
    keys = c.ingest_keys(n_keys)
    client = keel.Client()
    run_id = _new_run(client, "ingest-batch")
    ts = c.now_ms()
    metric_cls = keel.Metric
    with c.Span() as build:
        batches = []
        for start in range(0, points, batch):
            batches.append(
                [
                    metric_cls(keys[i % n_keys], float(i), i // n_keys, ts + i // n_keys)
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
    keel = _keel()
    client = keel.Client()
    batch = int(p["batch"])
    metric_cls = keel.Metric
    ts = c.now_ms()
    run_ids = {}
    with c.Span() as span:
        for points in p["points"]:
            points = int(points)
            run_id = _new_run(client, f"history-{points}")
            for start in range(0, points, batch):
                client.log_batch(
                    run_id,
                    metrics=[
                        metric_cls("loss", c.hist_value(i), i, ts + i)
                        for i in range(start, min(points, start + batch))
                    ],
                )
            client.set_terminated(run_id)
            run_ids[str(points)] = run_id
    return {"run_ids": run_ids, "populate": span.as_dict()}


def case_history_query(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    client = keel.Client()
    run_id, key = p["run_id"], p.get("key", "loss")
    kwargs = {}
    if p.get("max_points") is not None:
        kwargs["max_points"] = int(p["max_points"])
    with c.Span() as warm:  # opens the store; not part of the measure
        client.search_runs([EXPERIMENT], max_results=1)
    calls = []
    length = None
    for _ in range(int(p.get("calls", 1))):
        with c.Span() as span:
            h = client.get_metric_history(run_id, key, **kwargs)
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
    keel = _keel()
    client = keel.Client()
    n_runs = int(p["runs"])
    metric_cls = keel.Metric
    try:
        client.create_experiment(EXPERIMENT)
    except Exception:
        pass
    ts = c.now_ms()
    with c.Span() as span:
        for name, params, metrics in c.search_dataset(n_runs):
            run_id = client.create_run(EXPERIMENT, name=name).run_id
            client.log_batch(
                run_id,
                metrics=[metric_cls(k, v, 0, ts) for k, v in metrics.items()],
                params=params,
            )
            client.set_terminated(run_id)
    return {"runs": n_runs, "matching": c.search_expected(n_runs), "populate": span.as_dict()}


def case_search_query(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    client = keel.Client()
    kwargs: dict[str, Any] = {
        "filter_string": p.get("filter", c.SEARCH_FILTER),
        "order_by": p.get("order_by", c.SEARCH_ORDER_BY),
    }
    if p.get("max_results") is not None:
        kwargs["max_results"] = int(p["max_results"])
    with c.Span() as warm:
        client.search_runs([EXPERIMENT], max_results=1)
    calls = []
    n_results = None
    for _ in range(int(p.get("calls", 1))):
        with c.Span() as span:
            page = client.search_runs([EXPERIMENT], **kwargs)
        n_results = len(page)
        calls.append(span.as_dict())
    ordered = None
    if n_results:
        m1 = [_metric_of(r, "m1") for r in page]
        if None not in m1:
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
    keel = _keel()
    return {"experiment_id": str(keel.Client().create_experiment(EXPERIMENT))}


def case_concurrent_log(p: dict[str, Any]) -> dict[str, Any]:
    keel = _keel()
    n, idx = int(p["n"]), int(p["idx"])
    errors = c.ErrorTally()
    ok_calls = 0
    run_id = None
    log_metric = keel.log_metric
    c.barrier(p["ready"], p["go"])
    with c.Span() as span:
        cm = None
        try:
            cm = keel.start_run(experiment=EXPERIMENT, name=f"w{idx}")
            run_id = cm.__enter__().run_id
        except Exception as exc:
            errors.add("start_run", exc)
        if run_id is not None:
            for i in range(n):
                try:
                    log_metric("x", float(i), step=i)
                    ok_calls += 1
                except Exception as exc:
                    errors.add("log_metric", exc)
            try:
                keel.flush()
            except Exception as exc:
                errors.add("flush", exc)
            try:
                cm.__exit__(None, None, None)
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
    keel = _keel()
    client = keel.Client()
    run_ids = [r for r in p.get("run_ids", []) if r]
    how = "worker-reported run ids"
    try:
        found = [str(r.run_id) for r in client.search_runs([EXPERIMENT], max_results=1000)]
        run_ids = sorted(set(run_ids) | set(found))
        how = "search_runs"
    except Exception as exc:
        how = f"worker-reported run ids (search_runs failed: {c.short_error(exc)})"
    per_run = {r: len(client.get_metric_history(r, "x")) for r in run_ids}
    return {"runs": len(per_run), "stored": sum(per_run.values()), "per_run": per_run, "how": how}


# ---------------------------------------------------------------- 7. sampler


def case_sampler(p: dict[str, Any]) -> dict[str, Any]:
    # KEEL_SYSTEM_METRICS is set (off) or left unset (keel's default: on) by the runner
    seconds, enabled = float(p["seconds"]), bool(p["enabled"])
    keel = _keel()
    c0 = time.process_time()
    with keel.start_run(experiment=EXPERIMENT, name="sampler-on" if enabled else "sampler-off"):
        time.sleep(float(p.get("warmup", 0.5)))  # past start-up: the window measures the steady state
        threads = threading.active_count()
        with c.Span() as sleep:
            trace = c.sleep_with_cpu_trace(seconds)
    total_cpu = time.process_time() - c0
    return {
        "enabled": enabled,
        "env_KEEL_SYSTEM_METRICS": os.environ.get("KEEL_SYSTEM_METRICS"),
        "seconds": seconds,
        "threads": threads,
        "sleep": sleep.as_dict(),
        "run_cpu_s": total_cpu,
        "cpu_trace": trace,
    }


if __name__ == "__main__":
    c.main(
        {
            "info": case_info,
            "log_metric": case_log_metric,
            "ingest_loop": case_ingest_loop,
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
