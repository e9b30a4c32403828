"""`keel pipeline` end to end, in real processes, on a pipeline module in the project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

KEEL = str(Path(sys.executable).parent / "keel")
# the source under test, when it is not the installed one (a worktree run with PYTHONPATH=src)
_PYTHONPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}

MODULE = """
from keel.pipelines import pipeline, step

@step
def load(n: int) -> list:
    return list(range(n))

@step
def scale(data: list, factor: float) -> list:
    return [x * factor for x in data]

@step
def total(data: list) -> float:
    return float(sum(data))

@pipeline
def numbers(n: int = 4, factor: float = 2.0):
    return total(scale(load(n), factor))
"""


def keel(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [KEEL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "KEEL_SYSTEM_METRICS": "false", "HOME": str(cwd), **_PYTHONPATH},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"keel {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.mark.slow
def test_pipeline_commands(project):
    (project / "numbers_pipeline.py").write_text(MODULE)
    (project / "conf.yaml").write_text("n: 5\n")
    first = json.loads(
        keel(
            "pipeline", "run", "numbers_pipeline:numbers", "--config", "conf.yaml", "--json", cwd=project
        ).stdout
    )
    assert first["status"] == "done" and first["params"] == {"n": 5, "factor": 2.0}
    assert [s["status"] for s in first["steps"]] == ["done", "done", "done"]

    second = json.loads(
        keel(
            "pipeline",
            "run",
            "numbers_pipeline:numbers",
            "-c",
            "conf.yaml",
            "--param",
            "factor=3",
            "--json",
            cwd=project,
        ).stdout
    )
    assert [s["status"] for s in second["steps"]] == ["cached", "done", "done"]

    explained = keel("pipeline", "explain", str(second["pipeline_run_id"]), "scale", cwd=project).stdout
    assert "factor" in explained and "2.0" in explained and "3" in explained
    assert (
        "cache hit" in keel("pipeline", "explain", str(second["pipeline_run_id"]), "load", cwd=project).stdout
    )

    listing = keel("pipeline", "list", cwd=project).stdout
    assert "numbers" in listing
    shown = keel("pipeline", "show", second["run_id"][:8], cwd=project).stdout
    assert "scale" in shown and "cached" in shown
    svg = project / "graph.svg"
    keel("pipeline", "graph", str(first["pipeline_run_id"]), "--svg", str(svg), cwd=project)
    root = ElementTree.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and "load" in svg.read_text()
    resumed = json.loads(
        keel("pipeline", "resume", str(first["pipeline_run_id"]), "--json", cwd=project).stdout
    )
    assert [s["status"] for s in resumed["steps"]] == ["cached", "cached", "cached"]

    bad = keel("pipeline", "run", "numbers_pipeline:nothing", cwd=project, check=False)
    assert bad.returncode == 2 and "no pipeline" in bad.stderr
    bad_param = keel(
        "pipeline", "run", "numbers_pipeline:numbers", "--param", "oops", cwd=project, check=False
    )
    assert bad_param.returncode == 2 and "NAME=VALUE" in bad_param.stderr


OPAQUE_MODULE = """
from keel.pipelines import pipeline, step

class Opaque:
    def __init__(self, value):
        self.value = value

@step
def make(n: int) -> Opaque:
    return Opaque(n)

@step
def use(thing: Opaque, scale: float) -> float:
    return thing.value * scale

@pipeline
def opaque(n: int = 3, scale: float = 1.0):
    return use(make(n), scale)
"""


@pytest.mark.slow
def test_a_foreign_pickle_names_the_cli_flags_that_help(project):
    (project / "opaque_pipeline.py").write_text(OPAQUE_MODULE)
    keel("pipeline", "run", "opaque_pipeline:opaque", cwd=project)
    # this machine pickled it: the next run reloads it without any flag
    again = json.loads(
        keel("pipeline", "run", "opaque_pipeline:opaque", "-p", "scale=2", "--json", cwd=project).stdout
    )
    assert [s["status"] for s in again["steps"]] == ["cached", "done"]

    import shutil

    shutil.rmtree(project / ".keel" / "cache")  # as if another machine shared the store
    refused = keel("pipeline", "run", "opaque_pipeline:opaque", "-p", "scale=3", cwd=project, check=False)
    assert refused.returncode == 1
    text = refused.stdout + refused.stderr
    assert "--trust-pickle" in text and "--no-cache" in text
    assert "trust=True" not in text and "cache=False" not in text
    trusted = keel(
        "pipeline", "run", "opaque_pipeline:opaque", "-p", "scale=3", "--trust-pickle", "--json", cwd=project
    )
    assert [s["status"] for s in json.loads(trusted.stdout)["steps"]] == ["cached", "done"]


SCRIPT = """
import json
from keel.pipelines import pipeline, step

def double(x):
    return 2 * x

@step
def load(n: int) -> list:
    return [double(x) for x in range(n)]

@step
def total(data: list) -> float:
    return float(sum(data))

@pipeline
def flow(n: int = 4):
    return total(load(n))

if __name__ == "__main__":
    result = flow.run()
    print(json.dumps({node: record.cache_hit for node, record in result.nodes.items()}))
"""


@pytest.mark.slow
def test_a_script_and_the_cli_share_one_cache(project):
    (project / "flow.py").write_text(SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "KEEL_SYSTEM_METRICS": "false", "HOME": str(project), **_PYTHONPATH}

    def script() -> dict[str, bool]:
        done = subprocess.run(
            [sys.executable, "flow.py"], cwd=project, capture_output=True, text=True, timeout=120, env=env
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    assert script() == {"load": False, "total": False}
    from_cli = json.loads(keel("pipeline", "run", "flow:flow", "--json", cwd=project).stdout)
    assert [s["status"] for s in from_cli["steps"]] == ["cached", "cached"]
    # and the other way round: what the CLI computes, the script reuses
    changed = json.loads(keel("pipeline", "run", "flow:flow", "-p", "n=6", "--json", cwd=project).stdout)
    assert [s["status"] for s in changed["steps"]] == ["done", "done"]
    (project / "flow.py").write_text(SCRIPT.replace("def flow(n: int = 4)", "def flow(n: int = 6)"))
    assert script() == {"load": True, "total": True}
