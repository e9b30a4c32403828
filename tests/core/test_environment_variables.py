"""Every ``KEEL_*`` variable the documentation names works from a real shell.

Each variable is set, alone, in a fresh process: a probe (a tracked run, or the command the variable
concerns) must show the documented effect, and then ``keel runs list`` must succeed without a warning.
The set of variables comes from grepping docs/ and the README, so a newly documented variable fails
here until it has a check of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

KEEL = str(Path(sys.executable).with_name("keel"))

#: what a fresh process reports: the settings it loaded and one tracked run
PROBE = """
import json, os, time
import keel
settings = keel.Settings.load()
with keel.start_run(experiment="env-probe", name="probe") as run:
    keel.log_metric("m", 1.0)
    keel.log_text("hello", "note.txt")
    time.sleep(float(os.environ.get("PROBE_SECONDS", "0")))
client = keel.Client()
got = client.get_run(run.run_id)
print(json.dumps({
    "settings": {k: getattr(settings, k) for k in (
        "tracking_uri", "artifact_uri", "s3_endpoint_url", "project", "heartbeat_interval",
        "flush_interval", "commit_interval", "offline_wait", "system_metrics",
        "system_metrics_interval", "spool_dir")},
    "cpu_core_hour": settings.prices.cpu_core_hour,
    "run_id": run.run_id,
    "user": got.user,
    "project": client.get_experiment(got.experiment_id).project,
    "metrics": sorted(got.metrics),
    "tracking_uri": client.tracking_uri,
}))
"""

PIPELINE = """
from keel.pipelines import pipeline, step

@step
def double(x: int) -> int:
    return 2 * x

@pipeline(name="env-cache")
def twice(x: int = 3) -> int:
    return double(x)
"""


def documented_variables() -> set[str]:
    texts = [p.read_text() for p in sorted((ROOT / "docs").rglob("*.md"))] + [
        (ROOT / "README.md").read_text()
    ]
    names = set(re.findall(r"\bKEEL_[A-Z0-9_]*[A-Z0-9]", "\n".join(texts)))
    return {n for n in names if not n.startswith("KEEL_TEST_")}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_") or k.startswith("KEEL_TEST_")}
    return {**env, "KEEL_SYSTEM_METRICS": "false", **extra}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=120, check=False
    )


def _probe(cwd: Path, env: dict[str, str]) -> dict[str, object]:
    result = _run([sys.executable, "-c", PROBE], cwd, env)
    assert result.returncode == 0, result.stderr
    assert "KEEL_" not in result.stderr, result.stderr  # no warning about the variable
    return dict(json.loads(result.stdout))


def _setting(key: str, expected: object) -> Callable[[Path, dict[str, str]], None]:
    def check(cwd: Path, env: dict[str, str]) -> None:
        assert _probe(cwd, env)["settings"][key] == expected  # type: ignore[index]

    return check


def _tracking_uri(cwd: Path, env: dict[str, str]) -> None:
    found = _probe(cwd, env)
    assert (cwd.parent / "elsewhere.db").is_file() and not (cwd / ".keel" / "keel.db").exists()
    listed = _run([KEEL, "runs", "list", "--json"], cwd, env)
    assert found["run_id"] in {r["run_id"] for r in json.loads(listed.stdout)}


def _tracking_token(cwd: Path, env: dict[str, str]) -> None:
    pytest.importorskip("fastapi", reason="the token goes to a keel server (keel-mlops[server])")
    from keel.server.testing import LiveServer

    with LiveServer(cwd.parent / "server") as server:
        uri = {"KEEL_TRACKING_URI": server.url}
        right = _run([KEEL, "runs", "list", "--json"], cwd, {**uri, "KEEL_TRACKING_TOKEN": server.token})
        none = _run([KEEL, "runs", "list", "--json"], cwd, uri)
    assert right.returncode == 0, right.stderr
    assert none.returncode != 0  # the server refuses a client without the token


def _artifact_uri(cwd: Path, env: dict[str, str]) -> None:
    _probe(cwd, env)
    blobs = [p for p in (cwd.parent / "blobs").rglob("*") if p.is_file()]
    assert blobs and not (cwd / ".keel" / "artifacts").exists()


def _project(cwd: Path, env: dict[str, str]) -> None:
    assert _probe(cwd, env)["project"] == "team-a"


def _system_metrics(cwd: Path, env: dict[str, str]) -> None:
    metrics = _probe(cwd, {**env, "KEEL_SYSTEM_METRICS_INTERVAL": "0.2", "PROBE_SECONDS": "0.8"})["metrics"]
    assert any(str(m).startswith("system/") for m in metrics), metrics  # type: ignore[attr-defined]


def _spool_dir(cwd: Path, env: dict[str, str]) -> None:
    _probe(cwd, env)
    assert (cwd.parent / "spool").is_dir() and not (cwd / ".keel" / "spool").exists()


def _naming(cwd: Path, env: dict[str, str]) -> None:
    passes = _run([KEEL, "names", "check", "--kind", "model", "acme-churn"], cwd, env)
    fails = _run([KEEL, "names", "check", "--kind", "model", "churn"], cwd, env)
    assert passes.returncode == 0, passes.stdout + passes.stderr
    assert fails.returncode == 1 and "acme" in fails.stdout + fails.stderr


def _price(cwd: Path, env: dict[str, str]) -> None:
    assert _probe(cwd, env)["cpu_core_hour"] == 7.5


def _user(cwd: Path, env: dict[str, str]) -> None:
    assert _probe(cwd, env)["user"] == "alice"


def _pipeline_cache(cwd: Path, env: dict[str, str]) -> None:
    (cwd / "envcache.py").write_text(PIPELINE)
    code = (
        "import sys; sys.path.insert(0, '.'); import envcache\n"
        "print(sum(r.cache_hit for r in envcache.twice.run().nodes.values()))"
    )

    def cached_steps(variables: dict[str, str]) -> str:
        result = _run([sys.executable, "-c", code], cwd, variables)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-1]

    cached_steps({})  # fills the step cache
    assert cached_steps(env) == "0"  # the variable turns it off: the step runs again
    assert cached_steps({}) != "0"  # without it the cache answers


def _search_timeout(cwd: Path, env: dict[str, str]) -> None:
    _probe(cwd, env)  # searches (SQLite has no timeout) still work, with no warning
    code = "from keel.limits import search_timeout; print(search_timeout())"
    result = _run([sys.executable, "-c", code], cwd, env)
    assert result.returncode == 0 and result.stdout.split()[-1] == "12.5", result.stderr
    bad = _run([sys.executable, "-c", code], cwd, {"KEEL_SEARCH_TIMEOUT": "soon"})
    assert bad.returncode != 0 and "KEEL_SEARCH_TIMEOUT must be a positive number" in bad.stderr


#: documented variable -> (the value it is set to, the check of its effect)
CHECKS: dict[str, tuple[str, Callable[[Path, dict[str, str]], None]]] = {
    "KEEL_TRACKING_URI": ("sqlite:///{tmp}/elsewhere.db", _tracking_uri),
    "KEEL_TRACKING_TOKEN": ("a-token-a-local-store-ignores", _tracking_token),
    "KEEL_ARTIFACT_URI": ("{tmp}/blobs", _artifact_uri),
    "KEEL_S3_ENDPOINT_URL": ("http://127.0.0.1:9000", _setting("s3_endpoint_url", "http://127.0.0.1:9000")),
    "KEEL_PROJECT": ("team-a", _project),
    "KEEL_HEARTBEAT_INTERVAL": ("2.5", _setting("heartbeat_interval", 2.5)),
    "KEEL_FLUSH_INTERVAL": ("0.2", _setting("flush_interval", 0.2)),
    "KEEL_COMMIT_INTERVAL": ("0.7", _setting("commit_interval", 0.7)),
    "KEEL_OFFLINE_WAIT": ("3", _setting("offline_wait", 3.0)),
    "KEEL_SYSTEM_METRICS": ("true", _system_metrics),
    "KEEL_SYSTEM_METRICS_INTERVAL": ("1.5", _setting("system_metrics_interval", 1.5)),
    "KEEL_SPOOL_DIR": ("{tmp}/spool", _spool_dir),
    "KEEL_NAMING__MODEL__PATTERN": ("acme-{model}", _naming),
    "KEEL_PRICES__CPU_CORE_HOUR": ("7.5", _price),
    "KEEL_USER": ("alice", _user),
    "KEEL_PIPELINE_CACHE": ("false", _pipeline_cache),
    "KEEL_SEARCH_TIMEOUT": ("12.5", _search_timeout),
}


def test_every_documented_variable_has_a_check() -> None:
    documented = documented_variables()
    assert {"KEEL_USER", "KEEL_PIPELINE_CACHE", "KEEL_TRACKING_URI"} <= documented
    assert documented == set(CHECKS), "a documented KEEL_* variable needs a check in CHECKS"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_documented_variable_works_in_a_fresh_process(name: str, project: Path) -> None:
    value, check = CHECKS[name]
    env = {name: value.replace("{tmp}", str(project.parent))}
    check(project, env)
    # `keel runs list` refuses in a folder without a store (it must not create one): make the
    # project's store first, as its first training run would (most probes made one already)
    made = _run([sys.executable, "-c", "import keel; keel.Client().list_experiments()"], project, {})
    assert made.returncode == 0, made.stderr
    listed = _run([KEEL, "runs", "list", "--json"], project, env)
    assert listed.returncode == 0, listed.stderr
    assert "KEEL_" not in listed.stderr, listed.stderr  # neither an error nor a warning
