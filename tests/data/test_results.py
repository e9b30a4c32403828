from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import polars as pl
import pytest

from keel.data.engine import validate
from keel.data.errors import DataSourceError
from keel.data.results import ValidationResult
from keel.data.suite import Suite

YAML = """\
keel_suite: 1
name: orders
id_columns: [id]
checks:
  - not_null: {column: amount}
  - between: {column: amount, min: 0, max: 10, severity: warn}
  - in_set: {column: status, values: [a, b]}
  - mean_between: {column: amount, min: -1000, max: 1000}
  - row_count_within_sigma: {}
  - not_null: {column: "weird|name"}
"""
DATA = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [1.0, float("nan"), float("inf"), None],
        "status": ["a", "b", "c|d\n<x>", "a"],
        "weird|name": [1, 2, 3, 4],
    }
)


@pytest.fixture
def result() -> ValidationResult:
    return validate(DATA, Suite.from_yaml(YAML, file="suites/orders.yaml"))


def test_verdict_counts_and_exit_codes(result: ValidationResult) -> None:
    statuses = [r.status for r in result.results]
    assert statuses == ["failed", "failed", "failed", "failed", "skipped", "passed"]
    assert result.status == "failed" and result.exit_code == 1
    assert result.counts() == {"passed": 1, "failed": 3, "warned": 1, "error": 0, "skipped": 1}
    assert result["mean_between(amount)"].observed != result["mean_between(amount)"].observed  # NaN
    with pytest.raises(KeyError, match="no check named"):
        result["nope"]


def test_json_round_trips_with_nan_and_infinity(result: ValidationResult) -> None:
    text = result.to_json()
    data = json.loads(text)  # strict JSON: no bare NaN
    assert data["keel_validation"] == 1
    assert data["status"] == "failed" and data["passed"] is False
    assert data["results"][3]["observed"] == "NaN"
    samples = data["results"][1]["samples"]
    assert {"row": 2, "id": 3, "amount": "Infinity"} in samples
    back = ValidationResult.from_json(text)
    assert back.to_dict() == result.to_dict()
    assert math.isinf(back.results[1].samples[1]["amount"])
    assert math.isnan(back.results[3].observed)
    data["keel_validation"] = 99
    with pytest.raises(DataSourceError, match="schema version 99"):
        ValidationResult.from_dict(data)


def test_junit_xml_has_one_case_per_check(result: ValidationResult) -> None:
    root = ET.fromstring(result.to_junit())
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "6" and suite.get("failures") == "3" and suite.get("errors") == "0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in result.results]
    assert cases[0].find("failure") is not None
    assert cases[1].find("failure") is None and "warning" in (cases[1].findtext("system-out") or "")
    assert cases[4].find("skipped") is not None
    assert cases[5].find("failure") is None and cases[5].get("name") == "not_null(weird|name)"


def test_junit_marks_errors() -> None:
    errored = validate(DATA, {"keel_suite": 1, "checks": [{"not_null": {"column": "ghost"}}]})
    root = ET.fromstring(errored.to_junit())
    assert root.get("errors") == "1"
    case = root.find("testsuite/testcase")
    assert case is not None and case.find("error") is not None
    assert errored.exit_code == 2


def test_markdown_lists_failures_and_escapes_pipes(result: ValidationResult) -> None:
    text = result.to_markdown()
    assert text.startswith("## ❌ Data validation failed")
    assert "4 rows · 6 checks: 1 passed, 3 failed, 1 warnings" in text
    assert "| failed | error | not_null(amount) | amount |" in text
    lines = [line for line in text.splitlines() if line.startswith("| failed | warn")]
    assert len(lines) == 1
    assert result.to_markdown(max_rows=1).count("\n| failed") == 1
    assert "… and 3 more failed checks" in result.to_markdown(max_rows=1)


def test_github_annotations_point_at_suite_lines(result: ValidationResult) -> None:
    lines = result.github_annotations().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        "::error file=suites/orders.yaml,line=5,title=dataframe%3A not_null(amount) failed::"
    )
    assert any(line.startswith("::warning file=suites/orders.yaml,line=6,") for line in lines)
    assert all("\n" not in line for line in lines)
    assert validate(DATA, {"keel_suite": 1, "checks": [{"not_empty": {}}]}).github_annotations() == ""
