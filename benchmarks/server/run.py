"""keel server vs ``mlflow server``: metric ingest over HTTP, a filtered search, memory per worker.

One command::

    .venv/bin/python benchmarks/server/run.py            # full: 20 s per ingest case, 10,000 runs
    .venv/bin/python benchmarks/server/run.py --quick    # 4 s per ingest case, 1,000 runs

Both servers run on this machine with one worker each and a SQLite file as their backend store
(``keel server`` with authentication on and an admin token; ``mlflow server`` from
``benchmarks/.venvs/mlflow``, created with uv like ``benchmarks/run.py`` does, serving artifacts).

Ingest: 1 and 8 concurrent writer *processes*, each with its own run, sending batches of 1,000
points (10 metric keys × 100 steps) as fast as the server acknowledges them for a fixed time; the
rate is acknowledged points ÷ wall time, and afterwards every run's stored points are counted
through the server (each batch carries distinct timestamps, so no point is a duplicate). Requests
are encoded before the clock starts, so the clients cost little CPU; they share the machine with the
server. Three ways in:

- ``mlflow``: MLflow's ``POST /api/2.0/mlflow/runs/log-batch`` on ``mlflow server``;
- ``keel (MLflow API)``: the same requests to keel server's MLflow-compatible API;
- ``keel (native)``: keel's ``POST /api/v1/runs/{id}/metrics/batches`` (packed arrays, batch ids).

Search: N runs × 10 params × 5 metrics (the data of ``benchmarks/workers/_common.py``), then
``runs/search`` with ``metrics.m0 > 0.5 and params.p0 = 'a'`` ordered by ``metrics.m1 DESC``,
max_results 100, through HTTP: the median of 10 calls after one warm-up call (keel through both its
MLflow-compatible and its native API). The stores are filled directly, not through the servers (not
measured): keel's with its ``SqlStore``, MLflow's with copies of rows its own store wrote (see
``mlflow_populate.py``).

RSS: the resident memory of each server process, sampled every 0.1 s over the whole benchmark
(peak) and at the end. Results: ``benchmarks/results/server.{json,md}`` (``--name`` changes it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / ".work"
MLFLOW_VENV = BENCH / ".venvs" / "mlflow"
KEYS = 10
STEPS = 100  # KEYS × STEPS = 1,000 points per batch
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'a'"
SEARCH_ORDER = ["metrics.m1 DESC"]
TARGETS = {"ingest_ratio": 20.0, "search_ms": 150.0, "rss_mb": 150.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- servers ---------------------------------------------------------------------------------
class Server:
    """A running server: base URL, request headers, process tree, RSS samples."""

    def __init__(self, name: str, url: str, headers: dict[str, str], process: Any, stop: Any):
        self.name = name
        self.url = url
        self.headers = headers
        self.process = process
        self._stop = stop
        self.peak: dict[int, float] = {}
        #: peak anonymous (private heap) memory: RSS less file-backed pages such as SQLite's mmap
        self.peak_anon: dict[int, float] = {}
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def processes(self) -> list[Any]:
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_mb(self) -> dict[int, float]:
        import psutil

        found = {}
        for proc in self.processes():
            try:
                found[proc.pid] = proc.memory_info().rss / 2**20
            except psutil.Error:
                pass
        return found

    def _sample(self) -> None:
        while self._sampling:
            self.peak_mb()
            time.sleep(0.1)

    def peak_mb(self) -> float:
        """The largest RSS any of the server's processes reached so far."""
        for pid, mb in self.rss_mb().items():
            self.peak[pid] = max(self.peak.get(pid, 0.0), mb)
            anon = _anon_mb(pid)
            if anon is not None:
                self.peak_anon[pid] = max(self.peak_anon.get(pid, 0.0), anon)
        return max(self.peak.values(), default=0.0)

    def workers(self) -> list[dict[str, Any]]:
        """Per process: command, RSS now and peak (the uvicorn workers are the ones serving)."""
        import psutil

        rows = []
        now = self.rss_mb()
        for proc in self.processes():
            try:
                command = " ".join(proc.cmdline()[:6])
            except psutil.Error:
                continue
            rows.append(
                {
                    "pid": proc.pid,
                    "command": command,
                    "rss_mb": now.get(proc.pid),
                    "peak_mb": self.peak.get(proc.pid),
                    "peak_anon_mb": self.peak_anon.get(proc.pid),
                }
            )
        return rows

    def stop(self) -> None:
        self._sampling = False
        self._sampler.join(timeout=2)
        self._stop()


def _anon_mb(pid: int) -> float | None:
    """RssAnon of a process (Linux), in MiB."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def wait_http(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def start_keel(folder: Path, workers: int, backend: str, store_url: str | None) -> tuple[Server, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from keel.server.testing import LiveServer

    live = LiveServer(folder, workers=workers, store_url=store_url).start(timeout=120)
    headers = {"Authorization": f"Bearer {live.token}"}
    name = f"keel ({workers} worker, {backend})"
    return Server(name, live.url, headers, live.process, live.stop), live


def ensure_mlflow_venv(with_postgres: bool = False) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    python, problem = module.ensure_mlflow_venv(False)
    if problem:
        raise SystemExit(f"cannot prepare the MLflow venv: {problem}")
    if with_postgres and module._dist_version(Path(python), "psycopg") is None:
        # SQLAlchemy 2.1 (MLflow's) reads postgresql:// URLs with psycopg 3
        log("installing psycopg into the MLflow venv (the PostgreSQL driver)")
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "psycopg[binary]"], check=True)
    return Path(python)


@contextlib.contextmanager
def databases(base: str | None, names: list[str]) -> Iterator[dict[str, str | None]]:
    """Throwaway PostgreSQL databases on the server of ``base`` (none for SQLite), dropped afterwards."""
    if base is None:
        yield dict.fromkeys(names)
        return
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    created = {name: f"bench_{name}_{suffix}" for name in names}
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as con:
        for database in created.values():
            con.execute(f'CREATE DATABASE "{database}"')
    head = admin.rsplit("/", 1)[0]
    try:
        yield {name: f"{head}/{database}" for name, database in created.items()}
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            for database in created.values():
                con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def analyze(url: str) -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load, as autovacuum does within about a
    minute in service; without it both servers' searches run on plans made for empty tables."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as con:
        con.execute("ANALYZE")


def start_mlflow(folder: Path, python: Path, backend: str, store_uri: str) -> Server:
    from keel.server.testing import free_port

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow = python.parent / "mlflow"
    command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", store_uri,
        "--artifacts-destination", str(folder / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    logfile = open(folder / "server.log", "ab")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=logfile, stderr=subprocess.STDOUT)

    def stop() -> None:
        import psutil

        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            children = []
        process.terminate()
        for child in children:
            try:
                child.terminate()
            except psutil.Error:
                pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        logfile.close()

    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health")
    except TimeoutError:
        stop()
        raise
    return Server(f"mlflow (1 worker, {backend})", url, {}, process, stop)


# -- ingest ----------------------------------------------------------------------------------
def _mlflow_template(run_id: str) -> bytes:
    metrics = [
        f'{{"key":"k{k}","value":{(s * 0.001 + k):.6f},"timestamp":__TS__,"step":{s}}}'
        for k in range(KEYS)
        for s in range(STEPS)
    ]
    return f'{{"run_id":"{run_id}","metrics":[{",".join(metrics)}]}}'.encode()


def _native_body(batch: int, base_ts: int) -> bytes:
    steps = base64.b64encode(array("q", range(STEPS)).tobytes()).decode()
    stamps = base64.b64encode(array("q", [base_ts + batch] * STEPS).tobytes()).decode()
    chunks = []
    for k in range(KEYS):
        values = base64.b64encode(array("d", [s * 0.001 + k for s in range(STEPS)]).tobytes()).decode()
        chunks.append(
            {"key": f"k{k}", "count": STEPS, "steps": steps, "timestamps": stamps, "values": values}
        )
    return json.dumps({"batch_id": uuid.uuid4().hex, "chunks": chunks}).encode()


def writer(
    url: str,
    kind: str,
    headers: dict[str, str],
    run_id: str,
    seconds: float,
    base_ts: int,
    ready: Any,
    out: Any,
) -> None:
    """One writer process: prepare, wait for all writers, then send 1,000-point batches for ``seconds``."""
    import httpx

    headers = {**headers, "Content-Type": "application/json"}
    template = _mlflow_template(run_id)
    if kind == "native":
        path = f"/api/v1/runs/{run_id}/metrics/batches"
        bodies = [_native_body(b, base_ts) for b in range(300)]
    else:
        path = "/api/2.0/mlflow/runs/log-batch"
        bodies = [template.replace(b"__TS__", str(base_ts + b).encode()) for b in range(300)]
    acked = errors = 0
    latencies: list[float] = []
    first_error = None
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        # one small batch first, so the server has opened whatever it opens lazily (key "warmup" is
        # not counted)
        warm = {"run_id": run_id, "metrics": [{"key": "warmup", "value": 0, "timestamp": base_ts, "step": 0}]}
        client.post("/api/2.0/mlflow/runs/log-batch", json=warm).raise_for_status()
        ready.wait()
        began = time.time()
        stop_at = began + seconds
        batch = 0
        while time.time() < stop_at:
            if batch < len(bodies):
                body = bodies[batch]
            elif kind == "native":
                body = _native_body(batch, base_ts)
            else:
                body = template.replace(b"__TS__", str(base_ts + batch).encode())
            sent = time.perf_counter()
            response = client.post(path, content=body)
            latencies.append(time.perf_counter() - sent)
            if response.status_code == 200:
                acked += KEYS * STEPS
            else:
                errors += 1
                first_error = first_error or f"{response.status_code} {response.text[:300]}"
            batch += 1
        ended = time.time()
    out.put(
        {
            "acked": acked,
            "errors": errors,
            "first_error": first_error,
            "began": began,
            "ended": ended,
            "latencies": latencies,
        }
    )


def _create_runs(server: Server, n: int, experiment: str) -> list[str]:
    import httpx

    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
        response = client.post("/api/2.0/mlflow/experiments/create", json={"name": experiment})
        response.raise_for_status()
        eid = response.json()["experiment_id"]
        runs = []
        for i in range(n):
            created = client.post(
                "/api/2.0/mlflow/runs/create", json={"experiment_id": eid, "run_name": f"w{i}"}
            )
            created.raise_for_status()
            runs.append(created.json()["run"]["info"]["run_id"])
    return runs


def _stored_points(server: Server, run_ids: list[str]) -> int:
    """Points stored per run and key, read back through the server in pages of 25,000 (an
    ``mlflow server`` without paging answers everything in one page)."""
    import httpx

    total = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
        for run_id in run_ids:
            for k in range(KEYS):
                token = None
                while True:
                    params = {"run_id": run_id, "metric_key": f"k{k}", "max_results": 25_000}
                    if token:
                        params["page_token"] = token
                    response = client.get("/api/2.0/mlflow/metrics/get-history", params=params)
                    response.raise_for_status()
                    page = response.json()
                    total += len(page.get("metrics", []))
                    token = page.get("next_page_token")
                    if not token:
                        break
    return total


def ingest(server: Server, kind: str, writers: int, seconds: float, label: str) -> dict[str, Any]:
    log(f"ingest {label}: {writers} writer(s) for {seconds:g} s")
    run_ids = _create_runs(server, writers, f"ingest-{kind}-{writers}-{uuid.uuid4().hex[:6]}")
    base_ts = int(time.time() * 1000)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(writers)
    out = context.Queue()
    processes = [
        context.Process(
            target=writer, args=(server.url, kind, server.headers, run_id, seconds, base_ts, ready, out)
        )
        for run_id in run_ids
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=seconds + 600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    start_at = min(r["began"] for r in results)
    wall = max(r["ended"] for r in results) - start_at
    acked = sum(r["acked"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    peak_ingest = server.peak_mb()
    peak_anon_ingest = max(server.peak_anon.values(), default=0.0)
    stored = _stored_points(server, run_ids)
    row = {
        "case": "ingest",
        "server": server.name,
        "api": label,
        "writers": writers,
        "seconds": wall,
        "points_acked": acked,
        "points_stored": stored,
        "errors": sum(r["errors"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "points_per_s": acked / wall if wall > 0 else None,
        "batch_latency_ms_p50": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "batch_latency_ms_p95": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else None,
        "rss_peak_mb_after_ingest": peak_ingest,
        "rss_peak_mb_after_count": server.peak_mb(),
        "anon_peak_mb_after_ingest": peak_anon_ingest,
        "anon_peak_mb_after_count": max(server.peak_anon.values(), default=0.0),
    }
    log(
        f"  {row['points_per_s']:,.0f} points/s ({acked:,} acknowledged, {stored:,} stored, "
        f"{row['errors']} errors)"
    )
    return row


# -- search ----------------------------------------------------------------------------------
def populate_keel(store_url: str, n_runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH / "workers"))
    import _common as c  # the benchmark's shared data set

    from keel.store.metrics import chunks_from_points
    from keel.store.sql import SqlStore

    started = time.perf_counter()
    store = SqlStore(store_url, crash_check=False)
    experiment = store.create_experiment(f"search-bench-{uuid.uuid4().hex[:6]}")
    stamp = int(time.time() * 1000)
    for i, (name, params, metrics) in enumerate(c.search_dataset(n_runs)):
        run = store.create_run(experiment.experiment_id, name, start_time=stamp + i)
        store.log_params(run.run_id, params)
        store.write_metric_batch(
            uuid.uuid4().hex, run.run_id, chunks_from_points([(k, v, 0, stamp) for k, v in metrics.items()])
        )
        store.update_run(run.run_id, status="FINISHED", end_time=stamp + i + 1)
    store.close()
    return {
        "experiment_id": experiment.experiment_id,
        "runs": n_runs,
        "matching": c.search_expected(n_runs),
        "seconds": time.perf_counter() - started,
    }


def populate_mlflow(python: Path, store_uri: str, n_runs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = subprocess.run(
        [str(python), str(Path(__file__).with_name("mlflow_populate.py")), store_uri, str(n_runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"populating MLflow failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def search(
    server: Server, experiment_id: str, api: str, populated: dict[str, Any], calls: int = 10
) -> dict[str, Any]:
    import httpx

    if api == "native":
        path = "/api/v1/runs/search"
        body: dict[str, Any] = {
            "experiment_ids": [experiment_id],
            "filter_string": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "max_results": 100,
        }
    else:
        path = "/api/2.0/mlflow/runs/search"
        body = {
            "experiment_ids": [experiment_id],
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "max_results": 100,
        }
    times = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
        client.post(path, json=body).raise_for_status()  # warm-up
        for _ in range(calls):
            began = time.perf_counter()
            response = client.post(path, json=body)
            times.append(time.perf_counter() - began)
            response.raise_for_status()
    data = response.json()
    runs = data.get("runs", data if isinstance(data, list) else [])
    if api == "native":
        m1 = [
            r["metrics"]["m1"]["value"] if isinstance(r["metrics"]["m1"], dict) else r["metrics"]["m1"]
            for r in runs
        ]
    else:
        m1 = [next(float(m["value"]) for m in r["data"]["metrics"] if m["key"] == "m1") for r in runs]
    row = {
        "case": "search",
        "server": server.name,
        "api": api,
        "runs": populated["runs"],
        "matching": populated["matching"],
        "returned": len(runs),
        "ordered": all(a >= b for a, b in zip(m1, m1[1:], strict=False)),
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * sorted(times)[int(len(times) * 0.95) - 1],
        "populate_s": populated["seconds"],
        "rss_peak_mb_after_search": server.peak_mb(),
    }
    log(f"  search {server.name} ({api}): {row['median_ms']:.1f} ms median, {row['returned']} runs returned")
    return row


# -- report ----------------------------------------------------------------------------------
def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x / 1000:,.1f} k pts/s"


def _ms(row: dict[str, Any] | None) -> str:
    return "—" if row is None else f"{row['median_ms']:.1f} ms"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _summary(rows: list[dict[str, Any]], memory: list[dict[str, Any]]) -> list[list[str]]:
    body = []
    for backend in dict.fromkeys(r.get("backend", "sqlite") for r in rows):
        mine = [r for r in rows if r.get("backend", "sqlite") == backend]
        by = {(r["case"], r["server"].split(" ")[0], r["api"], r.get("writers")): r for r in mine}
        for writers in sorted({r["writers"] for r in mine if r["case"] == "ingest"}):
            ml = by.get(("ingest", "mlflow", "mlflow", writers))
            for api, label in (("mlflow", "MLflow log-batch API"), ("native", "native batches")):
                ke = by.get(("ingest", "keel", api, writers))
                if ke is None:
                    continue
                ratio = ke["points_per_s"] / ml["points_per_s"] if ml and ml.get("points_per_s") else None
                target = ""
                if writers > 1 and ratio is not None:
                    mark = "✅" if ratio >= TARGETS["ingest_ratio"] else "❌"
                    target = f">= {TARGETS['ingest_ratio']:g}× MLflow {mark}"
                body.append(
                    [
                        f"{backend}: ingest, {writers} writer{'s' if writers > 1 else ''} (keel: {label})",
                        _rate(ml["points_per_s"] if ml else None),
                        _rate(ke["points_per_s"]),
                        "—" if ratio is None else f"{ratio:.1f}×",
                        target,
                    ]
                )
        ml_search = next(
            (r for r in mine if r["case"] == "search" and r["server"].startswith("mlflow")), None
        )
        for r in mine:
            if r["case"] == "search" and r["server"].startswith("keel"):
                ratio = ml_search["median_ms"] / r["median_ms"] if ml_search else None
                mark = "✅" if r["median_ms"] <= TARGETS["search_ms"] else "❌"
                body.append(
                    [
                        f"{backend}: search over {r['runs']:,} runs (keel: {r['api']} API)",
                        _ms(ml_search),
                        _ms(r),
                        "—" if ratio is None else f"{ratio:.1f}× faster",
                        f"<= {TARGETS['search_ms']:g} ms {mark}",
                    ]
                )
        ml_mem = next(
            (m for m in memory if m["backend"] == backend and m["server"].startswith("mlflow")), None
        )
        for m in memory:
            if m["backend"] != backend or not m["server"].startswith("keel"):
                continue
            for key, label, note in (
                ("peak_worker_mb", "peak RSS of the serving process", "per worker"),
                (
                    "peak_worker_anon_mb",
                    "peak private memory (RssAnon) of the serving process",
                    "(RSS less files)",
                ),
            ):
                mark = "✅" if m[key] <= TARGETS["rss_mb"] else "❌"
                body.append(
                    [
                        f"{backend}: {label}",
                        "—" if ml_mem is None else f"{ml_mem[key]:.0f} MB",
                        f"{m[key]:.0f} MB",
                        "",
                        f"<= {TARGETS['rss_mb']:g} MB {note} {mark}",
                    ]
                )
    return body


def render(meta: dict[str, Any], rows: list[dict[str, Any]], memory: list[dict[str, Any]]) -> str:
    lines = [
        "# keel server vs mlflow server — benchmark results",
        "",
        f"Measured {meta['started']} with `{meta['command']}` ({meta['wall_min']:.1f} min).",
        "",
        f"- Machine: {meta['machine']}",
        "- Backends: SQLite files under `benchmarks/.work/` for both servers (and, with `--postgres`, "
        "a fresh database each on the same PostgreSQL server); one uvicorn worker each; "
        f"keel {meta['keel']} with authentication on (Bearer token) and its audit log; MLflow "
        f"{meta['mlflow']} (`mlflow server --workers 1`, artifacts served).",
        f"- Ingest: batches of {KEYS * STEPS:,} points ({KEYS} keys × {STEPS} steps), each writer a separate "
        f"process with its own run, {meta['seconds']:g} s per case; rates are acknowledged points ÷ wall "
        "time; afterwards the stored points are counted through the server.",
        f"- Search: `{SEARCH_FILTER}` ordered by `{SEARCH_ORDER[0]}`, max_results 100, median of 10 HTTP "
        "calls after a warm-up call; on PostgreSQL both stores are ANALYZEd after they are filled (as "
        "autovacuum would within a minute).",
        "",
        "## Summary",
        "",
    ]
    lines += _table(
        ["Measure", "mlflow server", "keel server", "keel ÷ MLflow", "keel target"], _summary(rows, memory)
    )
    lines += ["", "## Ingest detail", ""]
    lines += _table(
        [
            "server",
            "API",
            "writers",
            "points/s",
            "acknowledged",
            "stored",
            "errors",
            "batch p50",
            "batch p95",
            "server's peak RSS so far (after ingest / after counting)",
            "peak RssAnon so far (after ingest / after counting)",
        ],
        [
            [
                r["server"],
                r["api"],
                str(r["writers"]),
                f"{r['points_per_s']:,.0f}",
                f"{r['points_acked']:,}",
                f"{r['points_stored']:,}",
                str(r["errors"]),
                "—" if r["batch_latency_ms_p50"] is None else f"{r['batch_latency_ms_p50']:.1f} ms",
                "—" if r["batch_latency_ms_p95"] is None else f"{r['batch_latency_ms_p95']:.1f} ms",
                f"{r['rss_peak_mb_after_ingest']:.0f} MB / {r['rss_peak_mb_after_count']:.0f} MB",
                f"{r['anon_peak_mb_after_ingest']:.0f} MB / {r['anon_peak_mb_after_count']:.0f} MB",
            ]
            for r in rows
            if r["case"] == "ingest"
        ],
    )
    lines += ["", "## Search detail", ""]
    lines += _table(
        ["server", "API", "runs", "matching", "returned", "ordered", "median", "p95", "store filled in"],
        [
            [
                r["server"],
                r["api"],
                f"{r['runs']:,}",
                f"{r['matching']:,}",
                str(r["returned"]),
                str(r["ordered"]),
                f"{r['median_ms']:.1f} ms",
                f"{r['p95_ms']:.1f} ms",
                f"{r['populate_s']:.1f} s (not measured)",
            ]
            for r in rows
            if r["case"] == "search"
        ],
    )
    lines += ["", "## Memory (resident set size of each server process)", ""]
    lines += _table(
        ["server", "process", "peak RSS", "peak private (RssAnon)", "RSS at the end"],
        [
            [
                m["server"],
                f"`{p['command']}`",
                f"{p['peak_mb'] or 0:.0f} MB",
                f"{p['peak_anon_mb'] or 0:.0f} MB",
                f"{p['rss_mb'] or 0:.0f} MB",
            ]
            for m in memory
            for p in m["processes"]
        ],
    )
    problems = [f"{r['server']} {r['api']}: {r['first_error']}" for r in rows if r.get("first_error")]
    lines += ["", "Errors: " + ("; ".join(problems) or "none"), ""]
    return "\n".join(lines)


def machine() -> str:
    import psutil

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), model)
    except OSError:
        pass
    return (
        f"{model}, nproc {os.cpu_count()}, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"{platform.platform()}, Python {platform.python_version()}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s per ingest case and 1,000 runs")
    parser.add_argument("--seconds", type=float, default=None, help="length of each ingest case")
    parser.add_argument("--search-runs", type=int, default=None, help="runs in the search store")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers of the concurrent case")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure keel server only")
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="also measure on PostgreSQL: a server URL such as postgresql://postgres@127.0.0.1:5432/postgres "
        "(two throwaway databases are created there and dropped afterwards)",
    )
    parser.add_argument("--name", default=None, help="write results/NAME.{json,md} (default: server)")
    args = parser.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 20.0)
    n_search = args.search_runs or (1_000 if args.quick else 10_000)
    name = args.name or ("server-quick" if args.quick else "server")
    began = time.time()
    sys.path.insert(0, str(REPO / "src"))
    session = WORK / f"server-{dt.datetime.now():%Y%m%d-%H%M%S}"
    session.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/server/run.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "seconds": seconds,
        "search_runs": n_search,
    }
    import importlib.metadata as md

    # the distribution is keel-mlops (`keel` on PyPI is another project; docs/decisions/010)
    meta["keel"] = md.version("keel-mlops") if _has("keel-mlops") else "(source tree)"
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
    python = None
    meta["mlflow"] = "(not measured)"
    try:
        if not args.skip_mlflow:
            python = ensure_mlflow_venv(with_postgres=bool(args.postgres))
            meta["mlflow"] = subprocess.run(
                [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        for backend, base in backends:
            folder = session / backend
            with databases(base, ["mlflow", "keel"]) as urls:
                if python is not None:
                    uri = urls["mlflow"] or f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}"
                    log(f"starting mlflow server {meta['mlflow']} on {backend}")
                    ml = start_mlflow(folder / "mlflow", python, backend, uri)
                    try:
                        for writers in (1, args.writers):
                            rows.append(
                                ingest(ml, "mlflow", writers, seconds, "mlflow") | {"backend": backend}
                            )
                        log(f"populating MLflow's store with {n_search:,} runs (not measured)")
                        populated = populate_mlflow(python, uri, n_search)
                        analyze(uri)
                        rows.append(
                            search(ml, populated["experiment_id"], "mlflow", populated) | {"backend": backend}
                        )
                        memory.append({"server": ml.name, "backend": backend, "processes": ml.workers()})
                    finally:
                        ml.stop()
                log(f"starting keel server on {backend}")
                ke, live = start_keel(folder / "keel", 1, backend, urls["keel"])
                try:
                    for writers in (1, args.writers):
                        for api in ("mlflow", "native"):
                            rows.append(ingest(ke, api, writers, seconds, api) | {"backend": backend})
                    log(f"populating keel's store with {n_search:,} runs (not measured)")
                    populated = populate_keel(live.config.store_url, n_search)
                    analyze(live.config.store_url)
                    for api in ("mlflow", "native"):
                        rows.append(
                            search(ke, populated["experiment_id"], api, populated) | {"backend": backend}
                        )
                    memory.append({"server": ke.name, "backend": backend, "processes": ke.workers()})
                finally:
                    ke.stop()
    finally:
        meta["wall_min"] = (time.time() - began) / 60
        shutil.rmtree(session, ignore_errors=True)
    for m in memory:
        # the serving process: the one with the largest peak (uvicorn's worker; a supervisor is small)
        m["peak_worker_mb"] = max((p["peak_mb"] or 0) for p in m["processes"]) if m["processes"] else 0.0
        m["peak_worker_anon_mb"] = (
            max((p["peak_anon_mb"] or 0) for p in m["processes"]) if m["processes"] else 0.0
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "memory": memory}, indent=2)
    )
    (RESULTS / f"{name}.md").write_text(render(meta, rows, memory))
    log(f"wrote benchmarks/results/{name}.json and .md")
    if name == "server":  # the full run is what users read
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from _docs import demote, write_section

        intro = (
            "`keel server` next to `mlflow server` on the same backends (SQLite and PostgreSQL), one worker each, "
            "MLflow in its own virtualenv, written by `python benchmarks/server/run.py`."
        )
        write_section("server", "Server", intro + "\n\n" + demote(render(meta, rows, memory)))


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
