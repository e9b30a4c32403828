"""What a validation returns, and the forms it is written in for people and for CI.

:class:`ValidationResult` holds one :class:`CheckResult` per check plus the dataset metrics the scan measured.
It writes itself as JSON (a versioned schema, ``keel_validation: 1``), JUnit XML (one test case per check),
a Markdown summary and GitHub Actions annotations. The HTML report is in :mod:`keel.data.report`.

A check's ``status`` is one of:

``passed``   the check held (for row-level checks with ``mostly``: held on at least that fraction of rows)
``failed``   it did not; with severity ``error`` this fails the validation, with ``warn`` it does not
``error``    it could not be evaluated (a missing column, a wrong type, a missing reference); the
             validation is then an error, never a pass
``skipped``  nothing to compare with yet (a history check on the first validation of a dataset)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["RESULT_SCHEMA_VERSION", "CheckResult", "ValidationResult"]

RESULT_SCHEMA_VERSION = 1
STATUSES = ("passed", "failed", "error", "skipped")


@dataclass
class CheckResult:
    """The outcome of one check."""

    name: str
    type: str
    column: str | None
    severity: str
    status: str
    expected: str = ""
    observed: Any = None
    message: str = ""
    #: row-level checks: rows that failed and rows evaluated (non-null); None for other checks
    failed_rows: int | None = None
    evaluated_rows: int | None = None
    mostly: float | None = None
    tags: tuple[str, ...] = ()
    category: str = ""
    line: int | None = None
    #: up to ``samples`` failing rows (id columns and the checked columns), only for failed checks
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "skipped")

    @property
    def fraction_passed(self) -> float | None:
        if self.failed_rows is None or self.evaluated_rows is None:
            return None
        if self.evaluated_rows == 0:
            return 1.0
        return 1.0 - self.failed_rows / self.evaluated_rows

    def describe(self) -> str:
        """One line for terminals, annotations and test-case messages."""
        if self.status == "error":
            return self.message
        parts = [f"expected {self.expected}" if self.expected else ""]
        if self.failed_rows is not None:
            parts.append(f"{self.failed_rows:,} of {self.evaluated_rows:,} rows failed")
            if self.mostly is not None and self.fraction_passed is not None:
                parts.append(f"{self.fraction_passed:.4%} passed (mostly {self.mostly})")
        elif self.observed is not None:
            parts.append(f"observed {_short(self.observed)}")
        if self.message:
            parts.append(self.message)
        return "; ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "column": self.column,
            "category": self.category,
            "severity": self.severity,
            "status": self.status,
            "expected": self.expected,
            "observed": _jsonable(self.observed),
            "message": self.message,
            "failed_rows": self.failed_rows,
            "evaluated_rows": self.evaluated_rows,
            "fraction_passed": _jsonable(self.fraction_passed),
            "mostly": self.mostly,
            "tags": list(self.tags),
            "line": self.line,
            "samples": [{k: _jsonable(v) for k, v in row.items()} for row in self.samples],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data["name"],
            type=data["type"],
            column=data.get("column"),
            severity=data["severity"],
            status=data["status"],
            expected=data.get("expected", ""),
            observed=_unjson(data.get("observed")),
            message=data.get("message", ""),
            failed_rows=data.get("failed_rows"),
            evaluated_rows=data.get("evaluated_rows"),
            mostly=data.get("mostly"),
            tags=tuple(data.get("tags", ())),
            category=data.get("category", ""),
            line=data.get("line"),
            samples=[{k: _unjson(v) for k, v in row.items()} for row in data.get("samples", [])],
        )


@dataclass
class ValidationResult:
    """Every check's outcome for one dataset and one suite, plus the dataset metrics of the scan.

    ``passed`` is true when no check errored and no ``error``-severity check failed (``warn`` failures are
    reported but do not fail the validation).
    """

    suite: str
    dataset: str
    source: str
    fingerprint: str
    results: list[CheckResult]
    row_count: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0
    suite_file: str | None = None
    run_id: str | None = None
    #: how the scan ran: "polars" (in memory), "polars-streaming" (files), "duckdb" / "sqlite" (push-down)
    engine: str = ""
    #: column histograms for the HTML report: {column: {"edges": [...], "counts": [...]}}
    histograms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if any(r.status == "error" for r in self.results):
            return "error"
        if any(r.status == "failed" and r.severity == "error" for r in self.results):
            return "failed"
        return "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def exit_code(self) -> int:
        """0 passed, 1 an error-severity check failed, 2 a check could not be evaluated (bad input)."""
        return {"passed": 0, "failed": 1, "error": 2}[self.status]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("passed", "failed", "warned", "error", "skipped"), 0)
        for result in self.results:
            if result.status == "failed" and result.severity == "warn":
                counts["warned"] += 1
            else:
                counts[result.status] += 1
        return counts

    def failures(self) -> list[CheckResult]:
        """Failed and errored checks, errors first, then error severity before warnings."""
        bad = [r for r in self.results if r.status in ("failed", "error")]
        return sorted(bad, key=lambda r: (r.status != "error", r.severity != "error"))

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; names: {[r.name for r in self.results][:20]}")

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "keel_validation": RESULT_SCHEMA_VERSION,
            "suite": self.suite,
            "suite_file": self.suite_file,
            "dataset": self.dataset,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "passed": self.passed,
            "counts": self.counts(),
            "row_count": self.row_count,
            "columns": self.columns,
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "run_id": self.run_id,
            "engine": self.engine,
            "histograms": self.histograms,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        from keel.data.errors import DataSourceError

        version = data.get("keel_validation")
        if version != RESULT_SCHEMA_VERSION:
            raise DataSourceError(
                f"validation result has schema version {version!r}; this keel reads {RESULT_SCHEMA_VERSION}"
            )
        return cls(
            suite=data["suite"],
            dataset=data["dataset"],
            source=data["source"],
            fingerprint=data["fingerprint"],
            results=[CheckResult.from_dict(r) for r in data["results"]],
            row_count=data.get("row_count"),
            metrics={k: _unjson(v) for k, v in data.get("metrics", {}).items()},
            columns=data.get("columns", {}),
            started_at=data.get("started_at", ""),
            duration_s=data.get("duration_s", 0.0),
            suite_file=data.get("suite_file"),
            run_id=data.get("run_id"),
            engine=data.get("engine", ""),
            histograms=data.get("histograms", {}),
        )

    @classmethod
    def from_json(cls, text: str) -> ValidationResult:
        return cls.from_dict(json.loads(text))

    # ------------------------------------------------------------------ CI formats

    def to_junit(self) -> str:
        """JUnit XML: one ``testsuite`` for the suite, one ``testcase`` per check.

        Failed error-severity checks are ``<failure>``, checks that could not run are ``<error>``, failed
        warnings pass with a ``<system-out>`` note, skipped checks are ``<skipped>``.
        """
        counts = self.counts()
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<testsuites name={quoteattr("keel data validate")} tests="{len(self.results)}" '
            f'failures="{counts["failed"]}" errors="{counts["error"]}" time="{self.duration_s:.3f}">',
            f'  <testsuite name={quoteattr(self.suite)} tests="{len(self.results)}" '
            f'failures="{counts["failed"]}" errors="{counts["error"]}" skipped="{counts["skipped"]}" '
            f'time="{self.duration_s:.3f}" timestamp={quoteattr(self.started_at)}>',
            "    <properties>",
            f'      <property name="dataset" value={quoteattr(self.dataset)}/>',
            f'      <property name="fingerprint" value={quoteattr(self.fingerprint)}/>',
            f'      <property name="row_count" value="{self.row_count}"/>',
            "    </properties>",
        ]
        for result in self.results:
            classname = quoteattr(f"{self.dataset}.{result.column or result.category or 'table'}")
            lines.append(f"    <testcase classname={classname} name={quoteattr(result.name)}>")
            text = escape(_xml_safe(result.describe()))
            if result.status == "error":
                lines.append(f"      <error message={quoteattr(_xml_safe(result.message))}>{text}</error>")
            elif result.status == "failed" and result.severity == "error":
                lines.append(
                    f"      <failure message={quoteattr(_xml_safe(result.describe()))}>{text}</failure>"
                )
            elif result.status == "failed":
                lines.append(f"      <system-out>warning: {text}</system-out>")
            elif result.status == "skipped":
                lines.append(f"      <skipped message={quoteattr(_xml_safe(result.message))}/>")
            lines.append("    </testcase>")
        lines += ["  </testsuite>", "</testsuites>", ""]
        return "\n".join(lines)

    def to_markdown(self, *, max_rows: int = 50) -> str:
        """A Markdown summary for a CI job summary or a pull-request comment.

        Lists failed and errored checks first (at most ``max_rows``, and says how many more there are).
        """
        counts = self.counts()
        icon = {"passed": "✅", "failed": "❌", "error": "⛔"}[self.status]
        lines = [
            f"## {icon} Data validation {self.status}: `{_md(self.dataset)}` with suite `{_md(self.suite)}`",
            "",
            f"{self.row_count if self.row_count is not None else '?':,} rows · {len(self.results)} checks: "
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['warned']} warnings, "
            f"{counts['error']} errors, {counts['skipped']} skipped · {self.duration_s:.2f} s",
            "",
        ]
        failures = self.failures()
        if failures:
            lines += ["| status | severity | check | column | details |", "|---|---|---|---|---|"]
            for result in failures[:max_rows]:
                lines.append(
                    f"| {result.status} | {result.severity} | {_md(result.name)} "
                    f"| {_md(result.column or '')} "
                    f"| {_md(result.describe())} |"
                )
            if len(failures) > max_rows:
                lines.append(
                    f"\n… and {len(failures) - max_rows} more failed checks (see the JSON or HTML report)."
                )
        else:
            lines.append("Every check passed.")
        return "\n".join(lines) + "\n"

    def github_annotations(self, *, suite_file: str | None = None) -> str:
        """GitHub Actions workflow commands: ``::error`` for failures and errors, ``::warning`` for warnings.

        When the suite came from a file, each annotation points at the check's line in it.
        """
        file = suite_file or self.suite_file
        lines = []
        for result in self.failures():
            level = "warning" if result.status == "failed" and result.severity == "warn" else "error"
            props = []
            if file:
                props.append(f"file={_gh_property(file)}")
                if result.line:
                    props.append(f"line={result.line}")
            props.append(f"title={_gh_property(f'{self.dataset}: {result.name} {result.status}')}")
            lines.append(f"::{level} {','.join(props)}::{_gh_data(result.describe())}")
        return "\n".join(lines) + ("\n" if lines else "")

    def write(self, path: str | Path, fmt: str) -> Path:
        path = Path(path)
        text = {"json": self.to_json, "junit": self.to_junit, "markdown": self.to_markdown}[fmt]()
        path.write_text(text, encoding="utf-8")
        return path


def _jsonable(value: Any) -> Any:
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _unjson(value: Any) -> Any:
    if value == "NaN":
        return math.nan
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    if isinstance(value, dict):
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


def _xml_safe(text: str) -> str:
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
