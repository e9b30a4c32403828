#!/usr/bin/env python3
"""The first call in a process: keel's startup beside Hamilton and Kedro, as whole processes.

    python benchmarks/startup/run.py              # 10 measured rounds
    python benchmarks/startup/run.py --quick      # 3 rounds, results/startup-quick.*, no docs
    python benchmarks/startup/run.py --keel-python /path/to/venv/bin/python

Every figure is a fresh interpreter run in its own folder under benchmarks/.work/ (interpreter start,
imports and exit included), repeated in interleaved rounds after one discarded warm-up round; the
runner reports medians of wall time and of the process's CPU seconds. keel runs from this checkout
(PYTHONPATH=src) with the given interpreter (default: the project's .venv); Hamilton and Kedro from
benchmarks/.venvs/<peer>, created by the pipelines harness's installer. Standard library only.
See benchmarks/startup/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import resource
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
RESULTS = BENCH / "results"
sys.path[:0] = [str(HERE), str(BENCH)]
import scripts  # noqa: E402


def _pipelines_harness() -> Any:
    """benchmarks/pipelines/run.py: its venv installer, environment and machine description."""
    spec = importlib.util.spec_from_file_location("pipelines_run", BENCH / "pipelines" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


P = _pipelines_harness()
log = P.log

# targets from issue 11 ("the first call in a process is fast too")
TARGETS = {"start_run": 0.020, "cached_process": 0.300, "fresh_over_bare": 0.080}


class Bench:
    def __init__(self, keel_python: Path, keel_src: Path, timeout: float, keep: bool):
        self.root = P.WORK / f"startup-{dt.datetime.now():%Y%m%d-%H%M%S}"
        self.root.mkdir(parents=True)
        self.keel_python = keel_python
        self.keel_src = keel_src
        self.timeout = timeout
        self.keep = keep
        self.count = 0

    def folder(self, tag: str) -> Path:
        """A folder that is a project of its own (keel.toml), so keel does not look further up."""
        self.count += 1
        path = self.root / f"{self.count:03d}-{tag}"
        path.mkdir()
        (path / "keel.toml").write_text('project = "bench"\n')
        return path

    def env(self, peer: str) -> dict[str, str]:
        env = P.base_env()  # no PYTHON*, KEEL_*... of the caller; bytecode caches are written
        env.update(DO_NOT_TRACK="true", NO_COLOR="1")
        if peer == "keel":
            env["PYTHONPATH"] = str(self.keel_src)  # this checkout (or --keel-src)
        return env

    def process(self, cmd: list[str], cwd: Path, peer: str) -> dict[str, Any]:
        """Run one process; its wall time, CPU seconds (user + system, all threads) and JSON line."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        launched, t0 = time.time(), time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, env=self.env(peer), capture_output=True, text=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {self.timeout:.0f} s"}
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out: dict[str, Any] = {"ok": proc.returncode == 0, "wall": wall, "cpu": cpu, "launched": launched}
        for line in reversed(proc.stdout.strip().splitlines()):
            if line.startswith("{"):
                out.update(json.loads(line))
                break
        if proc.returncode:
            out["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"
        return out


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def prepare(b: Bench, pythons: dict[str, Path]) -> dict[str, Any]:
    """Folders reused by every round: stores and caches filled once, untimed."""
    kp = str(b.keel_python)
    cases: dict[str, Any] = {}
    cases["bare"] = ("keel", [kp, "-c", "pass"], b.folder("bare"))
    cases["import"] = ("keel", [kp, "-c", "import keel"], b.folder("import"))
    existing = _write(b.folder("start-run"), {"first_run.py": scripts.KEEL_START_RUN})
    b.process([kp, "first_run.py"], existing, "keel")  # creates the store: later runs find it
    cases["start_run"] = ("keel", [kp, "first_run.py"], existing)
    cases["fresh"] = ("keel", [kp, "first_run.py"], None)  # a new folder every time
    files = {"keel_steps.py": scripts.KEEL_STEPS, "pipeline.py": scripts.KEEL_PIPELINE}
    cached = _write(b.folder("keel-cached"), files)
    b.process([kp, "pipeline.py"], cached, "keel")  # fills the store and the cache
    cases["keel_cached"] = ("keel", [kp, "pipeline.py"], cached)
    cli = shutil.which("keel", path=str(b.keel_python.parent)) or str(b.keel_python.parent / "keel")
    cases["keel_cli_cached"] = ("keel", [cli, "pipeline", "run", "keel_steps:chain"], cached)
    if "hamilton" in pythons:
        hp = str(pythons["hamilton"])
        ham = _write(
            b.folder("hamilton"), {"hchain.py": scripts.HAMILTON_MODULE, "pipe.py": scripts.HAMILTON_PIPELINE}
        )
        b.process([hp, "pipe.py"], ham, "hamilton")
        cases["hamilton_cached"] = ("hamilton", [hp, "pipe.py"], ham)
    if "kedro" in pythons:
        kd = _write(b.folder("kedro"), {"pipe.py": scripts.KEDRO_PIPELINE})
        cases["kedro"] = ("kedro", [str(pythons["kedro"]), "pipe.py"], kd)
    return cases


def measure(b: Bench, cases: dict[str, Any], rounds: int) -> dict[str, list[dict[str, Any]]]:
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for r in range(rounds + 1):  # round 0 warms bytecode caches and the page cache: discarded
        for name, (peer, cmd, cwd) in cases.items():
            folder = cwd
            if folder is None:
                folder = _write(b.folder("fresh"), {"first_run.py": scripts.KEEL_START_RUN})
            res = b.process(cmd, folder, peer)
            if cwd is None and not b.keep:
                shutil.rmtree(folder, ignore_errors=True)
            if not res["ok"]:
                log(f"{name}: {res.get('error')}")
            if r:
                raw[name].append(res)
        log(f"round {r}/{rounds} done" + (" (warm-up)" if r == 0 else ""))
    return raw


def med(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def summarize(raw: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, results in raw.items():
        ok = [r for r in results if r.get("ok")]
        row: dict[str, Any] = {
            "n": len(results),
            "ok": len(ok),
            "wall": med([r["wall"] for r in ok]),
            "cpu": med([r["cpu"] for r in ok]),
        }
        for key in ("import_s", "start_run_s", "start_run_cpu_s", "to_start_run_cpu_s"):
            if any(key in r for r in ok):
                row[key] = med([r.get(key) for r in ok])
        if any("returned_at" in r for r in ok):  # launch -> start_run returned, interpreter start included
            row["launch_to_start_run"] = med(
                [r["returned_at"] - r["launched"] for r in ok if "returned_at" in r]
            )
        hits = {r.get("cache_hits") for r in ok}
        if hits != {None}:
            row["cache_hits"] = sorted(h for h in hits if h is not None)
        errors = [r.get("error") for r in results if not r.get("ok")]
        if errors:
            row["error"] = errors[0]
        out[name] = row
    return out


def ft(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.0f} ms" if s >= 0.0995 else f"{s * 1e3:.1f} ms"


def mark(value: float | None, target: float) -> str:
    return "" if value is None else (" ✅" if value <= target else " ❌")


def render(data: dict[str, Any]) -> str:
    s, meta = data["summary"], data["meta"]
    bare = s["bare"]["wall"]
    rows = [
        ("bare Python (`python -c pass`)", "bare", ""),
        ("`python -c 'import keel'`", "import", ""),
        ("keel: script whose first call is `start_run` (store exists)", "start_run", ""),
        ("keel: the same script in a fresh project (no `.keel` yet)", "fresh", ""),
        ("keel: fully cached 20-step pipeline (`Pipeline.run`)", "keel_cached", "cached_process"),
        ("keel: the same through `keel pipeline run keel_steps:chain`", "keel_cli_cached", ""),
        ("Hamilton: fully cached 20-step driver (`.with_cache`)", "hamilton_cached", ""),
        ("Kedro: 20-node `SequentialRunner` (no cache)", "kedro", ""),
    ]
    L = [
        f"# Startup: the first call in a process ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"`{meta['command']}` — {meta['started']}, {meta['duration_s']:.0f} s; {meta['rounds']} measured rounds "
        "(one warm-up round discarded). Medians; every figure is a fresh process (interpreter start and "
        "exit included, so a tracking library's last writes are in it); CPU = the process's user + system "
        "seconds, all threads.",
        "",
        "## Summary",
        "",
        "| | target | keel: wall | keel: CPU |",
        "|---|---|---|---|",
    ]
    sr, fr = s.get("start_run", {}), s.get("fresh", {})
    first, first_cpu = sr.get("start_run_s"), sr.get("start_run_cpu_s")
    L.append(
        f"| first `start_run` returns (timed in the process after `import keel`; store exists) | ≤ 20 ms | "
        f"{ft(first)}{mark(first, TARGETS['start_run'])} | {ft(first_cpu)}{mark(first_cpu, TARGETS['start_run'])} |"
    )
    kc = s.get("keel_cached", {})
    L.append(
        f"| fully cached 20-step pipeline, whole process | ≤ 0.3 s | {ft(kc.get('wall'))}"
        f"{mark(kc.get('wall'), TARGETS['cached_process'])} | {ft(kc.get('cpu'))}"
        f"{mark(kc.get('cpu'), TARGETS['cached_process'])} |"
    )
    bare_cpu = s["bare"]["cpu"]
    over = None if fr.get("launch_to_start_run") is None or bare is None else fr["launch_to_start_run"] - bare
    over_cpu = (
        None
        if fr.get("to_start_run_cpu_s") is None or bare_cpu is None
        else fr["to_start_run_cpu_s"] - bare_cpu
    )
    L.append(
        f"| first run in a fresh project: launch → `start_run` returned, over bare Python | ≤ 80 ms | "
        f"{ft(over)}{mark(over, TARGETS['fresh_over_bare'])} | {ft(over_cpu)}{mark(over_cpu, TARGETS['fresh_over_bare'])} |"
    )
    L += [
        "",
        "CPU: for `start_run`, the main thread's CPU during the call (`time.thread_time()`); for the fresh "
        "project, the main thread's CPU from the interpreter's start to the return, over the CPU of a whole "
        "bare `python -c pass`; for the pipeline, the whole process's CPU seconds (every thread). On a shared, "
        "loaded machine, wall time is several times CPU time for every process, bare Python included "
        f"(here: bare Python {ft(bare)} wall for {ft(bare_cpu)} CPU).",
    ]
    L += [
        "",
        "## Whole processes",
        "",
        "| process | wall | CPU | over bare (wall) | notes |",
        "|---|---|---|---|---|",
    ]
    for label, key, _ in rows:
        row = s.get(key)
        if row is None:
            L.append(
                f"| {label} | not measured | | | {data['peers'].get(key.split('_')[0], {}).get('skipped', '')} |"
            )
            continue
        notes = []
        if "start_run_s" in row:
            notes.append(
                f"`import keel` {ft(row.get('import_s'))}; `start_run` {ft(row['start_run_s'])} "
                f"({ft(row.get('start_run_cpu_s'))} CPU); launch → `start_run` returned "
                f"{ft(row.get('launch_to_start_run'))} ({ft(row.get('to_start_run_cpu_s'))} main-thread CPU)"
            )
        if "cache_hits" in row:
            notes.append(f"cache hits per run: {row['cache_hits']}")
        if row.get("error"):
            notes.append(f"{row['n'] - row['ok']} failed: {' '.join(str(row['error']).split())[:160]}")
        net = None if row["wall"] is None or bare is None or key == "bare" else row["wall"] - bare
        L.append(f"| {label} | {ft(row['wall'])} | {ft(row['cpu'])} | {ft(net)} | {'; '.join(notes)} |")
    L += ["", "## Peers", "", "| peer | version | interpreter |", "|---|---|---|"]
    for peer, info in data["peers"].items():
        L.append(
            f"| {peer} | {info.get('version') or '—'} | `{info.get('python')}`{' — skipped: ' + info['skipped'] if info.get('skipped') else ''} |"
        )
    m = meta["machine"]
    L += [
        "",
        "## Method",
        "",
        "- keel's scripts run with this checkout first on `PYTHONPATH`, default settings (system metrics on, "
        "the store found from the folder: `.keel/keel.db`), in folders under `benchmarks/.work/` that hold a "
        "`keel.toml` (inside this git repository, so `start_run` also records the commit). `first_run.py` "
        "imports keel, calls `keel.start_run`, logs a param and a metric and ends the run; it times "
        "`start_run` with `perf_counter` and stamps the moment it returned, which the runner compares with "
        "the moment it launched the process.",
        "- Cached pipelines: a setup process (untimed) fills the store and cache; every measured process then "
        "reruns the same 20 steps of `x + 1` and reports its cache hits. Kedro has no step cache: its 20 "
        "nodes run in every process.",
        "- Peers run in their own virtualenvs (`benchmarks/.venvs/<peer>`, made by "
        "`benchmarks/pipelines/run.py`'s installer), with the same base interpreter as keel.",
        f"- Machine: {m.get('cpu_model')}, {m.get('nproc')} CPUs, shared and noisy; load average at start "
        f"{m.get('loadavg_start')}; Python {m.get('python')}; git {m.get('git_head')}.",
        "",
    ]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 rounds; results/startup-quick.*, docs untouched")
    ap.add_argument("--rounds", type=int, help="measured rounds (default 10, 3 with --quick)")
    ap.add_argument("--peers", default="hamilton,kedro", help="peers beside keel (default hamilton,kedro)")
    ap.add_argument("--keel-python", help="interpreter for keel (default .venv/bin/python)")
    ap.add_argument("--keel-src", help="keel's source folder to measure (default: this checkout's src)")
    ap.add_argument("--name", help="output name under benchmarks/results (default startup, startup-quick)")
    ap.add_argument("--timeout", type=float, default=300, help="per-process timeout, s")
    ap.add_argument("--install-timeout", type=float, default=300, help="per-peer install timeout, s")
    ap.add_argument("--keep-work", action="store_true", help="keep the folders under benchmarks/.work")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 10)
    keel_python = Path(args.keel_python) if args.keel_python else REPO / ".venv" / "bin" / "python"
    if not keel_python.exists():
        raise SystemExit(f"{keel_python} not found: create the project's .venv or pass --keel-python")
    started, t0 = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    machine = P.machine_info()
    peers: dict[str, dict[str, Any]] = {"keel": {"python": str(keel_python), "version": "this checkout"}}
    pythons: dict[str, Path] = {}
    for peer in [p.strip() for p in args.peers.split(",") if p.strip()]:
        py, version, skip = P.ensure_venv(peer, args.install_timeout)
        peers[peer] = {"python": str(py), "version": version, "skipped": skip}
        if skip:
            log(f"skipping {peer}: {skip}")
        else:
            pythons[peer] = py
    keel_src = Path(args.keel_src).resolve() if args.keel_src else REPO / "src"
    peers["keel"]["version"] = "this checkout" if keel_src == REPO / "src" else str(keel_src)
    b = Bench(keel_python, keel_src, args.timeout, args.keep_work)
    cases = prepare(b, pythons)
    raw = measure(b, cases, rounds)
    data: dict[str, Any] = {
        "meta": {
            "command": "python benchmarks/startup/run.py"
            + ("" if not (argv or sys.argv[1:]) else " " + " ".join(argv or sys.argv[1:])),
            "started": started,
            "duration_s": time.perf_counter() - t0,
            "quick": args.quick,
            "rounds": rounds,
            "targets": TARGETS,
            "machine": machine,
        },
        "peers": peers,
        "summary": summarize(raw),
        "raw": raw,
    }
    name = args.name or ("startup-quick" if args.quick else "startup")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    report = render(data)
    (RESULTS / f"{name}.md").write_text(report)
    if name == "startup" and not args.quick and keel_src == REPO / "src":  # what users read
        from _docs import demote, write_section

        intro = (
            "How long a script or `keel pipeline run` waits for keel before its own work starts, next to "
            "Hamilton and Kedro, written by `python benchmarks/startup/run.py` "
            "([method](../benchmarks/startup/README.md))."
        )
        write_section("startup", "Startup", intro + "\n\n" + demote(report))
    if not args.keep_work:
        shutil.rmtree(b.root, ignore_errors=True)
    log(f"wrote {(RESULTS / name).relative_to(REPO)}.json/.md in {time.perf_counter() - t0:.0f} s")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
