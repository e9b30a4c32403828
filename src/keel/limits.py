"""Explicit limits. Values over a limit are refused with :class:`~keel.errors.LimitExceededError`,
never truncated. The numbers are documented in docs/concepts.md."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

from keel.errors import InvalidInputError, LimitExceededError

__all__ = [
    "MAX_ALIAS_LENGTH",
    "MAX_COMMENT_LENGTH",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_FILTER_TERMS",
    "MAX_FILTER_VALUES",
    "MAX_GRAPH_NODES",
    "MAX_ID",
    "MAX_KEY_LENGTH",
    "MAX_LIKE_PATTERN_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PAGE_OFFSET",
    "MAX_PARAMS_PER_REQUEST",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAGS_PER_REQUEST",
    "MAX_TAG_VALUE_LENGTH",
    "SEARCH_TIMEOUT_SECONDS",
    "check_count",
    "check_id",
    "check_key",
    "check_param_value",
    "check_tag_value",
    "search_timeout",
    "clean_params",
    "clean_tags",
    "to_float",
]

MAX_KEY_LENGTH = 250
#: experiment, run and registered model names, on every route (the store's column width)
MAX_NAME_LENGTH = 256
#: model aliases (``@champion``), on every route (the store's column width)
MAX_ALIAS_LENGTH = 128
MAX_PARAM_VALUE_LENGTH = 65_536
MAX_TAG_VALUE_LENGTH = 65_536
MAX_COMMENT_LENGTH = 65_536

# Search filters (keel.store.search). A filter is compiled to one SQL statement: SQLite refuses
# expression trees deeper than 1,000 and statements with more than 32,766 bound values, PostgreSQL
# more than 65,535 bound values; a deep filter also recurses in the parser. Search time grows about
# linearly with the number of conditions (benchmarks/search_planning.py: 200 AND-ed conditions over
# 1,000 runs take about 0.5 s on SQLite and PostgreSQL), and PostgreSQL cancels a search after
# SEARCH_TIMEOUT_SECONDS. These limits keep every accepted filter well inside all of that, and
# a filter over one is answered as the caller's error. Long lists of alternatives go in ``IN (...)``.
#: comparisons in one filter (``a = 1 or b = 2`` holds two)
MAX_FILTER_TERMS = 200
#: values of all the ``IN (...)`` lists of one filter together
MAX_FILTER_VALUES = 10_000
#: parentheses nested in one filter
MAX_FILTER_DEPTH = 32
#: characters of one filter (room for the longest IN lists; tokenized before it is parsed)
MAX_FILTER_LENGTH = 1_000_000
#: seconds PostgreSQL may spend on one run search before it cancels it (``KEEL_SEARCH_TIMEOUT``)
SEARCH_TIMEOUT_SECONDS = 30.0
#: characters of one LIKE/ILIKE pattern (ample for names; keeps a match in Python short)
MAX_LIKE_PATTERN_LENGTH = 1_000

# One request to a keel server: its params or tags are looked up in one statement, and PostgreSQL
# takes at most 65,535 bound values; keel's RestStore sends larger dicts in several requests.
#: params one request may log (native API and MLflow's log-batch)
MAX_PARAMS_PER_REQUEST = 1_000
#: tags one request may set (native API and MLflow's log-batch)
MAX_TAGS_PER_REQUEST = 1_000

#: nodes of one pipeline graph, and step records of one request (each is drawn and looked up)
MAX_GRAPH_NODES = 10_000

#: experiment, pipeline-run and model-version ids are SQL INTEGER keys (32-bit in PostgreSQL)
MAX_ID = 2**31 - 1
#: the offset a page token may carry (the server only writes offsets of rows it has)
MAX_PAGE_OFFSET = 2**31 - 1

# MLflow's key alphabet, so keys move between the two unchanged
_KEY = re.compile(r"[\w.\- :/]+")


def check_count(count: int, limit: int, what: str, name: str) -> None:
    """Refuse ``count`` things over ``limit``; ``name`` is the limit's name in this module."""
    if count > limit:
        raise LimitExceededError(
            f"one request carries {count:,} {what}; the limit is {limit:,} per request "
            f"(keel.limits.{name}). Send them in several requests.",
            limit=limit,
            actual=count,
            what=what,
        )


def check_id(value: object, what: str = "experiment id") -> int:
    """``value`` (an int or its decimal text) as an id; a whole number beyond :data:`MAX_ID` is
    refused naming the limit, so it never reaches the database (which would fail on it)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a whole number, not a boolean")
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} {value!r} is not a whole number") from None
    if not -MAX_ID <= number <= MAX_ID:
        raise LimitExceededError(
            f"{what} {str(value)[:40]!r} is out of range: ids are whole numbers up to {MAX_ID:,} "
            "(keel.limits.MAX_ID)",
            limit=MAX_ID,
            actual=abs(number),
            what=what,
        )
    return number


def check_key(key: str, what: str = "key") -> str:
    if not isinstance(key, str):
        raise InvalidInputError(f"{what} must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidInputError(f"{what} is empty; give it a name such as 'accuracy'")
    if len(key) > MAX_KEY_LENGTH:
        raise LimitExceededError(
            f"{what} {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH} "
            "(keel.limits.MAX_KEY_LENGTH)",
            limit=MAX_KEY_LENGTH,
            actual=len(key),
            what=what,
        )
    problem = None
    if not _KEY.fullmatch(key):
        problem = "has characters outside letters, digits, '_', '-', '.', ' ', ':' and '/'"
    elif key.startswith("/"):
        problem = "starts with '/'"
    elif any(part in {"", ".", ".."} for part in key.split("/")):
        problem = "has an empty, '.' or '..' segment"
    if problem:
        raise InvalidInputError(f"{what} {key!r} {problem}; use a name such as 'val/loss'")
    return key


def _check_value(key: str, value: object, limit: int, what: str) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise LimitExceededError(
            f"{what} {key!r} is {len(text):,} characters; the limit is {limit:,}. "
            "Log large values as an artifact instead (keel.log_text / keel.log_dict).",
            limit=limit,
            actual=len(text),
            what=what,
        )
    if "\x00" in text:
        raise InvalidInputError(f"{what} {key!r} contains a NUL character")
    return text


def check_param_value(key: str, value: object) -> str:
    return _check_value(key, value, MAX_PARAM_VALUE_LENGTH, "param")


def check_tag_value(key: str, value: object) -> str:
    return _check_value(key, value, MAX_TAG_VALUE_LENGTH, "tag")


def clean_params(params: Mapping[str, object]) -> dict[str, str]:
    """Params with checked keys and values, the values as the text the store keeps."""
    return {check_key(k, "param key"): check_param_value(k, v) for k, v in params.items()}


def clean_tags(tags: Mapping[str, object]) -> dict[str, str]:
    """Tags with checked keys and values, the values as the text the store keeps."""
    return {check_key(k, "tag key"): check_tag_value(k, v) for k, v in tags.items()}


def to_float(key: str, value: object) -> float:
    """A metric value as a float; NaN and infinities are kept as they are."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool | str | bytes) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        raise InvalidInputError(f"metric {key!r} must be a number, not {type(value).__name__} {value!r}")
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(
            f"metric {key!r} must be a number, not {type(value).__name__} {value!r}"
        ) from None
    return result


def search_timeout(seconds: float | None = None) -> float:
    """The search timeout in seconds: ``seconds`` when given, else the ``KEEL_SEARCH_TIMEOUT``
    environment variable, else :data:`SEARCH_TIMEOUT_SECONDS`. A positive number or a mistake."""
    source = "search_timeout"
    if seconds is None:
        text = os.environ.get("KEEL_SEARCH_TIMEOUT")
        if text is None:
            return SEARCH_TIMEOUT_SECONDS
        source = "KEEL_SEARCH_TIMEOUT"
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"{source} must be a positive number of seconds (e.g. 30), not {seconds!r}")
    return float(seconds)
