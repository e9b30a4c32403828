"""Naming conventions: default rules, patterns, suggestions, and enforcement where names are made."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

import keel
from keel.errors import ConfigError, NameRuleError
from keel.naming import KINDS, NamingConvention, random_run_name

MODEL_PATTERN = "{project}-{model}-v{version}-{date:%Y%m%d}"
RUN_PATTERN = "{experiment}-{date:%Y%m%d}-{seq}"
NOW = dt.datetime(2026, 11, 27, 13, 45, 9)


@pytest.fixture
def default() -> NamingConvention:
    return NamingConvention()


@pytest.fixture
def patterned() -> NamingConvention:
    return NamingConvention({"model": {"pattern": MODEL_PATTERN}}, project="default")


# -- default rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("experiment", "churn"),
        ("experiment", "team/churn 2026.v1"),
        ("run", "swift-otter-042"),
        ("run", "sweep:lr_0.1"),
        ("run", "trial 3/fold_1"),
        ("model", "churn-model_v2.1"),
        ("model", "Churn"),
        ("artifact", "model"),
        ("artifact", "plots/roc curve@epoch=3,final.png"),
        ("artifact", "_private/x+y.txt"),
    ],
)
def test_default_rules_accept(default: NamingConvention, kind: str, name: str) -> None:
    assert default.check(kind, name) == []
    assert default.validate(kind, name) == name


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("experiment", "bad name!!"),
        ("experiment", "-leading-dash"),
        ("experiment", "a:b"),
        ("run", "bad name!!"),
        ("run", " leading space"),
        ("model", "team/model"),
        ("model", "with space"),
        ("model", "a:b"),
        ("model", ".hidden"),
        ("artifact", "/absolute"),
        ("artifact", "a//b"),
        ("artifact", "a/-b"),
        ("artifact", "a:b"),
    ],
)
def test_default_rules_refuse_characters(default: NamingConvention, kind: str, name: str) -> None:
    problems = default.check(kind, name)
    assert problems
    assert any("characters outside the allowed set" in problem for problem in problems)
    with pytest.raises(NameRuleError) as caught:
        default.validate(kind, name)
    assert caught.value.kind == kind
    assert caught.value.name == name


@pytest.mark.parametrize("kind", KINDS)
def test_empty_name_is_refused(default: NamingConvention, kind: str) -> None:
    assert default.check(kind, "") == ["it is empty"]
    with pytest.raises(NameRuleError, match="it is empty"):
        default.validate(kind, "")


@pytest.mark.parametrize(
    ("kind", "limit"), [("experiment", 128), ("run", 128), ("model", 96), ("artifact", 512)]
)
def test_max_length_per_kind(default: NamingConvention, kind: str, limit: int) -> None:
    assert default.check(kind, "a" * limit) == []
    problems = default.check(kind, "a" * (limit + 1))
    assert problems == [f"it is {limit + 1} characters long; the limit is {limit}"]


def test_too_long_name_gets_a_suggestion_within_the_limit(default: NamingConvention) -> None:
    with pytest.raises(NameRuleError) as caught:
        default.validate("model", "m" * 200)
    suggestion = caught.value.suggestion
    assert suggestion is not None
    assert 0 < len(suggestion) <= 96
    assert default.validate("model", suggestion) == suggestion


def test_configured_max_length(default: NamingConvention) -> None:
    short = NamingConvention({"experiment": {"max_length": 5}})
    assert short.check("experiment", "abcde") == []
    assert short.check("experiment", "abcdef")
    assert default.check("experiment", "abcdef") == []


@pytest.mark.parametrize("name", ["latest", "Latest", "LATEST"])
def test_latest_is_reserved_for_models(default: NamingConvention, name: str) -> None:
    with pytest.raises(NameRuleError, match="reserved word") as caught:
        default.validate("model", name)
    suggestion = caught.value.suggestion
    assert suggestion is not None
    assert suggestion.lower() != "latest"
    assert default.validate("model", suggestion) == suggestion


@pytest.mark.parametrize("kind", ["experiment", "run", "artifact"])
def test_latest_is_allowed_for_other_kinds(default: NamingConvention, kind: str) -> None:
    assert default.check(kind, "latest") == []


def test_configured_reserved_words() -> None:
    convention = NamingConvention({"experiment": {"reserved": ["default", "tmp"]}})
    assert convention.check("experiment", "TMP") == ["'TMP' is a reserved word (default, tmp)"]
    assert convention.check("experiment", "tmp2") == []


def test_configured_chars_replace_the_default() -> None:
    convention = NamingConvention({"run": {"chars": "[a-z]+"}})
    assert convention.check("run", "abc") == []
    assert convention.check("run", "abc1")
    assert convention.check("run", "xabc1x")  # chars must match the whole name, not a part


# -- patterns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["default-churn-v3-20261127", "default-churn_model-v12-20260101", "default-c.1-v0-20261231"]
)
def test_pattern_accepts(patterned: NamingConvention, name: str) -> None:
    assert patterned.check("model", name) == []
    assert patterned.validate("model", name) == name


def test_pattern_rejects_the_wrong_project(patterned: NamingConvention) -> None:
    problems = patterned.check("model", "other-churn-v3-20261127")
    assert problems == ["its project part 'other' is not the current project 'default'"]


@pytest.mark.parametrize(
    "name",
    [
        "default-churn-3-20261127",  # no "v" before the version
        "default-Churn-v3-20261127",  # upper case in a slug field
        "default-churn-v3-2026112",  # seven-digit date
        "default-churn-vx-20261127",  # version is not a number
        "default-churn-v3-20261127-extra",  # the pattern must match in full
        "churn-v3-20261127",  # no project part
    ],
)
def test_pattern_rejects(patterned: NamingConvention, name: str) -> None:
    assert patterned.check("model", name) == [f"it does not follow the pattern {MODEL_PATTERN!r}"]


def test_pattern_project_is_compared_as_a_slug() -> None:
    convention = NamingConvention({"model": {"pattern": "{project}-{model}"}}, project="Acme Corp")
    assert convention.check("model", "acme_corp-churn") == []
    assert convention.check("model", "acme-churn")


@pytest.mark.parametrize(
    "name",
    [
        "other-churn-v3-20261127",
        "default-churn-3-20261127",
        "default-Churn-v3-20261127",
        "Churn Model!!",
        "latest",
        "",
    ],
)
def test_error_shows_the_pattern_and_a_suggestion_that_passes(patterned: NamingConvention, name: str) -> None:
    with pytest.raises(NameRuleError) as caught:
        patterned.validate("model", name)
    error = caught.value
    message = str(error)
    assert MODEL_PATTERN in message
    assert error.suggestion
    assert f"Try: {error.suggestion!r}" in message
    assert patterned.validate("model", error.suggestion) == error.suggestion
    assert error.kind == "model"
    assert error.name == name


def test_suggestion_without_a_pattern_passes(default: NamingConvention) -> None:
    with pytest.raises(NameRuleError) as caught:
        default.validate("model", "Bad Name!!")
    assert caught.value.suggestion == "bad_name"
    assert default.validate("model", "bad_name") == "bad_name"


def test_generate_run_from_pattern_passes_validation() -> None:
    convention = NamingConvention({"run": {"pattern": RUN_PATTERN}})
    name = convention.generate("run", experiment="exp")
    assert re.fullmatch(r"exp-\d{8}-\d+", name)
    assert convention.validate("run", name, experiment="exp") == name


def test_generate_slugs_context_values_and_fills_dates() -> None:
    convention = NamingConvention({"run": {"pattern": RUN_PATTERN}})
    assert convention.generate("run", experiment="My Exp!", now=NOW) == "my_exp-20261127-1"
    assert convention.generate("run", experiment="exp", seq=7, now=NOW) == "exp-20261127-7"


def test_generate_model_from_pattern(patterned: NamingConvention) -> None:
    name = patterned.generate("model", model="churn", version=3, now=NOW)
    assert name == "default-churn-v3-20261127"
    assert patterned.validate("model", name) == name


@pytest.mark.parametrize(
    ("kind", "pattern", "context"),
    [
        ("experiment", "{team}/{experiment}", {}),
        ("run", "{date:%Y-%m-%dT%H%M%S}-{seq}", {}),
        ("run", "{date:%y%j}_{experiment}", {"experiment": "Sweep 1"}),
        ("model", MODEL_PATTERN, {}),
        ("artifact", "{date:%Y/%m/%d}/{artifact}.json", {}),
    ],
)
def test_generated_names_follow_their_own_pattern(kind: str, pattern: str, context: dict[str, str]) -> None:
    convention = NamingConvention({kind: {"pattern": pattern}}, project="acme")
    name = convention.generate(kind, **context)
    assert convention.check(kind, name) == []


@pytest.mark.parametrize("kind", KINDS)
def test_generate_without_a_pattern_is_a_valid_random_name(default: NamingConvention, kind: str) -> None:
    name = default.generate(kind)
    assert default.check(kind, name) == []


def test_random_run_name_shape() -> None:
    names = {random_run_name() for _ in range(50)}
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", name) for name in names)
    assert len(names) > 1


# -- configuration errors --------------------------------------------------------------------------


def test_unknown_kind_in_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\['widget'\].*experiment, run, model, artifact"):
        NamingConvention({"widget": {"max_length": 3}})


def test_unknown_key_in_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\['colour'\] in \[naming.model\]"):
        NamingConvention({"model": {"colour": "blue"}})


def test_bad_chars_regex_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"naming.model.chars is not a valid regular expression"):
        NamingConvention({"model": {"chars": "[a-"}})


def test_bad_pattern_field_is_refused() -> None:
    with pytest.raises(ConfigError, match="naming pattern"):
        NamingConvention({"model": {"pattern": "{1st}-{model}"}})


def test_unknown_kind_when_checking(default: NamingConvention) -> None:
    with pytest.raises(ConfigError, match="unknown name kind 'widget'"):
        default.validate("widget", "x")


def test_max_length_from_environment_strings_is_an_int() -> None:
    convention = NamingConvention({"model": {"max_length": "4"}})
    assert convention.check("model", "abcd") == []
    assert convention.check("model", "abcde")


# -- enforcement where keel creates names ------------------------------------------------------------


@pytest.fixture
def acme(project: Path) -> Path:
    (project / "keel.toml").write_text('project = "acme"\n\n[naming.model]\npattern = "{project}-{model}"\n')
    return project


def _log_tiny_model() -> str:
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    with keel.start_run() as run:
        keel.log_model(LogisticRegression().fit(features, labels), "model")
    return str(run.run_id)


def test_register_model_enforces_the_model_pattern(acme: Path) -> None:
    run_id = _log_tiny_model()
    client = keel.Client()
    with pytest.raises(NameRuleError, match=r"\{project\}-\{model\}") as caught:
        client.register_model(f"runs:/{run_id}/model", "churn")
    assert caught.value.suggestion == "acme-churn"
    with pytest.raises(NameRuleError, match="not the current project 'acme'"):
        client.register_model(f"runs:/{run_id}/model", "other-churn")
    assert client.list_registered_models() == []

    version = client.register_model(f"runs:/{run_id}/model", "acme-churn")
    assert version.version == 1
    assert [model.name for model in client.list_registered_models()] == ["acme-churn"]


def test_start_run_enforces_run_names(project: Path) -> None:
    with pytest.raises(NameRuleError, match="'bad name!!'"):
        keel.start_run(name="bad name!!")
    assert keel.active_run() is None


def test_start_run_generates_names_from_the_run_pattern(project: Path) -> None:
    (project / "keel.toml").write_text(f'project = "default"\n\n[naming.run]\npattern = "{RUN_PATTERN}"\n')
    with keel.start_run(experiment="sweep") as run:
        name = keel.Client().get_run(run.run_id).name
    assert re.fullmatch(r"sweep-\d{8}-\d+", name)


@pytest.mark.parametrize("name", ["", "bad name!!", "-dash"])
def test_create_experiment_enforces_experiment_names(project: Path, name: str) -> None:
    client = keel.Client()
    with pytest.raises(NameRuleError) as caught:
        client.create_experiment(name)
    assert caught.value.kind == "experiment"
    assert client.get_experiment_by_name(name) is None
