"""Suites: a named list of checks, written in YAML or built in Python, the two equivalent.

The YAML schema (version 1)::

    keel_suite: 1                 # required: the schema version
    name: orders                  # optional, default: the file name
    description: nightly orders   # optional
    id_columns: [order_id]        # optional: columns shown next to failing-row samples
    samples: 20                   # optional: failing rows kept per failed check (default 20, 0 = none)
    checks:                       # required: a list of one-key mappings  {check type: {parameters}}
      - not_null: {column: order_id}
      - between: {column: amount, min: 0, max: 10000, mostly: 0.99, severity: warn, tags: [range]}
      - columns_match: {columns: [order_id, amount, status]}

Every check takes ``severity`` (error | warn, default error), ``tags`` (a list of strings), ``name`` (a unique
label, default ``type(column)``) and ``description``; row-level checks also take ``mostly`` (0..1).
Errors in a suite file name the file, line and column of the offending YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from keel.data.checks import COMMON_KEYS, Check
from keel.data.errors import SuiteError

__all__ = ["SUITE_SCHEMA_VERSION", "Suite"]

SUITE_SCHEMA_VERSION = 1
_TOP_KEYS = ("keel_suite", "name", "description", "id_columns", "samples", "checks")
DEFAULT_SAMPLES = 20
MAX_SAMPLES = 10_000


@dataclass(eq=False)
class Suite:
    """A named list of :class:`~keel.data.checks.Check`.

    >>> suite = Suite("orders", [Check("not_null", column="id")], id_columns=["id"])
    >>> Suite.from_yaml(suite.to_yaml()) == suite
    True
    """

    name: str = "suite"
    checks: list[Check] = field(default_factory=list)
    description: str = ""
    id_columns: list[str] = field(default_factory=list)
    samples: int = DEFAULT_SAMPLES
    file: str | None = None

    def __post_init__(self) -> None:
        self.checks = list(self.checks)
        self.id_columns = list(self.id_columns)
        if (
            isinstance(self.samples, bool)
            or not isinstance(self.samples, int)
            or not (0 <= self.samples <= MAX_SAMPLES)
        ):
            raise SuiteError(
                f"'samples' must be an integer from 0 to {MAX_SAMPLES}, got {self.samples!r}", file=self.file
            )
        seen: dict[str, Check] = {}
        for check in self.checks:
            if not isinstance(check, Check):
                raise SuiteError(f"a suite holds Check objects, got {check!r}", file=self.file)
            if check.name in seen:
                raise check.error(
                    f"the name {check.name!r} is used twice (also line {seen[check.name].line}); give one of "
                    "them a distinct 'name'"
                    if seen[check.name].line
                    else f"the name {check.name!r} is used twice; give one of them a distinct 'name'"
                )
            seen[check.name] = check

    def add(self, type: str, **params: Any) -> Suite:
        """Append a check and return the suite, for chaining: ``suite.add("not_null", column="id")``."""
        check = Check(type, **params)
        Suite.__post_init__(Suite(self.name, [*self.checks, check]))
        self.checks.append(check)
        return self

    # ------------------------------------------------------------------ to and from dicts / YAML

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"keel_suite": SUITE_SCHEMA_VERSION, "name": self.name}
        if self.description:
            data["description"] = self.description
        if self.id_columns:
            data["id_columns"] = list(self.id_columns)
        if self.samples != DEFAULT_SAMPLES:
            data["samples"] = self.samples
        data["checks"] = [check.to_dict() for check in self.checks]
        return data

    def to_yaml(self) -> str:
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=110)
        return text

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | None = None) -> Suite:
        return _build(data, file=file, marks=None)

    @classmethod
    def from_yaml(cls, text: str, *, file: str | None = None) -> Suite:
        """Parse a suite from YAML text; errors carry ``file:line:column``."""
        try:
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                if node is None:
                    raise SuiteError(
                        "the suite is empty; it needs at least 'keel_suite: 1' and 'checks'", file=file
                    )
                data = loader.construct_document(node)
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            problem = exc.problem or "invalid YAML"
            raise SuiteError(
                f"invalid YAML: {problem}",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            ) from exc
        except yaml.YAMLError as exc:
            raise SuiteError(f"invalid YAML: {exc}", file=file) from exc
        return _build(data, file=file, marks=_Marks(node))

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        """Read a suite from a YAML file."""
        path = Path(path)
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist; check the path", file=str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(f"suite file is not UTF-8 text: {exc}", file=str(path)) from exc
        suite = cls.from_yaml(text, file=str(path))
        if suite.name == "suite" and "name" not in (yaml.safe_load(text) or {}):
            suite.name = path.stem
        return suite

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Suite) and self.to_dict() == other.to_dict()

    def __len__(self) -> int:
        return len(self.checks)

    def __iter__(self) -> Any:
        return iter(self.checks)


class _Marks:
    """Line/column lookup into the composed YAML node tree, parallel to the constructed data."""

    def __init__(self, node: yaml.Node | None):
        self.node = node

    def at(self, *path: str | int) -> tuple[int | None, int | None]:
        node = self.node
        for step in path:
            if isinstance(node, yaml.MappingNode):
                found = None
                for key, value in node.value:
                    if key.value == step:
                        found = value if not isinstance(step, str) or not step.startswith("@key:") else key
                        break
                if found is None:
                    break
                node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
                node = node.value[step]
            else:
                break
        if node is None:
            return None, None
        return node.start_mark.line + 1, node.start_mark.column + 1

    def key(self, *path: str | int) -> tuple[int | None, int | None]:
        """Position of the last key of ``path`` itself (not its value)."""
        parent_line, parent_column = self.at(*path[:-1])
        node = self.node
        for step in path[:-1]:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == step), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step] if step < len(node.value) else None
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                if key.value == path[-1]:
                    return key.start_mark.line + 1, key.start_mark.column + 1
        return parent_line, parent_column


def _build(data: Any, *, file: str | None, marks: _Marks | None) -> Suite:
    def fail(message: str, *path: str | int, key: bool = False) -> SuiteError:
        line = column = None
        if marks is not None:
            line, column = marks.key(*path) if key else marks.at(*path)
        return SuiteError(message, file=file, line=line, column=column)

    if not isinstance(data, Mapping):
        raise fail(f"a suite is a mapping with 'keel_suite' and 'checks', got a {type(data).__name__}")
    version = data.get("keel_suite")
    if version is None:
        raise fail("missing 'keel_suite: 1' (the schema version) at the top of the suite")
    if version != SUITE_SCHEMA_VERSION:
        raise fail(
            f"keel_suite: {version!r} is not a schema version this keel reads (it reads "
            f"{SUITE_SCHEMA_VERSION}); upgrade keel or rewrite the suite",
            "keel_suite",
        )
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(f"unknown top-level key {key!r}; allowed: {list(_TOP_KEYS)}", key, key=True)
    checks_data = data.get("checks")
    if not isinstance(checks_data, list):
        raise fail("'checks' must be a list of {check type: {parameters}} mappings", "checks")
    name = data.get("name", "suite")
    if not isinstance(name, str) or not name:
        raise fail("'name' must be a non-empty string", "name")
    id_columns = data.get("id_columns", [])
    if not isinstance(id_columns, list) or not all(isinstance(c, str) for c in id_columns):
        raise fail("'id_columns' must be a list of column names", "id_columns")
    samples = data.get("samples", DEFAULT_SAMPLES)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= MAX_SAMPLES:
        raise fail(f"'samples' must be an integer from 0 to {MAX_SAMPLES}", "samples")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be a string", "description")

    checks: list[Check] = []
    for index, item in enumerate(checks_data):
        line = marks.at("checks", index)[0] if marks else None
        if not isinstance(item, Mapping) or len(item) != 1:
            raise fail(
                "each check is a mapping with one key, its type, e.g. '- not_null: {column: id}'",
                "checks",
                index,
            )
        ((check_type, body),) = item.items()
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            raise fail(f"the parameters of {check_type!r} must be a mapping", "checks", index, check_type)
        options = {k: v for k, v in body.items() if k not in COMMON_KEYS}
        common = {k: body[k] for k in COMMON_KEYS if k in body}
        if "tags" in common and not isinstance(common["tags"], list | tuple):
            raise fail("'tags' must be a list of strings", "checks", index, check_type, "tags")
        try:
            check = Check(str(check_type), file=file, line=line, **common, **options)
        except SuiteError as exc:
            # point at the parameter at fault when there is one
            if marks is not None and exc.param is not None and exc.param in body:
                key_line, key_column = marks.key("checks", index, check_type, exc.param)
                raise SuiteError(
                    exc.reason, file=file, line=key_line, column=key_column, check=exc.check
                ) from exc
            raise
        except TypeError as exc:
            raise fail(f"invalid parameters for {check_type!r}: {exc}", "checks", index) from exc
        checks.append(check)
    return Suite(name, checks, description=description, id_columns=id_columns, samples=samples, file=file)


def suite_from(value: Suite | Mapping[str, Any] | str | Path | Iterable[Check]) -> Suite:
    """Accept a Suite, a dict in the YAML schema, a path to a YAML file, YAML text or a list of checks."""
    if isinstance(value, Suite):
        return value
    if isinstance(value, Mapping):
        return Suite.from_dict(value)
    if isinstance(value, Path):
        return Suite.load(value)
    if isinstance(value, str):
        if "\n" in value or value.lstrip().startswith("keel_suite"):
            return Suite.from_yaml(value)
        return Suite.load(value)
    checks = list(value)
    return Suite("suite", checks)
