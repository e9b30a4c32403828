from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from keel.data.checks import Check
from keel.data.engine import validate
from keel.data.errors import SuiteError
from keel.data.suite import Suite
from keel.errors import InvalidInputError

YAML = """\
keel_suite: 1
name: orders
description: nightly orders
id_columns: [order_id]
samples: 5
checks:
  - not_null: {column: order_id}
  - between:
      column: amount
      min: 0
      max: 1000
      mostly: 0.99
      severity: warn
      tags: [range, money]
  - in_set: {column: status, values: [new, paid]}
  - columns_match: {columns: [order_id, amount, status], ordered: false}
  - unique: {column: order_id, name: order ids are unique}
"""


def python_suite() -> Suite:
    return Suite(
        "orders",
        [
            Check("not_null", column="order_id"),
            Check(
                "between",
                column="amount",
                min=0,
                max=1000,
                mostly=0.99,
                severity="warn",
                tags=["range", "money"],
            ),
            Check("in_set", column="status", values=["new", "paid"]),
            Check("columns_match", columns=["order_id", "amount", "status"], ordered=False),
            Check("unique", column="order_id", name="order ids are unique"),
        ],
        description="nightly orders",
        id_columns=["order_id"],
        samples=5,
    )


def test_yaml_and_python_suites_are_equivalent(tmp_path: Path) -> None:
    from_yaml = Suite.from_yaml(YAML)
    assert from_yaml == python_suite()
    assert Suite.from_yaml(python_suite().to_yaml()) == from_yaml
    assert [c.line for c in from_yaml.checks] == [7, 8, 15, 16, 17]
    path = python_suite().save(tmp_path / "orders.yaml")
    assert Suite.load(path) == from_yaml
    data = pl.DataFrame({"order_id": [1, 2, 2], "amount": [5.0, 2000.0, 1.0], "status": ["new", "paid", "x"]})
    a, b = validate(data, from_yaml), validate(data, python_suite())
    assert [(r.name, r.status, r.failed_rows) for r in a.results] == [
        (r.name, r.status, r.failed_rows) for r in b.results
    ]
    assert a.results[1].line == 8 and b.results[1].line is None


def test_builder_api() -> None:
    suite = Suite("s").add("not_null", column="x").add("between", column="x", min=0)
    assert [c.name for c in suite] == ["not_null(x)", "between(x)"]
    with pytest.raises(SuiteError, match="used twice"):
        suite.add("not_null", column="x")
    assert len(suite) == 2


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("keel_suite: 1\nchecks:\n  - not_null: {column: a\n", "s.yaml:4:1", "invalid YAML"),
        ("checks: []\n", "s.yaml", "missing 'keel_suite: 1'"),
        ("keel_suite: 7\nchecks: []\n", "s.yaml:1:13", "not a schema version this keel reads"),
        ("keel_suite: 1\nchecks: []\ncolour: red\n", "s.yaml:3:1", "unknown top-level key 'colour'"),
        ("keel_suite: 1\nchecks: {a: 1}\n", "s.yaml:2:9", "'checks' must be a list"),
        (
            "keel_suite: 1\nchecks:\n  - not_null: {column: a}\n  - nopenope: {column: a}\n",
            "s.yaml:4",
            "unknown check type 'nopenope'",
        ),
        (
            "keel_suite: 1\nchecks:\n  - between:\n      column: a\n      min: 0\n      mostly: 3\n",
            "s.yaml:6:7",
            "'mostly' must be between 0 and 1",
        ),
        (
            "keel_suite: 1\nchecks:\n  - between:\n      column: a\n      max: 1\n      colour: 3\n",
            "s.yaml:6:7",
            "unknown parameter 'colour'",
        ),
        (
            "keel_suite: 1\nchecks:\n  - not_null: {column: a}\n  - not_null: {column: a}\n",
            "s.yaml:4",
            "used twice",
        ),
        (
            "keel_suite: 1\nchecks:\n  - not_null: {column: a}\n    between: {column: a}\n",
            "s.yaml:3",
            "a mapping with one key",
        ),
        ("keel_suite: 1\nsamples: -1\nchecks: []\n", "s.yaml:2:10", "'samples' must be an integer"),
        ("keel_suite: 1\nchecks:\n  - in_set: [1, 2]\n", "s.yaml:3:13", "must be a mapping"),
        ("", "s.yaml", "the suite is empty"),
        ("- 1\n- 2\n", "s.yaml", "a suite is a mapping"),
    ],
)
def test_invalid_yaml_points_at_the_line(text: str, where: str, message: str) -> None:
    with pytest.raises(SuiteError) as info:
        Suite.from_yaml(text, file="s.yaml")
    assert str(info.value).startswith(where + ":"), str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, InvalidInputError)


def test_load_missing_file_and_default_name(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="does not exist"):
        Suite.load(tmp_path / "missing.yaml")
    (tmp_path / "nightly.yaml").write_text("keel_suite: 1\nchecks:\n  - not_empty:\n")
    suite = Suite.load(tmp_path / "nightly.yaml")
    assert suite.name == "nightly"
    assert suite.checks[0].type == "not_empty"
    assert suite.file == str(tmp_path / "nightly.yaml")
