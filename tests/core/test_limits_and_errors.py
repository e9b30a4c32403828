"""Explicit limits (refused, never truncated) and the error hierarchy with its exit codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keel import errors, limits
from keel.errors import (
    ArtifactCorruptedError,
    ArtifactError,
    ConfigError,
    ConflictError,
    FilterSyntaxError,
    InvalidInputError,
    KeelError,
    LimitExceededError,
    MissingDependencyError,
    NameRuleError,
    NotFoundError,
    ParamConflictError,
    StoreError,
    StoreReadOnlyError,
    StoreUnavailableError,
    TrustError,
    UnsafePathError,
)

# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["accuracy", "val.loss", "train/loss", "f1-score", "stage:1", "with space", "a..b", "x" * 250, "é_ß"],
)
def test_check_key_accepts(key: str) -> None:
    assert limits.check_key(key) == key


def test_check_key_empty() -> None:
    with pytest.raises(InvalidInputError, match="metric is empty"):
        limits.check_key("", what="metric")


def test_check_key_too_long_carries_limit_and_actual() -> None:
    with pytest.raises(LimitExceededError) as caught:
        limits.check_key("k" * 251, what="param")
    error = caught.value
    assert (error.limit, error.actual, error.what) == (limits.MAX_KEY_LENGTH, 251, "param")
    assert error.limit == 250
    assert "251 characters; the limit is 250" in str(error)


@pytest.mark.parametrize("key", ["bad\nkey", "tab\tkey", "semi;colon", "a*b", "q?", "back\\slash", "nul\x00"])
def test_check_key_invalid_characters(key: str) -> None:
    with pytest.raises(InvalidInputError, match="characters outside letters, digits") as caught:
        limits.check_key(key)
    assert not isinstance(caught.value, LimitExceededError)


@pytest.mark.parametrize("key", ["/abs", "/"])
def test_check_key_leading_slash(key: str) -> None:
    with pytest.raises(InvalidInputError, match="starts with '/'"):
        limits.check_key(key)


@pytest.mark.parametrize("key", ["..", "../x", "a/../b", "a/.."])
def test_check_key_dot_dot_segment(key: str) -> None:
    with pytest.raises(InvalidInputError, match="'..' segment"):
        limits.check_key(key)


@pytest.mark.parametrize("key", [None, 3, b"bytes"])
def test_check_key_must_be_a_string(key: object) -> None:
    with pytest.raises(InvalidInputError, match="must be a string"):
        limits.check_key(key)  # type: ignore[arg-type]


# -- values -----------------------------------------------------------------------------------


def test_param_value_over_the_limit_is_refused_not_truncated() -> None:
    with pytest.raises(LimitExceededError) as caught:
        limits.check_param_value("config", "x" * (1 << 20))
    error = caught.value
    assert (error.limit, error.actual, error.what) == (65_536, 1_048_576, "param")
    message = str(error)
    assert "65,536" in message
    assert "'config'" in message
    assert "artifact" in message  # says what to do instead


def test_param_value_at_the_limit_is_kept_whole() -> None:
    value = "x" * limits.MAX_PARAM_VALUE_LENGTH
    assert limits.check_param_value("config", value) == value


def test_tag_value_over_the_limit() -> None:
    with pytest.raises(LimitExceededError) as caught:
        limits.check_tag_value("note", "y" * (limits.MAX_TAG_VALUE_LENGTH + 1))
    assert caught.value.what == "tag"
    assert caught.value.actual == limits.MAX_TAG_VALUE_LENGTH + 1


@pytest.mark.parametrize("check", [limits.check_param_value, limits.check_tag_value])
def test_nul_is_rejected(check: object) -> None:
    with pytest.raises(InvalidInputError, match="NUL"):
        check("k", "before\x00after")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "text"), [(0.01, "0.01"), (3, "3"), (True, "True"), (None, "None"), ("", "")]
)
def test_param_values_become_strings(value: object, text: str) -> None:
    assert limits.check_param_value("k", value) == text


# -- metric values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_to_float_keeps_infinities(value: float) -> None:
    assert limits.to_float("m", value) == value


@pytest.mark.parametrize("value", [math.nan, np.nan, np.float32("nan"), np.float64("nan")])
def test_to_float_keeps_nan(value: object) -> None:
    result = limits.to_float("m", value)
    assert isinstance(result, float)
    assert math.isnan(result)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (-7, -7.0),
        (0.25, 0.25),
        (np.float32(1.5), 1.5),
        (np.float64(2.5), 2.5),
        (np.int64(3), 3.0),
        (np.int8(-4), -4.0),
        (np.array(0.5), 0.5),
    ],
)
def test_to_float_accepts_numbers(value: object, expected: float) -> None:
    result = limits.to_float("m", value)
    assert isinstance(result, float)
    assert result == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        pytest.param(np.bool_(True), id="numpy-bool"),
        "0.5",
        "",
        None,
        b"1",
        [1.0],
        {"a": 1},
        1 + 2j,
        np.array([1.0, 2.0]),
    ],
)
def test_to_float_rejects_non_numbers(value: object) -> None:
    with pytest.raises(InvalidInputError, match="metric 'm' must be a number"):
        limits.to_float("m", value)


def test_to_float_too_large_int_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="metric 'm'"):
        limits.to_float("m", 10**400)


# -- errors -----------------------------------------------------------------------------------

EXIT_CODES: dict[type[KeelError], int] = {
    KeelError: 1,
    ConfigError: 2,
    NameRuleError: 2,
    InvalidInputError: 2,
    LimitExceededError: 2,
    FilterSyntaxError: 2,
    UnsafePathError: 2,
    NotFoundError: 1,
    ConflictError: 1,
    ParamConflictError: 1,
    StoreError: 1,
    StoreReadOnlyError: 1,
    StoreUnavailableError: 1,
    ArtifactError: 1,
    ArtifactCorruptedError: 1,
    TrustError: 2,
    MissingDependencyError: 2,
}


def test_every_exported_error_is_a_keel_error() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == set(EXIT_CODES)
    for error in exported:
        assert issubclass(error, KeelError)
        assert issubclass(error, Exception)
        assert error.__name__.endswith("Error")


def test_all_is_sorted() -> None:
    assert list(errors.__all__) == sorted(errors.__all__)


@pytest.mark.parametrize(("error", "code"), EXIT_CODES.items(), ids=[error.__name__ for error in EXIT_CODES])
def test_exit_codes(error: type[KeelError], code: int) -> None:
    assert error.exit_code == code


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (NameRuleError, InvalidInputError),
        (LimitExceededError, InvalidInputError),
        (FilterSyntaxError, InvalidInputError),
        (UnsafePathError, InvalidInputError),
        (ParamConflictError, ConflictError),
        (StoreReadOnlyError, StoreError),
        (StoreUnavailableError, StoreError),
        (ArtifactCorruptedError, ArtifactError),
    ],
)
def test_hierarchy(child: type[KeelError], parent: type[KeelError]) -> None:
    assert issubclass(child, parent)


def test_invalid_input_family_exits_2() -> None:
    for error in EXIT_CODES:
        if issubclass(error, InvalidInputError):
            assert error.exit_code == 2, error


def test_missing_dependency_says_how_to_install() -> None:
    error = MissingDependencyError("lightgbm", "lightgbm", "Loading a LightGBM model")
    message = str(error)
    assert "pip install 'keel-mlops[lightgbm]'" in message
    assert "'lightgbm'" in message
    assert message.startswith("Loading a LightGBM model needs")
    assert (error.package, error.extra) == ("lightgbm", "lightgbm")


def test_name_rule_error_fields_and_suggestion() -> None:
    error = NameRuleError("invalid model name 'X'.", name="X", kind="model", suggestion="x")
    assert str(error) == "invalid model name 'X'. Try: 'x'"
    assert (error.name, error.kind, error.suggestion) == ("X", "model", "x")
    assert str(NameRuleError("bad.", name="X", kind="model")) == "bad."


def test_filter_syntax_error_draws_a_caret() -> None:
    error = FilterSyntaxError("bad", text="a = b", position=4)
    assert str(error) == "bad\n  a = b\n      ^"
    assert (error.text, error.position) == ("a = b", 4)
    assert str(FilterSyntaxError("bad")) == "bad"


def test_structured_fields() -> None:
    conflict = ParamConflictError("lr differs", key="lr", old="0.1", new="0.2")
    assert (conflict.key, conflict.old, conflict.new) == ("lr", "0.1", "0.2")
    corrupted = ArtifactCorruptedError("mismatch", expected="aa", actual="bb")
    assert (corrupted.expected, corrupted.actual) == ("aa", "bb")
