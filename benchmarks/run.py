#!/usr/bin/env python3
"""keel vs MLflow benchmark runner (standard library only).

    python benchmarks/run.py                 # full run, both peers (~16 min on 2 cores)
    python benchmarks/run.py --quick         # small sizes, smoke test (~4-5 min)
    python benchmarks/run.py --only search,history --peers keel
    python benchmarks/run.py --peers keel --merge   # re-measure keel, keep the MLflow rows

Each measurement runs in a fresh subprocess of the peer's own virtualenv
(keel: the project's .venv; MLflow: benchmarks/.venvs/mlflow, created with uv
when missing), in its own folder under benchmarks/.work/ with a SQLite store.
Workers print one JSON object; this runner takes medians over repeats and
writes benchmarks/results/<name>.json and <name>.md (name: "latest", or
"quick" with --quick). A failing worker becomes an error row; the other
measurements go on. See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKERS = BENCH / "workers"
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
MLFLOW_SPEC = "mlflow>=3,<4"

CASES = ["import", "log_metric", "ingest", "history", "search", "concurrency", "sampler"]
PEERS = ["mlflow", "keel"]

# The MLflow figures quoted by the issue (MLflow 3.17, SQLite), for reference in the report.
ISSUE_MLFLOW = {
    "log_metric": "≈ 5 ms CPU per call",
    "ingest_batch": "≈ 115 µs per point",
    "history_100k": "≈ 12 s",
    "search_1k": "≈ 0.9 s",
}

# ---------------------------------------------------------------- sizes

FULL: dict[str, Any] = {
    "log_metric": {
        "repeats": 5,
        "mlflow": {"n": 300, "chunk": 10},
        "keel": {"n": 1_000_000, "chunk": 10_000},
    },
    "ingest": {
        "repeats": 3,
        "mlflow_batch": {"points": 20_000, "batch": 1_000, "keys": 10},
        "keel_loop": {"points": 2_000_000, "keys": 10},
        "keel_batch": {"points": 1_000_000, "batch": 10_000, "keys": 10},
    },
    "history": {
        "repeats": {"mlflow": 3, "keel": 5},
        "points": {"mlflow": [100_000], "keel": [100_000, 1_000_000]},
        "batch": {"mlflow": 1_000, "keel": 10_000},
        "downsample": 1_000,
    },
    "search": {
        "repeats": 5,
        "runs": {"mlflow": [1_000], "keel": [1_000, 10_000]},
        "max_results": 100,
    },
    "concurrency": {"repeats": 3, "procs": 8, "n": {"mlflow": 200, "keel": 20_000}},
    "import": {"repeats": 10},
    # warm-up: the window starts after the first samples, commit and heartbeat (one-time costs are
    # reported separately as "whole run incl. start/end")
    "sampler": {"repeats": 3, "seconds": 60, "interval": 5, "warmup": 12},
}

QUICK: dict[str, Any] = {
    "log_metric": {
        "repeats": 3,
        "mlflow": {"n": 100, "chunk": 10},
        "keel": {"n": 100_000, "chunk": 10_000},
    },
    "ingest": {
        "repeats": 2,
        "mlflow_batch": {"points": 5_000, "batch": 1_000, "keys": 10},
        "keel_loop": {"points": 200_000, "keys": 10},
        "keel_batch": {"points": 100_000, "batch": 10_000, "keys": 10},
    },
    "history": {
        "repeats": {"mlflow": 2, "keel": 3},
        "points": {"mlflow": [10_000], "keel": [10_000, 100_000]},
        "batch": {"mlflow": 1_000, "keel": 10_000},
        "downsample": 1_000,
    },
    "search": {
        "repeats": 3,
        "runs": {"mlflow": [100], "keel": [100, 1_000]},
        "max_results": 100,
    },
    "concurrency": {"repeats": 1, "procs": 8, "n": {"mlflow": 50, "keel": 2_000}},
    "import": {"repeats": 3},
    "sampler": {"repeats": 1, "seconds": 10, "interval": 5, "warmup": 1},
}

# keel's targets from the issue. "on" names the row field the target applies to.
TARGETS: dict[str, dict[str, Any]] = {
    "log_metric": {"op": "<=", "value": 2e-6, "kind": "time", "on": "wall"},
    "ingest_loop": {"op": ">=", "value": 300_000, "kind": "rate", "on": "wall"},
    "ingest_batch": {"op": ">=", "value": 300_000, "kind": "rate", "on": "wall"},
    "history_1000000": {"op": "<=", "value": 0.5, "kind": "time", "on": "wall"},
    "history_downsample": {"op": "<=", "value": 0.05, "kind": "time", "on": "wall"},
    "search_10000": {"op": "<=", "value": 0.1, "kind": "time", "on": "wall"},
    "import": {"op": "<=", "value": 0.15, "kind": "time", "on": "wall"},
    "help": {"op": "<=", "value": 0.3, "kind": "time", "on": "wall"},
    "concurrency": {"op": "==", "value": 0, "kind": "count", "on": "headline"},
    "sampler": {"op": "<=", "value": 0.1, "kind": "percent", "on": "headline"},
}


# ---------------------------------------------------------------- formatting


def fmt_time(s: float | None) -> str:
    if s is None or s != s:
        return "—"
    a = abs(s)
    if a >= 1:
        return f"{s:.2f} s"
    if a >= 1e-3:
        return f"{s * 1e3:.3g} ms" if a < 0.1 else f"{s * 1e3:.0f} ms"
    if a >= 1e-6:
        return f"{s * 1e6:.3g} µs"
    return f"{s * 1e9:.0f} ns"


def fmt_rate(r: float | None, unit: str = "pts/s") -> str:
    if r is None or r != r:
        return "—"
    if r >= 1e6:
        return f"{r / 1e6:.2f} M {unit}"
    if r >= 1e5:
        return f"{r / 1e3:.0f} k {unit}"
    if r >= 1e3:
        return f"{r / 1e3:.3g} k {unit}"
    return f"{r:.0f} {unit}"


def fmt_value(v: float | None, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "time":
        return fmt_time(v)
    if kind == "rate":
        return fmt_rate(v)
    if kind == "percent":
        return f"{v:.3f} %"
    if kind == "count":
        return f"{v:g}"
    return str(v)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def med(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def us(x: float | None) -> float | None:
    """microseconds -> seconds, None-safe"""
    return None if x is None else x * 1e-6


# ---------------------------------------------------------------- peers


@dataclass
class Peer:
    name: str
    python: Path
    cli: Path
    module: str
    worker: Path
    env: Callable[[Path], dict[str, str]]
    template_db: Path | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _keel_env(cwd: Path) -> dict[str, str]:
    return {
        "KEEL_TRACKING_URI": f"sqlite:///{cwd}/keel.db",
        "KEEL_ARTIFACT_URI": f"file://{cwd}/artifacts",
        "KEEL_SYSTEM_METRICS": "false",
    }


def _mlflow_env(cwd: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db",
        # no network here; a telemetry thread would only add retries and noise
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
    }


def base_env() -> dict[str, str]:
    """The runner's environment minus anything that changes how Python or the
    peers behave (this workplace sets PYTHONDONTWRITEBYTECODE=1, which would
    make every import recompile from source)."""
    drop = ("PYTHON", "VIRTUAL_ENV", "CONDA", "KEEL_", "MLFLOW_", "UV_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _venv_base_python(venv: Path) -> str | None:
    cfg = venv / "pyvenv.cfg"
    if not cfg.exists():
        return None
    for line in cfg.read_text().splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "home":
            for name in ("python3", "python"):
                cand = Path(v.strip()) / name
                if cand.exists():
                    return str(cand)
    return None


def _dist_version(python: Path, dist: str) -> str | None:
    try:
        out = subprocess.run(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
            env=base_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_mlflow_venv(with_psutil: bool) -> tuple[Path, str | None]:
    """Create benchmarks/.venvs/mlflow with uv if it is missing or lacks MLflow 3.x."""
    venv = VENVS / "mlflow"
    py = venv / "bin" / "python"
    version = _dist_version(py, "mlflow") if py.exists() else None
    uv = shutil.which("uv")
    if not (version and version.split(".")[0] == "3"):
        if uv is None:
            return py, "uv is not on PATH; cannot create benchmarks/.venvs/mlflow"
        log(f"creating {venv.relative_to(REPO)} and installing {MLFLOW_SPEC!r} (uv)")
        base = _venv_base_python(REPO / ".venv") or sys.executable
        env = base_env()
        try:
            if not py.exists():
                subprocess.run(
                    [uv, "venv", "-q", "--clear", "--python", base, str(venv)], check=True, env=env
                )
            subprocess.run(
                [
                    uv,
                    "pip",
                    "install",
                    "-q",
                    "--compile-bytecode",
                    "--python",
                    str(py),
                    MLFLOW_SPEC,
                ],
                check=True,
                env=env,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            return py, f"creating the MLflow venv failed: {exc}"
        version = _dist_version(py, "mlflow")
        if not version:
            return py, "MLflow is not importable in benchmarks/.venvs/mlflow after install"
    if with_psutil and _dist_version(py, "psutil") is None:
        if uv is None:
            return py, "uv is not on PATH; cannot install psutil"
        log("installing psutil into the MLflow venv (--mlflow-psutil)")
        subprocess.run(
            [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), "psutil"],
            check=False,
            env=base_env(),
        )
    return py, None


# ---------------------------------------------------------------- running workers


def prune_sessions(keep: int) -> None:
    """Delete old session folders (their stores are gone already; only worker
    logs remain), keeping the newest `keep` and anything touched in the last hour."""
    sessions = sorted(WORK.glob("session-*"))
    for old in sessions[:-keep] if keep else sessions:
        try:
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        stamp = time.strftime("%Y%m%d-%H%M%S")
        WORK.mkdir(parents=True, exist_ok=True)
        prune_sessions(keep=5)
        self.dir = Path(tempfile.mkdtemp(prefix=f"session-{stamp}-", dir=WORK))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.rows: list[dict[str, Any]] = []
        self.started = dt.datetime.now(dt.UTC)
        self.counter = 0

    # folders ------------------------------------------------------
    def fresh_dir(self, label: str, peer: Peer | None = None) -> Path:
        self.counter += 1
        d = self.dir / f"{self.counter:03d}-{label}"
        d.mkdir()
        if peer is not None and peer.template_db is not None:
            shutil.copy2(peer.template_db, d / peer.template_db.name)
        return d

    def cleanup(self, d: Path) -> None:
        if not self.args.keep_work:
            shutil.rmtree(d, ignore_errors=True)

    def env_for(self, peer: Peer, cwd: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = base_env()
        env.update(peer.env(cwd))
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _cmd(self, peer: Peer, case: str, params: dict[str, Any]) -> list[str]:
        return [str(peer.python), str(peer.worker), case, "--params", json.dumps(params)]

    def _log_path(self, peer: Peer, case: str) -> Path:
        self.counter += 1
        return self.logs / f"{self.counter:04d}-{peer.name}-{case}.log"

    # one worker ---------------------------------------------------
    def worker(
        self,
        peer: Peer,
        case: str,
        params: dict[str, Any],
        cwd: Path,
        extra_env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        if peer.error:
            return {"ok": False, "error": peer.error}
        timeout = timeout or self.args.timeout
        logp = self._log_path(peer, case)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with open(logp, "wb") as errf:
            try:
                proc = subprocess.run(
                    self._cmd(peer, case, params),
                    cwd=cwd,
                    env=self.env_for(peer, cwd, extra_env),
                    stdout=subprocess.PIPE,
                    stderr=errf,
                    timeout=timeout,
                )
                out, rc = proc.stdout.decode(errors="replace"), proc.returncode
            except subprocess.TimeoutExpired as exc:
                out = (exc.stdout or b"").decode(errors="replace")
                rc = None
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = parse_result(out)
        if rc is None:
            res = {"ok": False, "error": f"timed out after {timeout:.0f} s"}
        elif res is None:
            res = {"ok": False, "error": f"worker exited {rc} without a result"}
        if not res.get("ok") and not res.get("skipped"):
            res.setdefault("stderr_tail", tail(logp))
        res["_worker"] = {
            "rc": rc,
            "wall_s": wall,
            "cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
            "log": str(logp.relative_to(REPO)),
        }
        return res

    # many workers at once ---------------------------------------------
    def parallel(
        self,
        jobs: list[tuple[Peer, str, dict[str, Any], Path, dict[str, str] | None]],
        barrier: tuple[list[Path], Path] | None = None,
        timeout: float | None = None,
    ) -> tuple[list[dict[str, Any]], float]:
        """Start all jobs; with a barrier, wait for every ready file, then create
        the go file. Returns results and the wall time from go to the last exit."""
        timeout = timeout or self.args.timeout
        procs = []
        for peer, case, params, cwd, extra in jobs:
            logp = self._log_path(peer, case)
            errf = open(logp, "wb")  # noqa: SIM115 - closed below
            p = subprocess.Popen(
                self._cmd(peer, case, params),
                cwd=cwd,
                env=self.env_for(peer, cwd, extra),
                stdout=subprocess.PIPE,
                stderr=errf,
            )
            procs.append((p, errf, logp))
        deadline = time.monotonic() + timeout
        if barrier is not None:
            ready, go = barrier
            while not all(r.exists() for r in ready):
                if any(p.poll() is not None for p, _, _ in procs) or time.monotonic() > deadline:
                    break  # a worker died before the barrier: release the others
                time.sleep(0.01)
            go.touch()
        t_go = time.perf_counter()
        results = []
        for p, errf, logp in procs:
            try:
                out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                res = parse_result(out.decode(errors="replace"))
                if res is None:
                    res = {"ok": False, "error": f"worker exited {p.returncode} without a result"}
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                res = {"ok": False, "error": f"timed out after {timeout:.0f} s"}
            errf.close()
            if not res.get("ok") and not res.get("skipped"):
                res.setdefault("stderr_tail", tail(logp))
            res["_worker"] = {"rc": p.returncode, "log": str(logp.relative_to(REPO))}
            results.append(res)
        return results, time.perf_counter() - t_go


def parse_result(out: str) -> dict[str, Any] | None:
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def tail(path: Path, n: int = 1200) -> str:
    try:
        data = path.read_bytes()[-n:]
    except OSError:
        return ""
    return data.decode(errors="replace")


def count_in_log(result: dict[str, Any], needle: str) -> int:
    p = result.get("_worker", {}).get("log")
    if not p:
        return 0
    try:
        return (REPO / p).read_text(errors="replace").count(needle)
    except OSError:
        return 0


def first_error(results: list[dict[str, Any]]) -> str | None:
    for r in results:
        if not r.get("ok"):
            msg = r.get("error") or "error"
            return str(msg)
    return None


# ---------------------------------------------------------------- rows


def make_row(
    s: Session,
    case: str,
    peer: str,
    name: str,
    size: str,
    results: list[dict[str, Any]],
    *,
    wall: tuple[float | None, str] | None = None,
    cpu: tuple[float | None, str] | None = None,
    headline: tuple[float | None, str] | None = None,
    headline_text: str | None = None,
    target_key: str | None = None,
    compare: str | None = None,
    notes: list[str] | None = None,
    status: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    ok = [r for r in results if r.get("ok")]
    if status is None:
        if ok:
            status = "ok"
        elif results and all(r.get("skipped") for r in results):
            status = "skipped"
        else:
            status = "error"
    if error is None and status != "ok":
        error = first_error(results) or "no result"
    notes = list(notes or [])
    if status == "ok" and len(ok) < len(results):
        notes.append(f"{len(results) - len(ok)} of {len(results)} repeats failed: {first_error(results)}")
    row: dict[str, Any] = {
        "case": case,
        "peer": peer,
        "name": name,
        "size": size,
        "status": status,
        "error": error,
        "repeats": len(results),
        "repeats_ok": len(ok),
        "wall": {"value": wall[0], "kind": wall[1]} if wall and status == "ok" else None,
        "cpu": {"value": cpu[0], "kind": cpu[1]} if cpu and status == "ok" else None,
        "headline": ({"value": headline[0], "kind": headline[1]} if headline and status == "ok" else None),
        "headline_text": headline_text if status == "ok" else None,
        "target": None,
        "meets_target": None,
        "compare": compare,
        "notes": notes,
        "measured_at": s.started.isoformat(timespec="seconds"),
        "raw": results,
    }
    if peer == "keel" and target_key and target_key in TARGETS:
        t = TARGETS[target_key]
        row["target"] = t
        if status == "ok":
            field_ = row.get(t["on"])
            v = field_["value"] if field_ else None
            if v is not None:
                row["meets_target"] = {
                    "<=": v <= t["value"],
                    ">=": v >= t["value"],
                    "==": v == t["value"],
                }[t["op"]]
    s.rows.append(row)
    tag = status if status == "ok" else f"{status}: {str(error)[:160]}"
    shown = headline_text or (fmt_value(row["wall"]["value"], row["wall"]["kind"]) if row["wall"] else "")
    log(f"  -> {peer:6s} {name} [{size}]: {shown} ({tag})")
    return row


def vals(results: list[dict[str, Any]], *path: str) -> list[float]:
    out = []
    for r in results:
        if not r.get("ok"):
            continue
        v: Any = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            out.append(float(v))
    return out


def interleaved(peers: list[Peer], repeats: Callable[[Peer], int]) -> Iterable[tuple[int, Peer]]:
    """(repeat, peer) pairs with the peers alternating, so slow drifts in
    machine load hit both sides alike."""
    most = max((repeats(p) for p in peers), default=0)
    for r in range(most):
        for p in peers:
            if r < repeats(p):
                yield r, p


# ---------------------------------------------------------------- cases


def case_import(s: Session, peers: list[Peer]) -> None:
    n = s.args.repeats or s.sizes["import"]["repeats"]
    log(f"import / --help: {n} fresh interpreters each")
    cwd = s.fresh_dir("import")
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {}
    errors: dict[tuple[str, str], str] = {}
    cmds = {}
    for p in peers:
        cmds[p.name] = {
            "pass": [str(p.python), "-c", "pass"],
            "import": [str(p.python), "-c", f"import {p.module}"],
            "help": [str(p.cli), "--help"],
        }
        samples[p.name] = {k: [] for k in cmds[p.name]}
    for r in range(n + 1):  # round 0 warms the OS cache and bytecode caches, discarded
        for p in peers:
            if p.error:
                continue
            for what, cmd in cmds[p.name].items():
                if (p.name, what) in errors:
                    continue
                env = s.env_for(p, cwd)
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                try:
                    proc = subprocess.run(
                        cmd,
                        cwd=cwd,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        timeout=120,
                    )
                    rc, err = proc.returncode, proc.stderr.decode(errors="replace")
                except (OSError, subprocess.TimeoutExpired) as exc:
                    rc, err = -1, str(exc)
                wall = time.perf_counter() - t0
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
                if rc != 0:
                    errors[(p.name, what)] = f"`{' '.join(cmd[-2:])}` exited {rc}: {err[-600:]}"
                elif r > 0:
                    samples[p.name][what].append((wall, cpu))
    s.cleanup(cwd)
    for p in peers:
        sm = samples[p.name]
        base_w = med(w for w, _ in sm["pass"])
        base_c = med(c for _, c in sm["pass"])
        for what, label, tkey in (
            ("import", f"import {p.module} (net of `python -c pass`)", "import"),
            ("help", f"`{p.name} --help` (console script)", "help"),
        ):
            err = p.error or errors.get((p.name, what))
            ws = [w for w, _ in sm[what]]
            cs = [c for _, c in sm[what]]
            res = [{"ok": True, "wall_s": w, "cpu_s": c} for w, c in sm[what]]
            if err:
                res = [{"ok": False, "error": err}]
            if what == "import":
                wall = (med(ws) - base_w) if ws and base_w is not None else None
                cpu = (med(cs) - base_c) if cs and base_c is not None else None
                notes = [
                    f"raw {fmt_time(med(ws))} wall / {fmt_time(med(cs))} CPU; "
                    f"`python -c pass` {fmt_time(base_w)} wall / {fmt_time(base_c)} CPU"
                ]
            else:
                wall, cpu = med(ws), med(cs)
                net = (wall - base_w) if wall is not None and base_w is not None else None
                notes = [f"net of `python -c pass`: {fmt_time(net)}"]
            make_row(
                s,
                "import",
                p.name,
                label,
                f"median of {n} runs",
                res,
                wall=(wall, "time"),
                cpu=(cpu, "time"),
                target_key=tkey,
                compare=f"startup: {what}",
                notes=notes if not err else [],
            )


def case_log_metric(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["log_metric"]
    reps = s.args.repeats or cfg["repeats"]
    log(f"log_metric loop: {reps} repeats")
    results: dict[str, list[dict[str, Any]]] = {p.name: [] for p in peers}
    for _, p in interleaved(peers, lambda p: reps):
        cwd = s.fresh_dir(f"log_metric-{p.name}", p)
        results[p.name].append(s.worker(p, "log_metric", cfg[p.name], cwd))
        s.cleanup(cwd)
    for p in peers:
        res = results[p.name]
        n, chunk = cfg[p.name]["n"], cfg[p.name]["chunk"]
        stored = vals(res, "stored")
        loop_wall = med(vals(res, "wall_us_per_call"))
        tot_wall = med(vals(res, "total_wall_us_per_call"))
        tot_cpu = med(vals(res, "total_cpu_us_per_call"))
        notes = [
            f"whole loop{' + flush' if p.name == 'keel' else ''}: "
            f"{fmt_time(loop_wall * 1e-6 if loop_wall is not None else None)} wall per call",
            f"incl. start/end of run: "
            f"{fmt_time(tot_wall * 1e-6 if tot_wall is not None else None)} wall, "
            f"{fmt_time(tot_cpu * 1e-6 if tot_cpu is not None else None)} CPU per call",
        ]
        if stored and min(stored) < n:
            notes.append(f"only {int(min(stored)):,} of {n:,} points stored!")
        chunk_meds = vals(res, "per_call_us_median")
        if chunk_meds:
            notes.append("per-repeat medians (µs): " + ", ".join(f"{v:.3g}" for v in chunk_meds))
        make_row(
            s,
            "log_metric",
            p.name,
            "log_metric in a loop: per call",
            f"{fmt_int(n)} calls, chunks of {fmt_int(chunk)}",
            res,
            wall=(us(med(chunk_meds)), "time"),
            cpu=(us(med(vals(res, "cpu_us_per_call"))), "time"),
            target_key="log_metric",
            compare="log_metric per call",
            notes=notes,
        )


def case_ingest(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["ingest"]
    reps = s.args.repeats or cfg["repeats"]
    log(f"ingest: {reps} repeats")
    variants = []
    for p in peers:
        if p.name == "mlflow":
            variants.append((p, "ingest_batch", cfg["mlflow_batch"]))
        else:
            variants.append((p, "ingest_loop", cfg["keel_loop"]))
            variants.append((p, "ingest_batch", cfg["keel_batch"]))
    results: dict[tuple[str, str], list[dict[str, Any]]] = {(p.name, c): [] for p, c, _ in variants}
    for _ in range(reps):
        for p, c, params in variants:
            cwd = s.fresh_dir(f"{c}-{p.name}", p)
            results[(p.name, c)].append(s.worker(p, c, params, cwd))
            s.cleanup(cwd)
    for p, c, params in variants:
        res = results[(p.name, c)]
        notes = []
        stored, expected = vals(res, "stored_key0"), vals(res, "expected_key0")
        if stored and expected and min(stored) < max(expected):
            notes.append(f"only {int(min(stored)):,} of {int(max(expected)):,} points of k0 stored!")
        if c == "ingest_loop":
            name = "ingest: log_metric loop + flush (10 keys)"
            size = f"{fmt_int(params['points'])} points"
            lp = med(vals(res, "loop_points_per_s"))
            notes.append(
                f"loop alone (before flush): {fmt_rate(lp)}; "
                f"flush {fmt_time(med(vals(res, 'flush', 'wall_s')))}"
            )
            compare = "ingest: log_metric loop"
        else:
            name = "ingest: client.log_batch"
            size = f"{fmt_int(params['points'])} points, batches of {fmt_int(params['batch'])}"
            notes.append(
                f"building the Metric objects (not timed): {fmt_time(med(vals(res, 'build', 'wall_s')))}"
            )
            compare = "ingest: log_batch"
        make_row(
            s,
            "ingest",
            p.name,
            name,
            size,
            res,
            wall=(med(vals(res, "points_per_s")), "rate"),
            cpu=(us(med(vals(res, "cpu_us_per_point"))), "time"),
            target_key=c,
            compare=compare,
            notes=notes,
        )


def case_history(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["history"]
    for p in peers:
        reps = s.args.repeats or cfg["repeats"][p.name]
        sizes = cfg["points"][p.name]
        batch = cfg["batch"][p.name]
        log(f"get_metric_history {p.name}: populate {sizes}, {reps} repeats")
        cwd = s.fresh_dir(f"history-{p.name}", p)
        if p.name == "mlflow":
            pops = [s.worker(p, "history_populate", {"points": n, "batch": batch}, cwd) for n in sizes]
            run_ids = {str(n): r.get("run_id") for n, r in zip(sizes, pops, strict=True)}
            pop_err = first_error(pops)
        else:
            pop = s.worker(p, "history_populate", {"points": sizes, "batch": batch}, cwd)
            pops = [pop]
            run_ids = pop.get("run_ids") or {}
            pop_err = first_error(pops)
        pop_wall = sum(vals(pops, "populate", "wall_s"))
        variants = [(n, None) for n in sizes]
        if p.name == "keel":
            variants.append((max(sizes), cfg["downsample"]))
        for n, maxp in variants:
            params = {
                "run_id": run_ids.get(str(n)),
                "key": "loss",
                "expected": n,
                "calls": 1 if p.name == "mlflow" else 3,
            }
            if maxp:
                params["max_points"] = maxp
            if pop_err:
                res = [
                    {
                        "ok": False,
                        "error": f"populate failed: {pop_err}",
                        "stderr_tail": pops[0].get("stderr_tail", ""),
                    }
                ]
            else:
                res = [s.worker(p, "history_query", params, cwd) for _ in range(reps)]
            lens = vals(res, "len")
            notes = [f"populated with log_batch in {fmt_time(pop_wall)} (not measured)"]
            if maxp:
                name = f"get_metric_history(max_points={maxp})"
                tkey, compare = "history_downsample", f"history: downsampled {fmt_int(n)} → {maxp}"
                if lens:
                    notes.append(f"returned {int(max(lens))} points")
            else:
                name = "get_metric_history (full)"
                tkey, compare = f"history_{n}", f"history: full {fmt_int(n)}"
                if lens and min(lens) != n:
                    notes.append(f"returned {int(min(lens)):,} of {n:,} points!")
            later = [c["wall_s"] for r in res if r.get("ok") for c in r.get("calls", [])[1:]]
            if later:
                notes.append(f"later calls in the same process: {fmt_time(med(later))}")
            make_row(
                s,
                "history",
                p.name,
                name,
                f"{fmt_int(n)} points",
                res,
                wall=(med(vals(res, "wall_s")), "time"),
                cpu=(med(vals(res, "cpu_s")), "time"),
                target_key=tkey,
                compare=compare,
                notes=notes,
            )
            later_cpu = [c["cpu_s"] for r in res if r.get("ok") for c in r.get("calls", [])[1:]]
            if later:  # a serving process (server, UI) is warm: its reads are these
                make_row(
                    s,
                    "history",
                    p.name,
                    f"{name}, warm: later calls in the same process",
                    f"{fmt_int(n)} points",
                    res,
                    wall=(med(later), "time"),
                    cpu=(med(later_cpu), "time"),
                    target_key=tkey,
                    compare=f"{compare} (warm)",
                    notes=["the first call of a fresh process also loads numpy and compiles statements"],
                )
        s.cleanup(cwd)


def case_search(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["search"]
    reps = s.args.repeats or cfg["repeats"]
    for p in peers:
        for n in cfg["runs"][p.name]:
            log(f"search_runs {p.name}: populate {n} runs, {reps} repeats")
            cwd = s.fresh_dir(f"search-{p.name}-{n}", p)
            pop = s.worker(p, "search_populate", {"runs": n}, cwd)
            smallest = n == min(cfg["runs"][p.name])
            variants = [cfg["max_results"]] + ([None] if smallest else [])
            for mr in variants:
                if not pop.get("ok"):
                    res = [
                        {
                            "ok": False,
                            "error": f"populate failed: {pop.get('error')}",
                            "stderr_tail": pop.get("stderr_tail", ""),
                        }
                    ]
                else:
                    params = {"max_results": mr, "calls": 3}
                    res = [s.worker(p, "search_query", params, cwd) for _ in range(reps)]
                expected = pop.get("matching")
                got = vals(res, "n_results")
                notes = [
                    f"populated {fmt_int(n)} runs × 10 params × 5 metrics with "
                    f"create_run + log_batch in {fmt_time(pop.get('populate', {}).get('wall_s'))}"
                    " (not measured)"
                ]
                if got and expected is not None:
                    want = expected if mr is None else min(mr, expected)
                    if mr is None and p.name == "mlflow":
                        want = min(1000, expected)
                    notes.append(
                        f"{int(got[0])} runs returned ({expected} match)"
                        + ("" if mr is None or int(got[0]) == want else f" — expected {want}!")
                    )
                ordered = [r.get("ordered") for r in res if r.get("ok")]
                if False in ordered:
                    notes.append("results NOT ordered by metrics.m1 DESC!")
                later = [c["wall_s"] for r in res if r.get("ok") for c in r.get("calls", [])[1:]]
                if later:
                    notes.append(f"later calls in the same process: {fmt_time(med(later))}")
                mr_label = (
                    f"max_results={mr}"
                    if mr
                    else (
                        "default max_results (MlflowClient: 1000)"
                        if p.name == "mlflow"
                        else "default max_results"
                    )
                )
                make_row(
                    s,
                    "search",
                    p.name,
                    f"search_runs filter + order_by, {mr_label}",
                    f"{fmt_int(n)} runs",
                    res,
                    wall=(med(vals(res, "wall_s")), "time"),
                    cpu=(med(vals(res, "cpu_s")), "time"),
                    target_key=f"search_{n}" if mr else None,
                    compare=f"search_runs: {fmt_int(n)} runs, "
                    + (f"max_results={mr}" if mr else "default max_results"),
                    notes=notes,
                )
            s.cleanup(cwd)


def case_concurrency(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["concurrency"]
    reps = s.args.repeats or cfg["repeats"]
    procs = cfg["procs"]
    for p in peers:
        n = cfg["n"][p.name]
        log(f"concurrency {p.name}: {procs} processes × {n} log_metric, {reps} repeats")
        per_rep = []
        for _ in range(reps):
            cwd = s.fresh_dir(f"concurrency-{p.name}", p)
            setup = s.worker(p, "concurrent_setup", {}, cwd)
            if not setup.get("ok"):
                per_rep.append(
                    {
                        "ok": False,
                        "error": f"setup failed: {setup.get('error')}",
                        "stderr_tail": setup.get("stderr_tail", ""),
                    }
                )
                s.cleanup(cwd)
                continue
            go = cwd / "go"
            ready = [cwd / f"ready-{i}" for i in range(procs)]
            jobs = [
                (
                    p,
                    "concurrent_log",
                    {"n": n, "idx": i, "ready": str(ready[i]), "go": str(go)},
                    cwd,
                    None,
                )
                for i in range(procs)
            ]
            workers, phase_wall = s.parallel(jobs, barrier=(ready, go))
            run_ids = [w.get("run_id") for w in workers]
            count = s.worker(p, "concurrent_count", {"run_ids": run_ids}, cwd)
            s.cleanup(cwd)
            expected = procs * n
            crashed = [w for w in workers if not w.get("ok")]
            errors = sum(int(w.get("errors", 0)) for w in workers if w.get("ok"))
            samples: dict[str, int] = {}
            for w in workers:
                for k, v in (w.get("error_samples") or {}).items():
                    samples[k] = samples.get(k, 0) + v
                if not w.get("ok"):
                    k = f"worker crashed: {w.get('error')}"
                    samples[k] = samples.get(k, 0) + 1
            stored = count.get("stored") if count.get("ok") else None
            per_rep.append(
                {
                    "ok": True,
                    "expected": expected,
                    "stored": stored,
                    "lost": (expected - stored) if stored is not None else None,
                    "errors": errors,
                    "crashed_workers": len(crashed),
                    "error_samples": samples,
                    "locked_in_logs": sum(count_in_log(w, "database is locked") for w in workers),
                    "phase_wall_s": phase_wall,
                    "worker_cpu_s": sum(float(w.get("cpu_s", 0)) for w in workers if w.get("ok")),
                    "count_error": None if count.get("ok") else count.get("error"),
                    "workers": workers,
                }
            )
        ok = [r for r in per_rep if r.get("ok")]
        calls = reps * procs * n
        errs = sum(r["errors"] for r in ok)
        crashed = sum(r["crashed_workers"] for r in ok)
        lost_known = [r["lost"] for r in ok if r["lost"] is not None]
        lost = sum(lost_known) if lost_known else None
        notes = []
        merged: dict[str, int] = {}
        for r in ok:
            for k, v in r["error_samples"].items():
                merged[k] = merged.get(k, 0) + v
        for k, v in sorted(merged.items(), key=lambda kv: -kv[1])[:4]:
            notes.append(f"{v}× {k}")
        locked = sum(r["locked_in_logs"] for r in ok)
        if locked:
            notes.append(f"'database is locked' appears {locked}× in the workers' stderr")
        if any(r["count_error"] for r in ok):
            notes.append(f"counting failed: {next(r['count_error'] for r in ok if r['count_error'])}")
        rates = [r["stored"] / r["phase_wall_s"] for r in ok if r["stored"]]
        if rates:
            notes.append(f"aggregate stored points/s: {fmt_rate(med(rates))}")
        text = (
            f"{errs:,} errors / {calls:,} calls"
            + (f", {crashed} crashed workers" if crashed else "")
            + (f"; lost {lost:,} / {calls:,} points" if lost is not None else "; lost: ?")
        )
        bad = errs + crashed + (lost if lost is not None else 1)
        make_row(
            s,
            "concurrency",
            p.name,
            f"{procs} processes logging at once (log_metric)",
            f"{procs} × {fmt_int(n)} points, {reps} repeat{'s' if reps > 1 else ''}",
            per_rep,
            wall=(med(r["phase_wall_s"] for r in ok), "time"),
            cpu=(med(r["worker_cpu_s"] for r in ok), "time"),
            headline=(float(bad), "count"),
            headline_text=text,
            target_key="concurrency",
            compare="concurrency: 8 processes",
            notes=notes,
        )


def case_sampler(s: Session, peers: list[Peer]) -> None:
    cfg = s.sizes["sampler"]
    reps = s.args.repeats or cfg["repeats"]
    seconds = s.args.sampler_seconds or cfg["seconds"]
    log(f"sampler: {reps} × (on, off) per peer, all in parallel, {seconds:g} s each")
    jobs, keys, dirs = [], [], []
    skipped: dict[str, str] = {}
    for p in peers:
        if p.name == "mlflow" and not p.error and not (p.info.get("versions") or {}).get("psutil"):
            skipped[p.name] = (
                "psutil is not installed in the MLflow venv (MLflow does not depend "
                "on it); run with --mlflow-psutil to measure MLflow's sampler"
            )
            continue
        for _ in range(reps):
            for enabled in (True, False):
                cwd = s.fresh_dir(f"sampler-{p.name}-{'on' if enabled else 'off'}", p)
                dirs.append(cwd)
                if p.name == "keel":  # unset = keel's default (on, 5 s interval)
                    extra = {"KEEL_SYSTEM_METRICS": None if enabled else "false"}
                else:
                    extra = None
                params = {
                    "seconds": seconds,
                    "enabled": enabled,
                    "interval": cfg["interval"],
                    "warmup": cfg.get("warmup", 0.5),
                }
                jobs.append((p, "sampler", params, cwd, extra))
                keys.append((p.name, enabled))
    results, _ = s.parallel(jobs, timeout=seconds + cfg.get("warmup", 0.5) + s.args.timeout)
    for d in dirs:
        s.cleanup(d)
    for p in peers:
        if p.name in skipped:
            make_row(
                s,
                "sampler",
                p.name,
                "system-metrics sampler overhead",
                "",
                [],
                status="skipped",
                error=skipped[p.name],
                compare="sampler overhead",
            )
            continue
        on = [r for (name, en), r in zip(keys, results, strict=True) if name == p.name and en]
        off = [r for (name, en), r in zip(keys, results, strict=True) if name == p.name and not en]
        c_on, c_off = med(vals(on, "sleep", "cpu_s")), med(vals(off, "sleep", "cpu_s"))
        pct = None
        if c_on is not None and c_off is not None:
            pct = (c_on - c_off) / seconds * 100.0
        notes = []
        if pct is not None:
            t_on, t_off = med(vals(on, "threads")), med(vals(off, "threads"))
            notes.append(
                f"CPU during the {seconds:g} s window: on {fmt_time(c_on)}, off "
                f"{fmt_time(c_off)}; threads on/off: {t_on:g}/{t_off:g}"
            )
            notes.append(
                f"idle CPU with the sampler off: {c_off / seconds * 100:.3f} % of a core ({t_off:g} threads)"
            )
            steady = steady_state_pct(on, off)
            if steady is not None:
                notes.append(f"steady state (from {steady[1]} s to the end of the window): {steady[0]:.3f} %")
            r_on, r_off = med(vals(on, "run_cpu_s")), med(vals(off, "run_cpu_s"))
            notes.append(f"whole run incl. start/end: on {fmt_time(r_on)}, off {fmt_time(r_off)}")
            if t_on is not None and t_off is not None and t_on <= t_off:
                notes.append("no extra thread while on: is the sampler running?")
            keys_on = vals(on, "system_metric_keys")
            if keys_on:
                notes.append(f"system metric keys logged: {int(med(keys_on) or 0)}")
        interval = "5 s (set)" if p.name == "mlflow" else "5 s (default)"
        all_res = on + off
        status = None
        if any(r.get("skipped") for r in on):
            status = "skipped"
        make_row(
            s,
            "sampler",
            p.name,
            f"system-metrics sampler overhead, interval {interval}",
            f"{seconds:g} s sleep after {cfg.get('warmup', 0.5):g} s warm-up, {reps} × on/off",
            all_res,
            headline=(pct, "percent"),
            headline_text=f"{pct:.3f} % of a core" if pct is not None else None,
            cpu=((c_on - c_off) if pct is not None else None, "time"),
            target_key="sampler",
            compare="sampler overhead",
            notes=notes,
            status=status,
            error=next((r.get("error") for r in on if r.get("skipped")), None),
        )


def steady_state_pct(on: list[dict[str, Any]], off: list[dict[str, Any]]) -> tuple[float, int] | None:
    """Sampler overhead over the later part of the window (skips the first
    10 s, or the first half of shorter windows), from the per-second CPU traces."""

    def slope(results: list[dict[str, Any]], k: int) -> float | None:
        rates = []
        for r in results:
            tr = r.get("cpu_trace") or []
            if r.get("ok") and len(tr) > k:
                rates.append((tr[-1] - tr[k - 1]) / (len(tr) - k))
        return med(rates)

    lengths = [len(r.get("cpu_trace") or []) for r in on + off if r.get("ok")]
    if not lengths or min(lengths) < 2:
        return None
    k = min(10, min(lengths) // 2)
    a, b = slope(on, k), slope(off, k)
    if a is None or b is None:
        return None
    return (a - b) * 100.0, k


CASE_FUNCS: dict[str, Callable[[Session, list[Peer]], None]] = {
    "import": case_import,
    "log_metric": case_log_metric,
    "ingest": case_ingest,
    "history": case_history,
    "search": case_search,
    "concurrency": case_concurrency,
    "sampler": case_sampler,
}


# ---------------------------------------------------------------- machine info


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "kernel": platform.release(),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "runner_python": platform.python_version(),
    }
    cpuinfo = _read("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            info["cpu_model"] = line.split(":", 1)[1].strip()
            break
    meminfo = _read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal"):
            info["mem_total_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    cpu_max = _read("/sys/fs/cgroup/cpu.max")
    if cpu_max:
        info["cgroup_cpu_max"] = cpu_max.strip()
    info["loadavg_start"] = os.getloadavg()
    # filesystem holding the work folder
    best = ("", "", "")
    for line in (_read("/proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and str(WORK).startswith(parts[1]) and len(parts[1]) > len(best[1]):
            best = (parts[0], parts[1], parts[2])
    info["work_fs"] = {"device": best[0], "mount": best[1], "type": best[2]}
    try:
        du = shutil.disk_usage(WORK)
        info["work_fs"]["free_gib"] = round(du.free / 2**30, 1)
    except OSError:
        pass
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        info["git_head"] = head.stdout.strip() if head.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        info["git_head"] = None
    return info


# ---------------------------------------------------------------- output


def headline_of(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"**{row['status']}**"
    if row.get("headline_text"):
        return str(row["headline_text"])
    w = row.get("wall")
    return fmt_value(w["value"], w["kind"]) if w else "—"


def cell(row: dict[str, Any] | None, key: str) -> str:
    if row is None:
        return "—"
    if row["status"] != "ok":
        return f"{row['status']}"
    f_ = row.get(key)
    if not f_:
        return "—"
    return fmt_value(f_["value"], f_["kind"])


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.3g}×"


def target_text(row: dict[str, Any] | None) -> str:
    if not row or not row.get("target"):
        return ""
    t = row["target"]
    txt = f"{t['op']} {fmt_value(t['value'], t['kind'])}"
    if t["kind"] == "count":
        txt = "0 errors, 0 lost"
    mark = {True: " ✅", False: " ❌", None: ""}[row.get("meets_target")]
    return txt + mark


def speedup(ml: dict[str, Any] | None, ke: dict[str, Any] | None) -> str:
    if not ml or not ke or ml["status"] != "ok" or ke["status"] != "ok":
        return ""
    if ml["case"] in ("concurrency", "sampler"):
        return ""
    a, b = ml.get("wall"), ke.get("wall")
    if not a or not b or a["value"] in (None, 0) or b["value"] in (None, 0):
        return ""
    if a["kind"] == "rate":
        return fmt_ratio(b["value"] / a["value"])
    if a["kind"] == "time":
        return fmt_ratio(a["value"] / b["value"])
    return ""


def render_md(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m = meta["machine"]
    peers = meta.get("peers", {})
    out = ["# keel vs MLflow — benchmark results", ""]
    out.append(
        f"Measured {meta['finished']} with `{meta['command']}` "
        f"({'quick sizes' if meta['quick'] else 'full sizes'}), runner wall time "
        f"{meta['runner_wall_s'] / 60:.1f} min."
    )
    if meta.get("merged_from"):
        out.append(
            "Rows marked *from an earlier run* were kept from the previous output (`--merge`; "
            f"runs started {', '.join(meta['merged_from'])}); the machine lines below are this "
            "run's."
        )
    out.append("")
    cg = f" (cgroup cpu.max {m['cgroup_cpu_max']})" if m.get("cgroup_cpu_max") else ""
    out.append(
        f"- Machine: {m.get('cpu_model', '?')}, nproc {m.get('nproc')}{cg}, "
        f"{m.get('mem_total_gib', '?')} GiB RAM, {m.get('platform')}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}"
        + (f", at end {', '.join(f'{x:.2f}' for x in m['loadavg_end'])}" if m.get("loadavg_end") else "")
    )
    fs = m.get("work_fs", {})
    out.append(
        f"- Disk: stores under `benchmarks/.work/` on {fs.get('type')} "
        f"({fs.get('mount')}); both peers use SQLite there."
    )
    for name, info in peers.items():
        if info.get("ok"):
            versions = dict(info.get("versions") or {})
            if name == "keel" and not versions.get("keel") and info.get("keel_version_attr"):
                versions["keel"] = f"{info['keel_version_attr']} (keel.__version__)"
            vers = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
            if info.get("keel_file"):
                vers += f"; imported from `{info['keel_file']}`"
            out.append(f"- {name}: Python {info.get('python')}, SQLite {info.get('sqlite')}; {vers}")
        else:
            out.append(f"- {name}: **not available**: {info.get('error')}")
    out.append("")
    out.append(
        "Medians over repeats; each repeat is a fresh worker process in a fresh folder. "
        "CPU is the worker's process CPU time (all threads). Targets are keel's, from the "
        "issue; speed-up is MLflow wall ÷ keel wall (or keel rate ÷ MLflow rate) at the "
        "sizes shown, which differ between peers for the per-call and per-point measures."
    )
    out.append("")
    # summary
    out += [
        "## Summary",
        "",
        "| Measure | MLflow | keel | keel size | Speed-up | keel target |",
        "|---|---|---|---|---|---|",
    ]
    order: list[str] = []
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        k = r.get("compare") or f"{r['case']}: {r['name']}"
        if k not in by:
            order.append(k)
            by[k] = {}
        by[k][r["peer"]] = r
    for k in order:
        ml, ke = by[k].get("mlflow"), by[k].get("keel")
        ml_txt = headline_of(ml) if ml else "—"
        ke_txt = headline_of(ke) if ke else "—"
        if ml and ml["status"] == "ok" and ml["size"] != (ke or {}).get("size"):
            ml_txt += f" ({ml['size']})"
        out.append(
            f"| {k} | {ml_txt} | {ke_txt} | {ke['size'] if ke else ''} | "
            f"{speedup(ml, ke)} | {target_text(ke)} |"
        )
    out.append("")
    # details
    out += [
        "## Details",
        "",
        "| Case | Peer | Measure | Size | Wall (median) | CPU (median) | Target | Notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall = headline_of(r) if r.get("headline_text") else cell(r, "wall")
        if r["case"] == "concurrency" and r["status"] == "ok":
            wall = f"{cell(r, 'wall')} for the logging phase"
        cpu = cell(r, "cpu")
        if r["case"] == "ingest" and r["status"] == "ok":
            cpu += " per point"
        elif r["case"] == "log_metric" and r["status"] == "ok":
            cpu += " per call (incl. flush)" if r["peer"] == "keel" else " per call"
        elif r["case"] == "concurrency" and r["status"] == "ok":
            cpu += " (all workers)"
        elif r["case"] == "sampler" and r["status"] == "ok":
            cpu += " extra CPU in the window"
        notes = "; ".join(r.get("notes") or [])
        if r["status"] != "ok":
            notes = f"{r['status']}: {str(r.get('error'))[:300]}" + (f"; {notes}" if notes else "")
        if r.get("measured_at") != meta["started"]:
            notes = f"(from an earlier run, {r.get('measured_at')}) " + notes
        notes = notes.replace("|", "\\|").replace("\n", " ")
        out.append(
            f"| {r['case']} | {r['peer']} | {r['name']} | {r['size']} | {wall} | {cpu} | "
            f"{target_text(r)} | {notes} |"
        )
    out.append("")
    out += ["## Notes", ""]
    out.append(
        "- MLflow figures quoted by the issue (MLflow 3.17, SQLite): "
        + "; ".join(f"{k} {v}" for k, v in ISSUE_MLFLOW.items())
        + "."
    )
    out.append(
        "- `MlflowClient.search_runs` defaults to max_results=1000 "
        "(`mlflow.search_runs`, the pandas one, to 100,000); both peers are measured with "
        "max_results=100, and once with each tool's default."
    )
    out.append(
        "- get_metric_history and search_runs: the figure is the first call in a fresh worker "
        "process, after a warm-up `search_runs(max_results=1)` that opens the store; it includes "
        "whatever the library loads lazily on that first call. Later calls in the same process "
        "are in the notes."
    )
    out.append(
        "- MLflow runs with telemetry disabled (`MLFLOW_DISABLE_TELEMETRY=true`; this "
        "machine has no network). keel runs with `KEEL_SYSTEM_METRICS=false` except in the "
        "sampler case, matching MLflow's default of no system metrics."
    )
    out.append(
        "- MLflow's schema migrations run once per session into a template `mlflow.db`, "
        "which is copied into each fresh folder (they cost seconds per process and are "
        "not what is measured). keel creates its store itself in each folder."
    )
    out.append(
        "- Raw per-repeat numbers, worker logs paths and machine details are in the JSON next to this file."
    )
    out.append("")
    return "\n".join(out)


def load_previous(name: str) -> dict[str, Any] | None:
    """The existing output, read once before this run writes anything (--merge)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log(f"--merge: cannot read {path}: {exc}")
        return None
    return old if isinstance(old, dict) else None


def write_outputs(
    s: Session,
    meta: dict[str, Any],
    name: str,
    previous: dict[str, Any] | None,
    measured: set[tuple[str, str]],
) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    jpath, mpath = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    rows = list(s.rows)
    meta = dict(meta)
    if previous:
        old_meta = previous.get("meta", {})
        kept = [r for r in previous.get("rows", []) if (r.get("case"), r.get("peer")) not in measured]
        order = {c: i for i, c in enumerate(CASES)}
        rows = sorted(
            kept + rows,
            key=lambda r: (
                order.get(r["case"], 99),
                PEERS.index(r["peer"]) if r["peer"] in PEERS else 9,
            ),
        )
        merged_from = [old_meta.get("started"), *old_meta.get("merged_from", [])]
        meta["merged_from"] = [m for m in dict.fromkeys(merged_from) if m]
        kept_peers = {r["peer"] for r in kept}
        meta["peers"] = {
            **{k: v for k, v in old_meta.get("peers", {}).items() if k in kept_peers},
            **meta.get("peers", {}),
        }
    jpath.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    mpath.write_text(render_md(meta, rows))
    if name == "latest":  # the full run is what users read
        from _docs import demote, write_section

        write_section("tracking", "Tracking", TRACKING_INTRO + "\n" + demote(render_md(meta, rows)))
    return jpath, mpath


TRACKING_INTRO = """keel and MLflow 3 side by side on the same machine and disk, both on SQLite, each in its own
virtualenv, measured in one run by `make bench` (`python benchmarks/run.py --mlflow-psutil`); the method
is in [benchmarks/README.md](../benchmarks/README.md).
"""


# ---------------------------------------------------------------- main


def build_peers(args: argparse.Namespace, wanted: list[str], s: Session) -> list[Peer]:
    peers = []
    for name in wanted:
        if name == "mlflow":
            py, err = ensure_mlflow_venv(args.mlflow_psutil)
            peers.append(
                Peer(
                    "mlflow",
                    py,
                    py.parent / "mlflow",
                    "mlflow",
                    WORKERS / "mlflow_worker.py",
                    _mlflow_env,
                    error=err,
                )
            )
        else:
            py = Path(args.keel_python).absolute() if args.keel_python else REPO / ".venv" / "bin" / "python"
            err = None if py.exists() else f"{py} not found (create the project venv first)"
            peers.append(
                Peer(
                    "keel",
                    py,
                    py.parent / "keel",
                    "keel",
                    WORKERS / "keel_worker.py",
                    _keel_env,
                    error=err,
                )
            )
    for p in peers:
        if p.error:
            p.info = {"ok": False, "error": p.error}
            continue
        # warm-up: writes bytecode caches and loads the OS page cache
        cwd = s.fresh_dir(f"warmup-{p.name}")
        env = s.env_for(p, cwd)
        for cmd in ([str(p.python), "-c", f"import {p.module}"], [str(p.cli), "--help"]):
            try:
                subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired):
                pass
        p.info = s.worker(p, "info", {}, cwd)
        p.info.pop("_worker", None)
        if p.name == "mlflow":
            init = s.worker(p, "init_store", {}, cwd)
            if init.get("ok") and (cwd / "mlflow.db").exists():
                tdir = s.dir / "template-mlflow"
                tdir.mkdir(exist_ok=True)
                shutil.copy2(cwd / "mlflow.db", tdir / "mlflow.db")
                p.template_db = tdir / "mlflow.db"
                p.info["store_init_s"] = init.get("init", {}).get("wall_s")
            else:
                log(f"MLflow template store failed ({init.get('error')}); each worker will create its own")
        s.cleanup(cwd)
        state = "ok" if p.info.get("ok") else f"error: {p.info.get('error')}"
        vers = (p.info.get("versions") or {}).get(p.name)
        log(f"peer {p.name}: {p.python} {vers or ''} ({state})")
    return peers


def parse_list(value: str | None, allowed: list[str], what: str) -> list[str]:
    if not value:
        return list(allowed)
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return [a for a in allowed if a in items]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--only", help=f"comma-separated cases: {','.join(CASES)}")
    ap.add_argument("--peers", help="comma-separated peers: mlflow,keel (default both)")
    ap.add_argument("--repeats", type=int, help="override the number of repeats of every case")
    ap.add_argument("--sampler-seconds", type=float, help="length of the sampler runs")
    ap.add_argument("--timeout", type=float, default=1800, help="per-worker timeout, s")
    ap.add_argument(
        "--name",
        help="output name under benchmarks/results/ (default: latest, or quick with --quick)",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep rows of cases/peers not measured now from the existing output",
    )
    ap.add_argument("--keep-work", action="store_true", help="keep the stores in benchmarks/.work")
    ap.add_argument("--keel-python", help="interpreter for keel (default: .venv/bin/python)")
    ap.add_argument(
        "--mlflow-psutil",
        action="store_true",
        help="install psutil into the MLflow venv so its sampler can be measured",
    )
    args = ap.parse_args(argv)
    cases = parse_list(args.only, CASES, "case")
    wanted = parse_list(args.peers, PEERS, "peer")
    name = args.name or ("quick" if args.quick else "latest")

    t0 = time.perf_counter()
    s = Session(args)
    log(f"session folder: {s.dir.relative_to(REPO)}")
    meta: dict[str, Any] = {
        "started": s.started.isoformat(timespec="seconds"),
        "command": "python benchmarks/run.py"
        + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""),
        "quick": args.quick,
        "cases": cases,
        "sizes": {c: s.sizes[c] for c in cases},
        "machine": machine_info(),
    }
    peers = build_peers(args, wanted, s)
    meta["peers"] = {p.name: {**p.info, "python_path": str(p.python)} for p in peers}
    measured = {(c, p.name) for c in cases for p in peers}
    previous = load_previous(name) if args.merge else None

    def flush_outputs(final: bool) -> tuple[Path, Path]:
        meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        meta["runner_wall_s"] = time.perf_counter() - t0
        meta["complete"] = final
        if final:
            meta["machine"]["loadavg_end"] = os.getloadavg()
        return write_outputs(s, meta, name, previous, measured)

    for c in cases:
        try:
            CASE_FUNCS[c](s, peers)
        except KeyboardInterrupt:
            log("interrupted; writing what was measured")
            break
        except Exception as exc:  # a bug in the runner for one case must not lose the rest
            import traceback

            log(f"case {c} crashed in the runner: {exc}\n{traceback.format_exc()}")
            for p in peers:
                make_row(s, c, p.name, c, "", [{"ok": False, "error": f"runner: {exc!r}"}])
        flush_outputs(final=False)
    jpath, mpath = flush_outputs(final=True)
    if not args.keep_work:
        shutil.rmtree(s.dir / "template-mlflow", ignore_errors=True)
    n_err = sum(1 for r in s.rows if r["status"] == "error")
    log(
        f"done in {(time.perf_counter() - t0) / 60:.1f} min: {len(s.rows)} rows, {n_err} errors; "
        f"wrote {jpath.relative_to(REPO)} and {mpath.relative_to(REPO)} "
        f"(worker logs in {s.logs.relative_to(REPO)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
