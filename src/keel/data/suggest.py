"""Suggest a validation suite from a profile, for a person to review before using it.

The suggestion (a dict in the suite YAML schema, see :mod:`keel.data.suite`) holds:

- the column set in order (``columns_match``) and every column's type (``column_type``);
- ``not_null`` for columns without nulls, else ``null_fraction_at_most`` with a tolerance above the seen
  fraction;
- ``between`` for numeric columns that do not identify rows, widened on each side by the larger of
  ``margin`` times the seen range and three standard deviations (a bound that was never crossed, such as
  0 for non-negative data, is kept);
- ``in_set`` for string, categorical and integer columns with at most ``max_set_size`` distinct values (when
  the profile counted them exactly);
- ``unique`` for columns that identify rows (:func:`keel.data.identifiers.id_like`: ids, keys, emails)
  whose values were all distinct, never for dates or times (two events can share a day);
- ``length_between`` for strings: one length when every value had it (codes, UUIDs), else the seen range
  widened by its width and three standard deviations of the lengths, so that the next sample's shortest
  email still passes; and ``email`` / ``url`` / ``uuid`` / ``parses_datetime`` when every value followed
  that pattern.

The suggestion is meant to hold for the next sample of the same source, not only for the rows profiled:
``tests/data/test_suggest.py`` suggests from one random sample and validates fresh ones.
Every suggested check is tagged ``suggested``.
"""

from __future__ import annotations

import math
from typing import Any

from keel.data.identifiers import id_like
from keel.data.profiles import CATEGORICAL, NUMERIC, STRING, ColumnProfile, Profile

__all__ = ["suggest_suite"]

TAGS = ["suggested"]
UNIQUE_TOLERANCE = 0.03  # the distinct-count sketch's error (about 1.6 %), with room
#: ranges are widened by at least this many standard deviations on each side
STD_MARGIN = 3.0
PATTERN_CHECKS = {
    "email": "email",
    "url": "url",
    "uuid": "uuid",
    "date": "parses_datetime",
    "datetime": "parses_datetime",
}


def suggest_suite(
    profile: Profile,
    *,
    name: str | None = None,
    margin: float = 0.1,
    null_margin: float = 0.05,
    max_set_size: int = 20,
) -> dict[str, Any]:
    """A suite (as a dict for :meth:`keel.data.Suite.from_dict` or YAML) that ``profile``'s data passes."""
    checks: list[dict[str, Any]] = [
        {"not_empty": {"tags": list(TAGS)}}
        if profile.row_count
        else {"row_count_between": {"max": 0, "tags": list(TAGS)}},
        {"columns_match": {"columns": list(profile.columns), "ordered": True, "tags": list(TAGS)}},
    ]
    for column in profile:
        checks.extend(_column_checks(column, margin, null_margin, max_set_size))
    return {
        "keel_suite": 1,
        "name": name or _suite_name(profile.name),
        "description": f"suggested from a profile of {profile.row_count:,} rows of {profile.name or 'data'}; "
        "review before use",
        "checks": checks,
    }


def _column_checks(
    column: ColumnProfile, margin: float, null_margin: float, max_set: int
) -> list[dict[str, Any]]:
    name = column.name
    out: list[dict[str, Any]] = [
        {"column_type": {"column": name, "type": _type_name(column.dtype), "tags": list(TAGS)}}
    ]
    if column.count == 0:
        return out
    if column.null_count == 0:
        out.append({"not_null": {"column": name, "tags": list(TAGS)}})
    else:
        tolerance = min(
            1.0, _round_up(column.null_fraction + max(null_margin, column.null_fraction * 0.5), 3)
        )
        out.append({"null_fraction_at_most": {"column": name, "max": tolerance, "tags": list(TAGS)}})
    if column.non_null_count == 0:
        return out
    integer = column.inferred_type == "integer"
    keyed = column.kind in (STRING, CATEGORICAL) or (column.kind == NUMERIC and integer)
    distinct = column.distinct_count
    small_set = (
        keyed
        and column.frequent is not None
        and column.frequent_exact
        and 0 < distinct <= max_set
        and len(column.top_values(max_set + 1)) <= max_set
    )
    identifies = id_like(column) is not None
    all_distinct = (
        distinct == column.non_null_count
        if column.distinct_exact
        else distinct >= column.non_null_count * (1 - UNIQUE_TOLERANCE)
    )
    unique = (
        keyed
        and identifies
        and not small_set
        and all_distinct
        and column.inferred_type not in ("date", "datetime")
    )
    if column.kind == NUMERIC and column.moments.n and not identifies:
        std = math.sqrt(column.moments.variance)
        low, high = _widen(column.moments.min, column.moments.max, margin, integer, std)
        out.append({"between": {"column": name, "min": low, "max": high, "tags": list(TAGS)}})
    if small_set:
        values: list[Any] = [v for v, _ in column.top_values(max_set)]
        values = sorted(int(v) for v in values) if column.kind == NUMERIC else sorted(values)
        out.append({"in_set": {"column": name, "values": values, "tags": list(TAGS)}})
    if unique:
        out.append({"unique": {"column": name, "tags": list(TAGS)}})
    if column.kind in (STRING, CATEGORICAL) and column.lengths is not None and column.lengths.n:
        shortest, longest = _length_range(column.lengths)
        out.append({"length_between": {"column": name, "min": shortest, "max": longest, "tags": list(TAGS)}})
        for pattern, check in PATTERN_CHECKS.items():
            if column.patterns.get(pattern, 0) == column.non_null_count:
                out.append({check: {"column": name, "tags": list(TAGS)}})
                break
    return out


def _length_range(lengths: Any) -> tuple[int, int]:
    """Character lengths the next sample will fit: the one length every value had, or the seen range
    widened on each side by the larger of its width and three standard deviations (at least 2)."""
    shortest, longest = int(lengths.min), int(lengths.max)
    if shortest == longest:
        return shortest, longest
    spread = math.ceil(max(longest - shortest, STD_MARGIN * math.sqrt(lengths.variance), 2))
    return max(0, shortest - spread), longest + spread


def _widen(low: float, high: float, margin: float, integer: bool, std: float = 0.0) -> tuple[Any, Any]:
    spread = max((high - low) * margin, STD_MARGIN * std if math.isfinite(std) else 0.0)
    if spread == 0:
        spread = abs(high) * margin
    new_low = low - spread
    new_high = high + spread
    if low >= 0 > new_low:
        new_low = 0.0  # non-negative data stays non-negative
    if integer:
        return math.floor(new_low), math.ceil(new_high)
    return _round_down(new_low), _round_up(new_high)


def _round_up(value: float, digits: int | None = None) -> float:
    if digits is None:
        digits = _digits(value)
    factor = 10.0**digits
    return math.ceil(value * factor) / factor


def _round_down(value: float) -> float:
    factor = 10.0 ** _digits(value)
    return math.floor(value * factor) / factor


def _digits(value: float) -> int:
    """Decimal places that keep about four significant digits."""
    if value == 0 or not math.isfinite(value):
        return 0
    return max(0, 3 - math.floor(math.log10(abs(value))))


def _type_name(dtype: str) -> str:
    base = dtype.split("(", 1)[0].strip().lower()
    return {"str": "string", "utf8": "string"}.get(base, base)


def _suite_name(name: str) -> str:
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem or "suggested"
