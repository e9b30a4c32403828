"""Explicit limits. Values over a limit are refused with :class:`~keel.errors.LimitExceededError`,
never truncated. The numbers are documented in docs/concepts.md."""

from __future__ import annotations

import re
from collections.abc import Mapping

from keel.errors import InvalidInputError, LimitExceededError

__all__ = [
    "MAX_ALIAS_LENGTH",
    "MAX_COMMENT_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "check_key",
    "check_param_value",
    "check_tag_value",
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

# MLflow's key alphabet, so keys move between the two unchanged
_KEY = re.compile(r"[\w.\- :/]+")


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
