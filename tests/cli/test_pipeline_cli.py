"""`keel pipeline` end to end, in real processes, on a pipeline module in the project folder."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

KEEL = str(Path(sys.executable).parent / "keel")

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
        env={"PATH": "/usr/bin:/bin", "KEEL_SYSTEM_METRICS": "false", "HOME": str(cwd)},
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
