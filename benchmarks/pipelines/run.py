#!/usr/bin/env python3
"""keel pipelines vs Hamilton, Kedro, Prefect, Metaflow and ZenML (standard library only).

    python benchmarks/pipelines/run.py            # full sizes
    python benchmarks/pipelines/run.py --quick    # small sizes, few repeats
    python benchmarks/pipelines/run.py --peers keel,hamilton

Every measurement runs in a fresh subprocess of the peer's own virtualenv (keel: the project's .venv;
peers: benchmarks/.venvs/<peer>, created with `uv venv` + `uv pip install` when missing) in a fresh
folder under benchmarks/.work/. Workers print one JSON object; the runner takes medians over repeats
and writes benchmarks/results/pipelines.json and pipelines.md. See benchmarks/pipelines/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
WORKERS = HERE / "workers"
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"

PEERS = ["keel", "hamilton", "kedro", "prefect", "metaflow", "zenml"]
SPECS = {
    "hamilton": "sf-hamilton",
    "kedro": "kedro",
    "prefect": "prefect",
    "metaflow": "metaflow",
    "zenml": "zenml[local]",
}
DISTS = {
    "keel": "keel",
    "hamilton": "sf-hamilton",
    "kedro": "kedro",
    "prefect": "prefect",
    "metaflow": "metaflow",
    "zenml": "zenml",  # the distribution's name, without the extra
}
CACHE_NOTE = {  # peers without a cached-rerun measurement
    "kedro": "no cache",
    "metaflow": "no step cache (`resume` only re-runs from a failed step)",
}

FULL: dict[str, Any] = {
    "overhead": {
        "n": 20,
        "repeats": {"keel": 5, "hamilton": 5, "kedro": 5, "prefect": 3, "metaflow": 2, "zenml": 1},
    },
    "chain_long": {"n": 1000, "repeats": {"keel": 3, "hamilton": 1, "kedro": 1}},
    "array": {"mb": 100, "n": 20, "repeats": 3},
    "fan": {"n": 10_000, "repeats": {"untracked": 3, "tracked": 1}},
}
QUICK: dict[str, Any] = {
    "overhead": {
        "n": 20,
        "repeats": {"keel": 2, "hamilton": 2, "kedro": 2, "prefect": 1, "metaflow": 1, "zenml": 1},
    },
    "chain_long": {"n": 1000, "repeats": {"keel": 1, "hamilton": 1, "kedro": 1}},
    "array": {"mb": 10, "n": 20, "repeats": 1},
    "fan": {"n": 1000, "repeats": {"untracked": 1, "tracked": 1}},
}

# targets from the pipelines issue (keel only)
TARGETS = {
    "per_step": 2e-3,  # s per step over bare Python
    "pipeline20": 40e-3,  # s over bare Python for the 20-step pipeline
    "cached20": 50e-3,
    "build1000": 0.2,
    "run1000": 3.0,
    "array_ratio": 1.5,
    "map_branch": 1e-3,
}


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    drop = ("PYTHON", "VIRTUAL_ENV", "CONDA", "KEEL_", "UV_", "PREFECT_", "METAFLOW_", "ZENML_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def peer_env(peer: str, cwd: Path) -> dict[str, str]:
    env = base_env()
    env.update({"DO_NOT_TRACK": "true", "NO_COLOR": "1"})
    if peer == "keel":
        env.update(
            KEEL_TRACKING_URI=f"sqlite:///{cwd}/keel.db",
            KEEL_ARTIFACT_URI=f"file://{cwd}/artifacts",
            KEEL_SYSTEM_METRICS="false",
        )
    elif peer == "prefect":
        env.update(PREFECT_HOME=str(cwd / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    elif peer == "metaflow":
        env.update(
            USERNAME="bench",
            METAFLOW_DEFAULT_DATASTORE="local",
            METAFLOW_DATASTORE_SYSROOT_LOCAL=str(cwd),
            METAFLOW_HOME=str(cwd / "mfhome"),
        )
    elif peer == "zenml":
        env.update(
            ZENML_CONFIG_PATH=str(cwd / "zenml"),
            ZENML_ANALYTICS_OPT_IN="false",
            ZENML_LOGGING_VERBOSITY="WARN",
            ZENML_ENABLE_RICH_TRACEBACK="false",
        )
    return env


def _version(python: Path, dist: str) -> str | None:
    try:
        out = subprocess.run(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True,
            text=True,
            timeout=120,
            env=base_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_venv(peer: str, install_timeout: float) -> tuple[Path, str | None, str | None]:
    """(python, version, skip reason). keel uses the project's .venv; peers get benchmarks/.venvs/<peer>."""
    if peer == "keel":
        py = REPO / ".venv" / "bin" / "python"
        v = _version(py, "keel-mlops")  # keel's distribution name (docs/decisions/010)
        return py, v, None if v else "keel is not importable from .venv"
    venv = VENVS / peer
    py = venv / "bin" / "python"
    v = _version(py, DISTS[peer]) if py.exists() else None
    if v:
        return py, v, None
    uv = shutil.which("uv")
    if uv is None:
        return py, None, "uv is not on PATH"
    log(f"creating {venv.relative_to(REPO)} and installing {SPECS[peer]!r} (uv)")
    base = None
    cfg = REPO / ".venv" / "pyvenv.cfg"
    if cfg.exists():
        for line in cfg.read_text().splitlines():
            k, _, val = line.partition("=")
            if k.strip() == "home" and (Path(val.strip()) / "python3").exists():
                base = str(Path(val.strip()) / "python3")
    try:
        subprocess.run(
            [uv, "venv", "-q", "--clear", "--python", base or sys.executable, str(venv)],
            check=True,
            env=base_env(),
            timeout=install_timeout,
        )
        proc = subprocess.run(
            [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(py), SPECS[peer]],
            capture_output=True,
            text=True,
            env=base_env(),
            timeout=install_timeout,
        )
    except subprocess.TimeoutExpired:
        return py, None, f"install did not finish within {install_timeout:.0f} s"
    except (OSError, subprocess.CalledProcessError) as exc:
        return py, None, f"creating the venv failed: {exc}"
    if proc.returncode:
        return py, None, f"`uv pip install {SPECS[peer]}` failed: {proc.stderr.strip()[-300:]}"
    v = _version(py, DISTS[peer])
    return py, v, None if v else f"{SPECS[peer]} not importable after install"


class Session:
    def __init__(self, timeout: float, keep: bool):
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.root = WORK / f"pipelines-{stamp}"
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.keep = keep
        self.count = 0

    def work(
        self, peer: str, case: str, worker_case: str, args: dict[str, Any], python: Path
    ) -> dict[str, Any]:
        self.count += 1
        tag = f"{self.count:03d}-{peer}-{case}"
        cwd = self.root / tag
        cwd.mkdir()
        cmd = [str(python), str(WORKERS / f"{peer}_worker.py"), worker_case, json.dumps(args)]
        errlog = self.logs / f"{tag}.log"
        t0 = time.perf_counter()
        try:
            with open(errlog, "w") as err:
                proc = subprocess.run(
                    cmd,
                    cwd=cwd,
                    env=peer_env(peer, cwd),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    timeout=self.timeout,
                )
            res = None
            for line in reversed(proc.stdout.strip().splitlines()):
                try:
                    res = json.loads(line)
                    break
                except ValueError:
                    continue
            if res is None:
                res = {
                    "ok": False,
                    "error": f"worker exited {proc.returncode} without a result; see {errlog.relative_to(REPO)}",
                }
        except subprocess.TimeoutExpired:
            res = {"ok": False, "error": f"timed out after {self.timeout:.0f} s"}
        res["process_wall"] = time.perf_counter() - t0
        log(
            f"{tag}: {'ok' if res.get('ok') else 'ERROR ' + str(res.get('error'))[:200]} ({res['process_wall']:.1f} s)"
        )
        if not self.keep:
            shutil.rmtree(cwd, ignore_errors=True)
        return res


def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def get(res: list[dict[str, Any]], key: str, field: str) -> float | None:
    return med([r[key][field] for r in res if r.get("ok") and isinstance(r.get(key), dict)])


def summarize(peer: str, case: str, res: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "peer": peer,
        "case": case,
        "repeats": len(res),
        "ok": sum(bool(r.get("ok")) for r in res),
    }
    errs = [r.get("error") for r in res if not r.get("ok")]
    if errs:
        row["error"] = errs[0]
    for k in keys + ["bare", "build"]:
        for f in ("wall", "cpu"):
            v = get(res, k, f)
            if v is not None:
                row[f"{k}_{f}"] = v
    row["raw"] = res
    return row


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    s = Session(args.timeout, args.keep_work)
    peers: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for peer in args.peers:
        t0 = time.perf_counter()
        py, version, skip = ensure_venv(peer, args.install_timeout)
        peers[peer] = {"version": version, "python": str(py), "skipped": skip}
        if skip:
            log(f"skipping {peer}: {skip}")
            continue
        rep = args.repeats
        ov = sizes["overhead"]
        n = ov["n"]
        modes = ["tracked", "untracked"] if peer == "keel" else [None]
        for mode in modes:
            name = f"keel-{mode}" if mode else peer
            wargs: dict[str, Any] = {"n": n} | ({"mode": mode} if mode else {})
            res = [
                s.work(peer, f"overhead{'-' + mode if mode else ''}", "overhead", wargs, py)
                for _ in range(rep or ov["repeats"][peer])
            ]
            row = summarize(name, "overhead", res, ["first", "warm", "cached", "cache_first"])
            row["steps"] = n
            rows.append(row)
            if row["ok"] == 0 and peer != "keel":
                peers[peer]["skipped"] = f"runs failed: {row.get('error')}"
        if peers[peer]["skipped"]:
            continue
        cl = sizes["chain_long"]
        if peer in cl["repeats"]:
            wargs = {"n": cl["n"]} | ({"tracked": True} if peer == "keel" else {})
            res = [
                s.work(peer, "chain1000", "chain_long", wargs, py) for _ in range(rep or cl["repeats"][peer])
            ]
            row = summarize(peer, "chain_long", res, ["run", "tracked"])
            row["steps"] = cl["n"]
            rows.append(row)
        if peer == "keel":
            ar = sizes["array"]
            for mode in ("untracked", "tracked"):
                res = [
                    s.work(peer, f"array-{mode}", "array", {"mb": ar["mb"], "n": ar["n"], "mode": mode}, py)
                    for _ in range(rep or ar["repeats"])
                ]
                row = summarize(f"keel-{mode}", "array", res, ["first"])
                row.update(mb=ar["mb"], steps=ar["n"])
                rows.append(row)
            fa = sizes["fan"]
            for mode in ("untracked", "tracked"):
                res = [
                    s.work(peer, f"map-{mode}", "fan", {"n": fa["n"], "mode": mode}, py)
                    for _ in range(rep or fa["repeats"][mode])
                ]
                row = summarize(f"keel-{mode}", "map", res, ["first"])
                row["items"] = fa["n"]
                rows.append(row)
        peers[peer]["seconds"] = round(time.perf_counter() - t0, 1)
    if not args.keep_work:
        shutil.rmtree(s.root / "logs", ignore_errors=True) if not any(not r["ok"] for r in rows) else None
    return {"peers": peers, "rows": rows, "logs": str(s.logs.relative_to(REPO))}


# ------------------------------------------------------------------ report


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        info["git_head"] = head.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        info["git_head"] = None
    return info


def ft(s: float | None) -> str:
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def mark(value: float | None, target: float) -> str:
    if value is None:
        return ""
    return " ✅" if value <= target else " ❌"


def derive(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per peer: the figures of the summary table."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = out.setdefault(r["peer"], {})
        if r["case"] == "overhead":
            n = r["steps"]
            for which in ("first", "warm"):
                for f in ("wall", "cpu"):
                    v, b = r.get(f"{which}_{f}"), r.get(f"bare_{f}")
                    if v is not None and b is not None:
                        d[f"{which}_over_{f}"] = v - b
                        d[f"{which}_step_{f}"] = (v - b) / n
            d["cached_wall"], d["cached_cpu"] = r.get("cached_wall"), r.get("cached_cpu")
            if r.get("error"):
                d["error"] = r["error"]
        elif r["case"] == "chain_long":
            d["build1000"] = r.get("build_wall")
            d["run1000"] = r.get("run_wall")
            d["tracked1000"] = r.get("tracked_wall")
            if r.get("error"):
                d["error1000"] = r["error"]
        elif r["case"] == "array":
            if r.get("first_wall") and r.get("bare_wall"):
                d["array_ratio"] = r["first_wall"] / r["bare_wall"]
                d["array_wall"], d["array_bare"] = r["first_wall"], r["bare_wall"]
        elif r["case"] == "map":
            if r.get("first_wall") is not None:
                d["map_branch_wall"] = (r["first_wall"] - r["bare_wall"]) / r["items"]
                d["map_branch_cpu"] = (r["first_cpu"] - r["bare_cpu"]) / r["items"]
    return out


def render_md(data: dict[str, Any]) -> str:
    meta, rows, peers = data["meta"], data["rows"], data["peers"]
    d = derive(rows)
    sz = meta["sizes"]
    L = [
        f"# Pipelines benchmark: keel vs peers ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"`{meta['command']}` — {meta['started']}, {meta['duration_s']:.0f} s. Medians over repeats; "
        "times are wall clock unless marked CPU. Targets (from the pipelines issue) apply to keel.",
        "",
    ]
    L += [
        "## Summary",
        "",
        f"| | per-step overhead (wall / CPU) | {sz['overhead']['n']} steps over bare | repeat run in the same process, per step | fully cached {sz['overhead']['n']}-step rerun | {sz['chain_long']['n']:,} steps: build / run | {sz['array']['mb']} MB × {sz['array']['n']} steps vs bare | `map` over {sz['fan']['n']:,}: overhead per branch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ["keel-tracked", "keel-untracked"] + [p for p in PEERS[1:]]
    for name in order:
        peer = "keel" if name.startswith("keel") else name
        if peer not in peers:
            continue
        if peers[peer].get("skipped") and name == peer:
            L.append(
                f"| **{name}** | skipped: {' '.join(str(peers[peer]['skipped']).split())[:200]} | | | | | | |"
            )
            continue
        x = d.get(name, {})
        k = d.get("keel", {}) if name.startswith("keel") else x
        keelrow = name.startswith("keel")
        step = f"{ft(x.get('first_step_wall'))} / {ft(x.get('first_step_cpu'))}" + (
            mark(x.get("first_step_wall"), TARGETS["per_step"]) if keelrow else ""
        )
        over = ft(x.get("first_over_wall")) + (
            mark(x.get("first_over_wall"), TARGETS["pipeline20"]) if keelrow else ""
        )
        warm = f"{ft(x.get('warm_step_wall'))} / {ft(x.get('warm_step_cpu'))} CPU" + (
            mark(x.get("warm_step_wall"), TARGETS["per_step"]) if keelrow else ""
        )
        if name == "keel-untracked":
            cached = "n/a (no store)"
        elif peer in CACHE_NOTE:
            cached = CACHE_NOTE[peer]
        else:
            cached = ft(x.get("cached_wall")) + (
                mark(x.get("cached_wall"), TARGETS["cached20"]) if keelrow else ""
            )
        if name == "keel-untracked":
            long = f"{ft(k.get('build1000'))}{mark(k.get('build1000'), TARGETS['build1000'])} / {ft(k.get('run1000'))}{mark(k.get('run1000'), TARGETS['run1000'])}"
        elif name == "keel-tracked":
            long = f"(build as untracked) / {ft(k.get('tracked1000'))}{mark(k.get('tracked1000'), TARGETS['run1000'])}"
        elif x.get("error1000"):
            long = f"failed: {x['error1000'][:80]}"
        elif x.get("run1000") is not None:
            long = (
                f"build+run {ft(x.get('run1000'))}"
                if x.get("build1000") is None
                else f"{ft(x['build1000'])} / {ft(x['run1000'])}"
            )
        else:
            long = "not measured"
        arr = (
            f"{x['array_ratio']:.2f}× ({ft(x['array_wall'])} vs {ft(x['array_bare'])})"
            + mark(x["array_ratio"], TARGETS["array_ratio"])
            if "array_ratio" in x
            else "not measured"
        )
        mp = (
            f"{ft(x.get('map_branch_wall'))} / {ft(x.get('map_branch_cpu'))} CPU"
            + mark(x.get("map_branch_wall"), TARGETS["map_branch"])
            if "map_branch_wall" in x
            else "not measured"
        )
        L.append(f"| **{name}** | {step} | {over} | {warm} | {cached} | {long} | {arr} | {mp} |")
    L += [
        "",
        f"Targets: ≤ 2 ms/step and ≤ 40 ms over bare Python for {sz['overhead']['n']} steps; cached rerun ≤ 50 ms; "
        f"{sz['chain_long']['n']:,} steps built ≤ 200 ms and run ≤ 3 s; {sz['array']['mb']} MB array ≤ 1.5× bare; "
        f"`map` over {sz['fan']['n']:,} items ≤ 1 ms per branch. The per-step column is the first run in a fresh "
        "process with a fresh store (it includes one-time costs such as creating the store / starting a server), "
        "net of bare Python, ÷ steps; the repeat-run column is a second, uncached run in the same process "
        "(keel tracked: `cache=False`, same store).",
        "",
    ]
    L += [
        "## Details",
        "",
        "| peer | case | ok/repeats | bare | first run | repeat run | cached: first / rerun | build | other | error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        other = ""
        if r["case"] == "chain_long":
            other = f"run {ft(r.get('run_wall'))} (CPU {ft(r.get('run_cpu'))})" + (
                f"; tracked {ft(r.get('tracked_wall'))} (CPU {ft(r.get('tracked_cpu'))})"
                if r.get("tracked_wall")
                else ""
            )
        size = {
            "overhead": f"{r.get('steps')} steps",
            "chain_long": f"{r.get('steps')} steps",
            "array": f"{r.get('mb')} MB × {r.get('steps')}",
            "map": f"{r.get('items'):,} items" if r.get("items") else "",
        }[r["case"]]
        L.append(
            f"| {r['peer']} | {r['case']} ({size}) | {r['ok']}/{r['repeats']} | {ft(r.get('bare_wall'))} | "
            f"{ft(r.get('first_wall'))} (CPU {ft(r.get('first_cpu'))}) | {ft(r.get('warm_wall'))} | "
            f"{ft(r.get('cache_first_wall'))} / {ft(r.get('cached_wall'))} | {ft(r.get('build_wall'))} | {other} | "
            f"{' '.join((r.get('error') or '').split())[:120]} |"
        )
    L += ["", "## Peers", "", "| peer | version | venv | status |", "|---|---|---|---|"]
    for p, info in peers.items():
        L.append(
            f"| {p} | {info.get('version') or '—'} | `{Path(info['python']).parent.parent.relative_to(REPO) if info.get('python') else ''}` | {('skipped: ' + info['skipped']) if info.get('skipped') else 'measured'} |"
        )
    L += [
        "",
        "## Method",
        "",
        "- Every measurement is a fresh worker process of the peer's own virtualenv, in a fresh folder under "
        "`benchmarks/.work/` (keel: `KEEL_TRACKING_URI=sqlite:///<folder>/keel.db`, `KEEL_ARTIFACT_URI=file://<folder>/artifacts`, "
        "`KEEL_SYSTEM_METRICS=false`; Prefect: `PREFECT_HOME` there (local ephemeral server); Metaflow: local datastore there; "
        "ZenML: `ZENML_CONFIG_PATH` there, analytics off). Imports are not timed (keel imports lazily, so its "
        "tracked workers import `keel.store.sql`, `keel.tracking.client` and `keel.pipelines.tracking` first, as peers' "
        "workers import their packages).",
        "- Steps are trivial (`x + 1` on an int). Bare Python calls the same functions in a loop in the same worker "
        "(median of many loops). Overhead per step = (pipeline time − bare time) ÷ steps, wall and CPU "
        "(`time.process_time()` of the worker: all its threads).",
        "- keel tracked = `Pipeline.run(params)` (outputs materialized content-addressed into the artifact store, "
        "steps recorded, cache consulted); untracked = `keel.pipelines.run_graph(pipeline.build(**params))` in memory. "
        "In a tracked worker: run 1 (fresh store) = first, run 2 (same store) = cached rerun (all 20 steps hit), "
        "run 3 with `cache=False` = repeat run. The other tracked keel cases (1,000 steps, array, `map`) first make one "
        "untimed one-step tracked run, so they measure running in an existing store, not creating it.",
        "- Hamilton: `driver.Builder().with_modules(m).build()` + `execute` (first includes building the driver); "
        "cached rerun = a second `execute` of a driver built `.with_cache(path)`. Kedro: `SequentialRunner` over "
        "`MemoryDataset`s (build + run). Prefect: a `@flow` calling `@task`s; cached = tasks with "
        "`cache_policy=INPUTS + TASK_SOURCE`, `persist_result=True`, second flow run; the local server runs in a "
        "subprocess whose CPU is not in the worker's CPU figure. Metaflow: `python flow.py run` with start, 18 steps "
        "and end (20 steps), CPU = the child processes'. ZenML: default local stack, caching on; second run = cached "
        "rerun, third with `enable_cache=False` = repeat run.",
        "- 1,000-step chain: keel build (`Pipeline.build`) and `run_graph` timed separately, plus a tracked run; "
        "peers only where cheap (Hamilton, Kedro); Prefect, Metaflow and ZenML are left out at this size "
        "(seconds per step above).",
        "- Array: a step creates a float64 array of the given size, then 20 steps each return `x + 1` (a new array); "
        "bare Python does the same calls (median of 3 in the same worker). keel only.",
        "- `map`: `square.map(range(n))` then a fan-in `total(list)`; overhead per branch = (pipeline − bare) ÷ n "
        "(build included). keel only.",
        "- The machine is shared and noisy (2 cores); CPU time is given next to wall time.",
        "",
    ]
    m = meta["machine"]
    L += [
        "## Machine",
        "",
        f"- {m.get('cpu_model')}, {m.get('nproc')} CPUs, {m.get('mem_total_gib')} GiB; "
        f"{m.get('platform')}; Python {m.get('python')}; load average at start {m.get('loadavg_start')}; git {m.get('git_head')}",
        "",
    ]
    return "\n".join(L)


def write_docs(data: dict[str, Any]) -> None:
    """Put the report into its section of docs/benchmarks.md."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _docs import demote, write_section

    intro = (
        "keel's pipelines next to Hamilton, Kedro, Prefect, Metaflow and ZenML, each in its own virtualenv, "
        "written by `python benchmarks/pipelines/run.py` ([method](../benchmarks/pipelines/README.md))."
    )
    write_section("pipelines", "Pipelines", intro + "\n\n" + demote(render_md(data)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--repeats", type=int, help="override every repeat count")
    ap.add_argument("--timeout", type=float, default=600, help="per-worker timeout, s (default 600)")
    ap.add_argument("--install-timeout", type=float, default=300, help="per-peer install timeout, s")
    ap.add_argument("--name", help="output name (default pipelines)")
    ap.add_argument("--keep-work", action="store_true", help="keep the work folders")
    args = ap.parse_args(argv)
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in args.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer(s) {bad}; choose from {PEERS}")
    args.peers = [p for p in PEERS if p in args.peers]
    WORK.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().isoformat(timespec="seconds")
    machine = machine_info()
    t0 = time.perf_counter()
    data = run_all(args)
    data["meta"] = {
        "command": "python benchmarks/pipelines/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started,
        "duration_s": time.perf_counter() - t0,
        "quick": args.quick,
        "sizes": QUICK if args.quick else FULL,
        "targets": TARGETS,
        "machine": machine,
    }
    data["derived"] = derive(data["rows"])
    name = args.name or "pipelines"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    (RESULTS / f"{name}.md").write_text(render_md(data))
    log(f"wrote {(RESULTS / name).relative_to(REPO)}.json/.md")
    if name == "pipelines" and not args.quick:  # the full run is what users read
        write_docs(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
