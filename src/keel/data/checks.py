"""The :class:`Check` a suite is made of, and the registry of check types (:data:`CATALOG`).

Each check type is a :class:`CheckType`: a name, a category, the parameters it takes and how it is
evaluated; :mod:`keel.data.catalog` declares them. There are four ways to evaluate a check:

``row``        a boolean polars expression per row (true = valid, null = not evaluated); the engine sums its
               failures in the fused scan, ``mostly`` sets the fraction of evaluated rows that must pass, and
               failing rows can be sampled
``aggregate``  one or more polars aggregate expressions computed in the fused scan, then judged in Python
``schema``     judged from the schema alone, without reading rows
``external``   needs something besides this table: another table, a reference profile, a SQL query or the
               history of earlier validations

Nulls are not evaluated by validity checks (``between``, ``in_set``, ``matches_regex``, ...): completeness
is what ``not_null`` and ``null_fraction_at_most`` are for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from keel.data.errors import SuiteError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "CATALOG",
    "Check",
    "CheckType",
    "Outcome",
    "Param",
    "catalog_rows",
    "parse_duration",
    "type_matches",
]

SEVERITIES = ("error", "warn")
COMMON_KEYS = ("column", "severity", "mostly", "tags", "name", "description")


@dataclass(frozen=True)
class Param:
    """One parameter of a check type: ``kind`` is number | int | string | bool | list | strings | any."""

    name: str
    kind: str
    required: bool = False
    doc: str = ""


@dataclass
class Outcome:
    """How an aggregate or schema check came out: passed, what was seen and what was expected."""

    passed: bool
    observed: Any
    expected: str
    message: str = ""


@dataclass(eq=False)
class CheckType:
    """A kind of check: its parameters and how the engine evaluates it (see the module docstring)."""

    name: str
    category: str
    kind: str
    doc: str
    params: tuple[Param, ...] = ()
    column: str = "none"  # "required", "optional" or "none"
    dtype: str = "any"  # what the column must hold: any | numeric | string | orderable | temporal
    predicate: Callable[[Check, Mapping[str, Any]], pl.Expr] | None = None
    aggregates: Callable[[Check], dict[str, pl.Expr]] | None = None
    judge: Callable[[Check, dict[str, Any]], Outcome] | None = None
    schema_judge: Callable[[Check, Mapping[str, Any]], Outcome] | None = None
    sample_filter: Callable[[Check], pl.Expr] | None = None
    expected_text: Callable[[Check], str] | None = None
    #: row checks: how to count evaluated rows cheaply: "column" (the column's non-nulls, because the
    #: predicate is null exactly where the column is), "rows" (every row) or "predicate" (its non-nulls)
    evaluated: str = "column"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(eq=False)
class Check:
    """One check in a suite: a type from :data:`CATALOG`, a column, parameters, severity, ``mostly``, tags.

    >>> Check("between", column="age", min=0, max=130, mostly=0.99).name
    'between(age)'
    """

    type: str
    column: str | None = None
    severity: str = "error"
    mostly: float | None = None
    tags: tuple[str, ...] = ()
    name: str = ""
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    #: where the check was declared (YAML file and 1-based line), for errors and reports
    file: str | None = None
    line: int | None = None

    def __init__(
        self,
        type: str,
        /,
        *,
        column: str | None = None,
        severity: str = "error",
        mostly: float | None = None,
        tags: tuple[str, ...] | list[str] = (),
        name: str = "",
        description: str = "",
        file: str | None = None,
        line: int | None = None,
        **params: Any,
    ):
        self.type = type
        self.column = column
        self.severity = severity
        self.mostly = mostly
        self.tags = tuple(tags)
        self.description = description
        self.params = dict(params)
        self.file = file
        self.line = line
        self.name = name or self.default_name()
        self.validate()

    def default_name(self) -> str:
        target = self.column or self.params.get("columns") or self.params.get("table") or ""
        if isinstance(target, list | tuple):
            target = ",".join(str(t) for t in target)
        return f"{self.type}({target})" if target else self.type

    @property
    def spec(self) -> CheckType:
        return CATALOG[self.type]

    def error(self, message: str, *, param: str | None = None) -> SuiteError:
        """A :class:`SuiteError` about this check; ``param`` names the parameter at fault, if one is."""
        error = SuiteError(
            f"check {getattr(self, 'name', '') or self.type!r}: {message}",
            file=self.file,
            line=self.line,
            check=getattr(self, "name", None),
        )
        error.param = param
        return error

    def validate(self) -> None:
        """Raise :class:`SuiteError` if the type, parameters, severity or ``mostly`` are wrong."""
        if self.type not in CATALOG:
            close = [n for n in CATALOG if n.startswith(self.type[:3])]
            hint = (
                f" Did you mean one of {close}?" if close else " See docs/data-validation.md for the catalog."
            )
            raise SuiteError(f"unknown check type {self.type!r}.{hint}", file=self.file, line=self.line)
        spec = CATALOG[self.type]
        if spec.column == "required" and not self.column:
            raise self.error("needs 'column'")
        if spec.column == "none" and self.column:
            raise self.error("takes no 'column'; see its parameters in the catalog", param="column")
        if self.column is not None and not isinstance(self.column, str):
            raise self.error(f"'column' must be a string, got {self.column!r}", param="column")
        if self.severity not in SEVERITIES:
            raise self.error(f"severity must be 'error' or 'warn', got {self.severity!r}", param="severity")
        if self.mostly is not None:
            if spec.kind != "row":
                raise self.error("'mostly' applies only to row-level checks; remove it", param="mostly")
            if isinstance(self.mostly, bool) or not isinstance(self.mostly, int | float):
                raise self.error(
                    f"'mostly' must be a number between 0 and 1, got {self.mostly!r}", param="mostly"
                )
            if not 0.0 <= float(self.mostly) <= 1.0:
                raise self.error(f"'mostly' must be between 0 and 1, got {self.mostly}", param="mostly")
        if not all(isinstance(t, str) for t in self.tags):
            raise self.error("'tags' must be a list of strings", param="tags")
        known = {p.name for p in spec.params}
        for key, value in self.params.items():
            if key not in known:
                allowed = sorted(known | set(COMMON_KEYS))
                raise self.error(f"unknown parameter {key!r}; {self.type} takes {allowed}", param=key)
            _check_kind(self, spec.param(key), value)  # type: ignore[arg-type]
        for param in spec.params:
            if param.required and param.name not in self.params:
                raise self.error(f"missing required parameter {param.name!r} ({param.doc})")
        if spec.name in BOUND_TYPES and "min" not in self.params and "max" not in self.params:
            raise self.error("give 'min', 'max' or both")
        extra = EXTRA_VALIDATION.get(self.type)
        if extra is not None:
            extra(self)

    def to_dict(self) -> dict[str, Any]:
        """The check as one ``{type: {params}}`` mapping of the YAML schema."""
        body: dict[str, Any] = {}
        if self.column is not None:
            body["column"] = self.column
        body.update(self.params)
        if self.mostly is not None:
            body["mostly"] = self.mostly
        if self.severity != "error":
            body["severity"] = self.severity
        if self.tags:
            body["tags"] = list(self.tags)
        if self.name != self.default_name():
            body["name"] = self.name
        if self.description:
            body["description"] = self.description
        return {self.type: body}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Check) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Check({self.to_dict()!r})"


def _check_kind(check: Check, param: Param, value: Any) -> None:
    ok: Callable[[Any], bool] = {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list | tuple),
        "strings": lambda v: isinstance(v, list | tuple) and all(isinstance(i, str) for i in v),
        "mapping": lambda v: isinstance(v, dict),
        "bound": lambda v: isinstance(v, int | float | str) and not isinstance(v, bool),
        "any": lambda v: True,
    }[param.kind]
    if not ok(value):
        raise check.error(f"parameter {param.name!r} must be a {param.kind}, got {value!r}", param=param.name)


def parse_duration(text: str | int | float) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` or a number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return timedelta(seconds=float(text))
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like '90s', '15m', '24h', '7d' or '2w'")
    number, unit = float(match.group(1)), match.group(2)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return timedelta(seconds=number * seconds)


CATALOG: dict[str, CheckType] = {}
BOUND_TYPES: set[str] = set()
EXTRA_VALIDATION: dict[str, Callable[[Check], None]] = {}


def register(spec: CheckType) -> CheckType:
    CATALOG[spec.name] = spec
    return spec


_TYPE_FAMILIES = {
    "integer": ("Int8", "Int16", "Int32", "Int64", "Int128", "UInt8", "UInt16", "UInt32", "UInt64"),
    "float": ("Float32", "Float64"),
    "numeric": (
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "Int128",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "Float32",
        "Float64",
        "Decimal",
    ),
    "string": ("String", "Categorical", "Enum"),
    "boolean": ("Boolean",),
    "temporal": ("Date", "Datetime", "Time", "Duration"),
    "date": ("Date",),
    "datetime": ("Datetime",),
}


def type_matches(dtype: Any, wanted: str) -> bool:
    """Does a polars dtype match a type name (``int64``, ``string``) or family (``integer``, ``numeric``)?"""
    base = getattr(dtype, "base_type", lambda: dtype)()
    base_name = getattr(base, "__name__", str(base))
    wanted_lower = wanted.lower()
    if wanted_lower in _TYPE_FAMILIES:
        return base_name in _TYPE_FAMILIES[wanted_lower]
    aliases = {"str": "string", "utf8": "string", "bool": "boolean", "double": "float64", "float": "float64"}
    wanted_lower = aliases.get(wanted_lower, wanted_lower)
    return base_name.lower() == wanted_lower or str(dtype).lower() == wanted_lower


def catalog_rows() -> list[tuple[str, str, str, str]]:
    """(name, category, parameters, description) for every check type, for docs and ``--help``."""
    rows = []
    for spec in CATALOG.values():
        params = [f"column{'' if spec.column == 'required' else '?'}"] if spec.column != "none" else []
        params += [p.name + ("" if p.required else "?") for p in spec.params]
        rows.append((spec.name, spec.category, ", ".join(params), spec.doc))
    return rows


# the catalog registers itself on import; it needs the classes above, hence the import at the end
from keel.data import catalog as _catalog  # noqa: E402, F401
