"""`keel data validate` end to end, in real processes: exit codes, reports, CI outputs, logged runs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

KEEL = str(Path(sys.executable).parent / "keel")

SUITE = """\
keel_suite: 1
name: orders
id_columns: [id]
checks:
  - not_null: {column: id}
  - between: {column: amount, min: 0, max: 100}
  - in_set: {column: status, values: [new, paid], severity: warn}
  - row_count_within_sigma: {sigma: 3}
"""


def keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "KEEL_SYSTEM_METRICS": "false", "HOME": str(cwd)},
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "keel.toml").write_text('project = "default"\n')
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "good.csv").write_text("id,amount,status\n1,10.5,new\n2,20,paid\n3,30,x\n")
    (tmp_path / "bad.csv").write_text("id,amount,status\n1,10.5,new\n2,200,paid\n,30,new\n")
    return tmp_path


def test_pass_writes_reports_and_logs_a_run(folder: Path) -> None:
    out = keel(
        "data",
        "validate",
        "good.csv",
        "--suite",
        "suite.yaml",
        "--report",
        "r.html",
        "--junit",
        "j.xml",
        "--markdown",
        "summary.md",
        cwd=folder,
    )
    assert out.returncode == 0, out.stderr
    assert "PASSED" in out.stdout and "warned" in out.stdout and "in_set(status)" in out.stdout
    html = (folder / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert ElementTree.parse(folder / "j.xml").getroot().get("failures") == "0"
    assert "Data validation passed" in (folder / "summary.md").read_text()
    runs = keel("runs", "list", "--experiment", "data-validation", "--json", cwd=folder)
    assert runs.returncode == 0, runs.stderr
    assert len(json.loads(runs.stdout)) == 1


def test_failed_checks_exit_1_with_ci_outputs(folder: Path) -> None:
    out = keel(
        "data",
        "validate",
        "bad.csv",
        "--suite",
        "suite.yaml",
        "--github-annotations",
        "--json",
        "--no-log",
        cwd=folder,
    )
    assert out.returncode == 1, out.stderr
    annotations = [line for line in out.stdout.splitlines() if line.startswith("::")]
    assert annotations[0].startswith("::error file=suite.yaml,line=5,")
    assert annotations[1].startswith("::error file=suite.yaml,line=6,")
    body = json.loads(out.stdout[out.stdout.index("{") :])
    assert body["status"] == "failed" and body["counts"]["failed"] == 2
    assert body["results"][1]["samples"] == [{"row": 1, "id": 2, "amount": 200.0}]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["missing.csv"], "data path missing.csv does not exist"),
        ({"empty.csv": ""}, ["empty.csv"], "empty.csv is empty"),
        (
            {"ragged.csv": "id,amount,status\n1,2,new\n2,3\n"},
            ["ragged.csv"],
            "ragged.csv:3: line has 2 fields but the header has 3",
        ),
        (
            {
                "typed.csv": "id,amount,status\n"
                + "".join(f"{i},{i},new\n" for i in range(11_000))
                + "x,1,new\n"
            },
            ["typed.csv"],
            "typed.csv:11002: value 'x' in column 'id' does not parse",
        ),
        (
            {"s2.yaml": "keel_suite: 1\nchecks:\n  - between: {column: amount, mostly: 2}\n"},
            ["good.csv", "--suite", "s2.yaml"],
            "s2.yaml:3:31: check 'between(amount)': 'mostly' must be",
        ),
        (
            {"s3.yaml": "keel_suite: 1\nchecks:\n  - not_null: {column: ghost}\n"},
            ["good.csv", "--suite", "s3.yaml"],
            "column 'ghost' is not in good.csv; its columns are id, amount",
        ),
        (
            {"s4.yaml": "keel_suite: 1\nchecks:\n  - mean_between: {column: status, min: 1}\n"},
            ["good.csv", "--suite", "s4.yaml"],
            "has type String, but mean_between needs a numeric column",
        ),
        (None, ["good.csv", "--suite", "nope.yaml"], "suite file nope.yaml does not exist"),
        (None, ["good.csv", "--table", "oops"], "--table takes NAME=DATA"),
        (None, ["good.csv", "--report", "nowhere/r.html"], "folder nowhere does not exist"),
    ],
    ids=[
        "missing",
        "empty",
        "ragged",
        "wrong-type",
        "bad-suite",
        "missing-column",
        "type-mismatch",
        "missing-suite",
        "bad-table",
        "report-folder",
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    folder: Path, setup: dict[str, str] | None, args: list[str], message: str
) -> None:
    for name, text in (setup or {}).items():
        (folder / name).write_text(text)
    if "--suite" not in args:
        args = [*args, "--suite", "suite.yaml"]
    out = keel("data", "validate", *args, "--no-log", cwd=folder)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr.replace("\n", ""), out.stderr
    assert "PASSED" not in out.stdout


def test_usage_errors_exit_2(folder: Path) -> None:
    out = keel("data", "validate", "good.csv", cwd=folder)
    assert out.returncode == 2 and "--suite" in out.stderr
    assert keel("data", "validate", "--help", cwd=folder).returncode == 0


def test_drift_check_with_a_reference_profile(folder: Path) -> None:
    import polars as pl

    from keel.data.profiles import profile

    profile(pl.read_csv(folder / "good.csv")).save(folder / "reference.kprof")
    (folder / "drift.yaml").write_text("keel_suite: 1\nchecks:\n  - drift: {column: amount}\n")
    (folder / "moved.csv").write_text("id,amount,status\n1,1000,new\n2,2000,paid\n3,3000,x\n")
    args = ["--suite", "drift.yaml", "--reference", "reference.kprof", "--no-log"]
    assert keel("data", "validate", "good.csv", *args, cwd=folder).returncode == 0
    moved = keel("data", "validate", "moved.csv", *args, cwd=folder)
    assert moved.returncode == 1, moved.stderr
    missing = keel("data", "validate", "good.csv", "--suite", "drift.yaml", "--no-log", cwd=folder)
    assert missing.returncode == 2 and "needs a reference profile" in missing.stderr
