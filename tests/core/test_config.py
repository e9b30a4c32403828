"""Settings: where they come from, in which order, and how bad ones are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import Prices, Settings, find_keel_dir, find_project_root
from keel.errors import ConfigError

INTERVALS = ("heartbeat_interval", "flush_interval", "commit_interval", "system_metrics_interval")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no KEEL_* variables at all."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.chdir(folder)
    # conftest sets KEEL_SYSTEM_METRICS=false; these tests want to see every level on its own
    monkeypatch.delenv("KEEL_SYSTEM_METRICS")
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- precedence ------------------------------------------------------------------------------


def test_defaults_without_any_configuration(home: Path) -> None:
    settings = Settings.load()
    assert settings.project == "default"
    assert settings.tracking_uri is None
    assert settings.heartbeat_interval == 10.0
    assert settings.system_metrics is True
    assert settings.naming == {}
    assert settings.prices == Prices()
    assert settings.sources == ()


def test_pyproject_tool_keel_overrides_defaults(home: Path) -> None:
    write(home / "pyproject.toml", '[project]\nname = "x"\n\n[tool.keel]\nproject = "from-pyproject"\n')
    settings = Settings.load()
    assert settings.project == "from-pyproject"
    assert settings.sources == (str(home / "pyproject.toml"),)


def test_pyproject_without_tool_keel_is_no_source(home: Path) -> None:
    write(home / "pyproject.toml", '[project]\nname = "x"\n')
    settings = Settings.load()
    assert settings.project == "default"
    assert settings.sources == ()


def test_keel_toml_beside_pyproject_wins_and_pyproject_is_ignored(home: Path) -> None:
    write(
        home / "pyproject.toml",
        '[tool.keel]\nproject = "from-pyproject"\nheartbeat_interval = 3\n',
    )
    write(home / "keel.toml", 'project = "from-keel-toml"\n')
    settings = Settings.load()
    assert settings.project == "from-keel-toml"
    # documented: [tool.keel] is ignored as a whole when a keel.toml sits beside it
    assert settings.heartbeat_interval == 10.0
    assert settings.sources == (str(home / "keel.toml"),)


def test_environment_overrides_keel_toml(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home / "keel.toml", 'project = "from-file"\nheartbeat_interval = 3\n')
    monkeypatch.setenv("KEEL_PROJECT", "from-env")
    settings = Settings.load()
    assert settings.project == "from-env"
    assert settings.heartbeat_interval == 3.0
    assert settings.sources == (str(home / "keel.toml"), "environment (KEEL_*)")


def test_overrides_beat_environment_and_none_overrides_are_skipped(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home / "keel.toml", 'project = "from-file"\ntracking_uri = "sqlite:///file.db"\n')
    monkeypatch.setenv("KEEL_PROJECT", "from-env")
    settings = Settings.load(overrides={"project": "from-code", "tracking_uri": None})
    assert settings.project == "from-code"
    assert settings.tracking_uri == "sqlite:///file.db"
    assert settings.sources[-1] == "arguments"


def test_keel_toml_found_by_walking_up_from_a_nested_folder(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home / "keel.toml", 'project = "walked"\n')
    nested = home / "src" / "pkg" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert Settings.load().project == "walked"
    assert Settings.load(start=home / "src").project == "walked"


def test_nearest_keel_toml_wins_over_one_further_up(home: Path) -> None:
    write(home / "keel.toml", 'project = "outer"\nheartbeat_interval = 3\n')
    inner = write(home / "inner" / "keel.toml", 'project = "inner"\n')
    settings = Settings.load(start=inner.parent)
    assert settings.project == "inner"
    assert settings.heartbeat_interval == 10.0  # the outer file is not read at all
    assert settings.sources == (str(inner),)


def test_nested_pyproject_without_tool_keel_does_not_hide_keel_toml_above(home: Path) -> None:
    write(home / "keel.toml", 'project = "outer"\n')
    inner = write(home / "packages" / "lib" / "pyproject.toml", '[project]\nname = "lib"\n')
    assert Settings.load(start=inner.parent).project == "outer"


# -- nested tables -------------------------------------------------------------------------


def test_prices_table_merges_key_by_key_across_levels(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        home / "keel.toml",
        "[prices]\ncpu_core_hour = 0.07\n\n[prices.gpu_hour]\nH100 = 5.0\n",
    )
    monkeypatch.setenv("KEEL_PRICES__MEMORY_GB_HOUR", "0.2")
    prices = Settings.load(overrides={"prices": {"gpu_hour_default": 9}}).prices
    assert prices.cpu_core_hour == 0.07
    assert prices.memory_gb_hour == 0.2
    assert prices.gpu_hour_default == 9.0
    assert prices.gpu_hour["H100"] == 5.0
    assert prices.gpu_hour["A100"] == Prices().gpu_hour["A100"]  # other GPU prices kept


def test_env_nested_key_with_double_underscore(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_PRICES__CPU_CORE_HOUR", "0.1")
    prices = Settings.load().prices
    assert prices.cpu_core_hour == 0.1
    assert prices.memory_gb_hour == Prices().memory_gb_hour


def test_env_overrides_one_gpu_price(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # environment variable names are upper case by convention, GPU models too
    monkeypatch.setenv("KEEL_PRICES__GPU_HOUR__H100", "9")
    assert Settings.load().prices.for_gpu("NVIDIA H100 80GB HBM3") == 9.0


def test_naming_table_merges_across_levels(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        home / "keel.toml",
        '[naming.model]\npattern = "{project}-{model}"\n\n[naming.run]\nmax_length = 40\n',
    )
    monkeypatch.setenv("KEEL_NAMING__MODEL__MAX_LENGTH", "64")
    naming = Settings.load().naming
    assert naming["model"]["pattern"] == "{project}-{model}"
    assert naming["model"]["max_length"] == "64"
    assert naming["run"] == {"max_length": 40}


def test_naming_must_be_a_table(home: Path) -> None:
    write(home / "keel.toml", 'naming = "strict"\n')
    with pytest.raises(ConfigError, match=r"\[naming\]"):
        Settings.load()


def test_prices_must_be_a_table(home: Path) -> None:
    write(home / "keel.toml", "prices = 3\n")
    with pytest.raises(ConfigError, match=r"\[prices\]"):
        Settings.load()


def test_unknown_price_is_refused(home: Path) -> None:
    write(home / "keel.toml", "[prices]\ntpu_hour = 3\n")
    with pytest.raises(ConfigError, match=r"'tpu_hour'.*cpu_core_hour"):
        Settings.load()


def test_non_numeric_price_is_a_config_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_PRICES__CPU_CORE_HOUR", "cheap")
    with pytest.raises(ConfigError, match="cpu_core_hour"):
        Settings.load()


def test_non_numeric_gpu_price_is_a_config_error(home: Path) -> None:
    write(home / "keel.toml", '[prices.gpu_hour]\nH100 = "expensive"\n')
    with pytest.raises(ConfigError, match="gpu_hour"):
        Settings.load()


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["false", "0", "no", "off", "FALSE", " No "])
def test_false_booleans_from_environment(home: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("KEEL_SYSTEM_METRICS", text)
    assert Settings.load().system_metrics is False


@pytest.mark.parametrize("text", ["true", "1", "yes", "on", "True"])
def test_true_booleans_from_environment(home: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    write(home / "keel.toml", "system_metrics = false\n")
    monkeypatch.setenv("KEEL_SYSTEM_METRICS", text)
    assert Settings.load().system_metrics is True


def test_toml_boolean(home: Path) -> None:
    write(home / "keel.toml", "system_metrics = false\n")
    assert Settings.load().system_metrics is False


def test_bad_boolean_names_the_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_SYSTEM_METRICS", "maybe")
    with pytest.raises(ConfigError, match=r"system_metrics.*'maybe'"):
        Settings.load()


def test_numbers_from_environment_are_floats(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_HEARTBEAT_INTERVAL", "2.5")
    assert Settings.load().heartbeat_interval == 2.5


def test_bad_number_names_the_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_FLUSH_INTERVAL", "soon")
    with pytest.raises(ConfigError, match=r"flush_interval.*'soon'"):
        Settings.load()


def test_unknown_setting_in_keel_toml_is_named_with_the_known_ones(home: Path) -> None:
    path = write(home / "keel.toml", 'trackng_uri = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    message = str(caught.value)
    assert "'trackng_uri'" in message
    assert str(path) in message
    for known in ("tracking_uri", "project", "heartbeat_interval", "prices", "naming"):
        assert known in message
    assert "sources" not in message  # internal field, not a setting


def test_unknown_keel_environment_variable_is_a_named_warning_not_an_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The environment is shared with other programs: a stray KEEL_* name must not stop every command."""
    import keel.config

    monkeypatch.setattr(keel.config, "_warned", set())
    monkeypatch.setenv("KEEL_TRAKING_URI", "sqlite:///x.db")
    monkeypatch.setenv("KEEL_PROJECT", "from-env")
    with caplog.at_level("WARNING", logger="keel"):
        settings = Settings.load()
        Settings.load()
    assert settings.project == "from-env" and settings.tracking_uri is None
    warnings = [r.getMessage() for r in caplog.records if "KEEL_TRAKING_URI" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not on every load
    assert "KEEL_TRACKING_URI" in warnings[0] and "not a keel setting" in warnings[0]


@pytest.mark.parametrize("name", ["KEEL_USER", "KEEL_PIPELINE_CACHE"])
def test_variables_that_are_not_settings_are_neither_read_as_settings_nor_warned_about(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    monkeypatch.setenv(name, "false")
    with caplog.at_level("WARNING", logger="keel"):
        settings = Settings.load()
    assert settings.sources == ()  # no setting came from the environment
    assert not caplog.records


def test_sources_cannot_be_set(home: Path) -> None:
    write(home / "keel.toml", 'sources = ["x"]\n')
    with pytest.raises(ConfigError, match="'sources'"):
        Settings.load()


def test_bad_toml_names_the_file(home: Path) -> None:
    path = write(home / "keel.toml", 'project = "unterminated\n')
    with pytest.raises(ConfigError, match="fix the TOML syntax") as caught:
        Settings.load()
    assert str(path) in str(caught.value)


def test_bad_pyproject_names_the_file(home: Path) -> None:
    path = write(home / "pyproject.toml", "[tool.keel\nproject = 1\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", INTERVALS)
@pytest.mark.parametrize("value", ["0", "-1", "-0.5"])
def test_non_positive_intervals_are_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"KEEL_{name.upper()}", value)
    with pytest.raises(ConfigError, match=f"{name} must be a positive number"):
        Settings.load()


def test_non_positive_interval_from_overrides_is_refused(home: Path) -> None:
    with pytest.raises(ConfigError, match="commit_interval"):
        Settings.load(overrides={"commit_interval": 0})


def test_nan_interval_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NaN compares false with everything, so "<= 0" alone lets it through; it is not a positive number
    monkeypatch.setenv("KEEL_HEARTBEAT_INTERVAL", "nan")
    with pytest.raises(ConfigError, match="heartbeat_interval"):
        Settings.load()


# -- prices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu_name", "model"),
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 NVL", "H100"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("Tesla T4", "T4"),
        ("nvidia a10g", "A10G"),
    ],
)
def test_for_gpu_matches_the_model_as_a_word(gpu_name: str, model: str) -> None:
    prices = Prices()
    assert prices.for_gpu(gpu_name) == prices.gpu_hour[model]


def test_for_gpu_l40s_is_not_l4() -> None:
    prices = Prices()
    assert prices.gpu_hour["L40S"] != prices.gpu_hour["L4"]
    assert prices.for_gpu("NVIDIA L40S") == prices.gpu_hour["L40S"]


@pytest.mark.parametrize("gpu_name", ["NVIDIA GeForce RTX 4090", "", "NVIDIA H1000", "XT40"])
def test_for_gpu_unknown_costs_the_default(gpu_name: str) -> None:
    prices = Prices(gpu_hour_default=1.23)
    assert prices.for_gpu(gpu_name) == 1.23


def test_for_gpu_prefers_the_longest_matching_model() -> None:
    prices = Prices(gpu_hour={"A100": 1.0, "A100 80GB": 2.0})
    assert prices.for_gpu("NVIDIA A100 80GB PCIe") == 2.0
    assert prices.for_gpu("NVIDIA A100 40GB PCIe") == 1.0


# -- finding folders ---------------------------------------------------------------------------


def test_find_keel_dir_walks_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".keel").mkdir()
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_keel_dir() == tmp_path / ".keel"
    assert find_keel_dir(tmp_path) == tmp_path / ".keel"


def test_find_keel_dir_prefers_the_nearest_and_ignores_files(tmp_path: Path) -> None:
    (tmp_path / ".keel").mkdir()
    (tmp_path / "a" / ".keel").mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "b" / ".keel").write_text("not a folder")
    assert find_keel_dir(tmp_path / "a" / "b") == tmp_path / "a" / ".keel"


def test_find_keel_dir_none_when_absent(tmp_path: Path) -> None:
    assert find_keel_dir(tmp_path) is None


@pytest.mark.parametrize("marker", ["keel.toml", "pyproject.toml", ".git"])
def test_find_project_root_stops_at_a_marker(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "repo"
    nested = root / "src" / "pkg"
    nested.mkdir(parents=True)
    if marker == ".git":
        (root / ".git").mkdir()
    else:
        (root / marker).write_text("")
    assert find_project_root(nested) == root


def test_find_project_root_prefers_the_nearest_marker(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    inner = tmp_path / "packages" / "lib"
    inner.mkdir(parents=True)
    (inner / "pyproject.toml").write_text("")
    assert find_project_root(inner / ".") == inner


def test_find_project_root_falls_back_to_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nested = tmp_path / "plain" / "folder"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_project_root() == nested
