"""The ``keel`` command line, against runs and models made with the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import keel
from keel.cli import app
from keel.tracking.context import reset_contexts

KEEL = Path(sys.executable).parent / "keel"


@dataclass
class Runs:
    folder: Path
    good: str
    weak: str
    failed: str


def invoke(*args: str) -> object:
    """Run the CLI in-process; ``stdout`` and ``stderr`` are kept apart."""
    return CliRunner().invoke(app, list(args))


def stdout_json(result: object) -> object:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def _make_runs(folder: Path) -> Runs:
    """Three runs in experiment 'exp-a': good (acc 0.9, NaN loss), weak (acc 0.3), failed (exception)."""
    with keel.start_run("exp-a", "good-run", params={"lr": 0.1}, system_metrics=False) as good:
        keel.log_metrics({"acc": 0.9, "loss": float("nan")})
        keel.set_tag("team", "vision")
        keel.log_text("hello", "notes/hello.txt")
        keel.log_dict({"k": 1}, "config.json")
    with keel.start_run("exp-a", "weak-run", params={"lr": 0.5}, system_metrics=False) as weak:
        keel.log_metric("acc", 0.3)
    # the exception must leave the run's with block (so it is FAILED) and be caught outside it
    with (
        pytest.raises(RuntimeError, match="boom"),
        keel.start_run("exp-a", "failed-run", system_metrics=False) as failed,
    ):
        keel.log_param("lr", 0.9)
        raise RuntimeError("boom")
    return Runs(folder, good.run_id, weak.run_id, failed.run_id)


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """The three runs, made once per module for the tests that only read them (saves a store per test).

    Module fixtures are set up before conftest's per-test isolation, so this isolates itself the same way.
    """
    folder = tmp_path_factory.mktemp("cli") / "project"
    folder.mkdir()
    (folder / "keel.toml").write_text('project = "default"\n')
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("KEEL_") and not name.startswith("KEEL_TEST_"):
                patch.delenv(name)
        patch.setenv("KEEL_SYSTEM_METRICS", "false")
        patch.chdir(folder)
        made = _make_runs(folder)
        reset_contexts()
    yield made


@pytest.fixture
def runs(shared_runs: Runs, monkeypatch: pytest.MonkeyPatch) -> Runs:
    """The shared runs, with their project folder as the working directory. Do not change them."""
    monkeypatch.chdir(shared_runs.folder)
    return shared_runs


@pytest.fixture
def fresh_runs(project: Path) -> Runs:
    """The same three runs in this test's own project, for tests that change or delete them."""
    return _make_runs(project)


@pytest.fixture
def model(project: Path) -> str:
    """A logistic regression logged by a run and registered as 'clf' version 1; returns the run id."""
    from sklearn.linear_model import LogisticRegression

    x = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]
    fitted = LogisticRegression().fit(x, [0, 1, 0, 1])
    with keel.start_run(experiment="models", name="train-clf", system_metrics=False) as run:
        keel.log_model(fitted, "model")
    keel.register_model(f"runs:/{run.run_id}/model", "clf")
    return run.run_id


# -- runs ----------------------------------------------------------------------------------------


def test_runs_list_table_shows_names_statuses_and_metrics(runs: Runs) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    for text in ("good-run", "weak-run", "failed-run", "FAILED", "FINISHED", runs.good[:8], "acc", "NaN"):
        assert text in result.stdout


def test_runs_list_json_is_valid_and_writes_nan_as_a_string(runs: Runs) -> None:
    data = stdout_json(invoke("runs", "list", "--json"))
    by_name = {run["name"]: run for run in data}
    assert set(by_name) == {"good-run", "weak-run", "failed-run"}
    good = by_name["good-run"]
    assert good["run_id"] == runs.good
    assert good["metrics"] == {"acc": 0.9, "loss": "NaN"}
    assert good["params"] == {"lr": "0.1"}
    assert good["tags"] == {"team": "vision"}
    assert good["status"] == "FINISHED"
    failed = by_name["failed-run"]
    assert failed["status"] == "FAILED"
    assert "RuntimeError: boom" in failed["traceback"]
    assert [run["name"] for run in data] == ["failed-run", "weak-run", "good-run"]  # newest first


def test_runs_list_filter_and_order(runs: Runs) -> None:
    found = stdout_json(invoke("runs", "list", "-f", "metrics.acc > 0.5", "--json"))
    assert [run["run_id"] for run in found] == [runs.good]
    found = stdout_json(
        invoke("runs", "list", "--filter", "params.lr = '0.5' or status = 'FAILED'", "--json")
    )
    assert {run["run_id"] for run in found} == {runs.weak, runs.failed}
    ordered = stdout_json(invoke("runs", "list", "-o", "metrics.acc ASC", "-e", "exp-a", "--json"))
    assert [run["name"] for run in ordered][:2] == ["weak-run", "good-run"]
    assert len(stdout_json(invoke("runs", "list", "-n", "1", "--json"))) == 1


@pytest.mark.parametrize(
    ("filter_string", "problem"),
    [
        ("metrics.acc >>> 0.5", "expected a number"),
        ("metrics.acc >", "ends where a value was expected"),
        ("bogus > 1", "unknown attribute 'bogus'"),
        ("metrics.acc > 'high'", "numeric"),
        (
            "metrcs.acc > 0.5",
            "metrcs",
        ),  # a misspelt prefix should be named, not reported as a missing operator
    ],
)
def test_bad_filter_exits_2_and_names_the_problem(runs: Runs, filter_string: str, problem: str) -> None:
    result = invoke("runs", "list", "-f", filter_string)
    assert result.exit_code == 2
    message = result.stderr.splitlines()[0]  # the filter itself is echoed on the next lines
    assert message.startswith("error:")
    assert problem in message
    assert "Traceback" not in result.output


def test_runs_list_of_an_unknown_experiment_is_an_error(runs: Runs) -> None:
    result = invoke("runs", "list", "-e", "no-such-experiment")
    assert result.exit_code == 1
    assert "no experiment 'no-such-experiment'" in result.stderr


def test_runs_show_by_prefix(runs: Runs) -> None:
    result = invoke("runs", "show", runs.good[:8])
    assert result.exit_code == 0, result.output
    for text in ("good-run", runs.good, "FINISHED", "lr", "0.1", "acc", "0.9", "team", "notes/hello.txt"):
        assert text in result.stdout
    failed = invoke("runs", "show", runs.failed[:8])
    assert "RuntimeError: boom" in failed.stdout


def test_runs_show_json(runs: Runs) -> None:
    data = stdout_json(invoke("runs", "show", runs.good[:8], "--json"))
    assert data["run_id"] == runs.good
    assert data["metrics"]["loss"] == "NaN"
    assert [a["name"] for a in data["artifacts"]] == ["config.json", "notes/hello.txt"]
    assert data["inputs"] == []
    assert stdout_json(invoke("runs", "show", runs.good.upper(), "--json"))["run_id"] == runs.good


@pytest.mark.parametrize(
    ("run_id", "code", "message"),
    [
        ("deadbeef", 1, "no run id starts with 'deadbeef'"),
        ("0" * 32, 1, "no run " + "0" * 32),
        ("zz", 2, "is not a run id"),
        ("not-hex!", 2, "is not a run id"),
    ],
)
def test_unknown_run_id_is_a_clear_error_not_a_traceback(
    runs: Runs, run_id: str, code: int, message: str
) -> None:
    for command in (["runs", "show"], ["artifacts", "list"], ["runs", "delete"]):
        result = invoke(*command, run_id)
        assert result.exit_code == code, (command, result.output)
        assert message in result.stderr
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)


def test_runs_compare_json_marks_differences(runs: Runs) -> None:
    data = stdout_json(invoke("runs", "compare", runs.good[:8], runs.weak, "--json"))
    assert data["runs"] == [runs.good, runs.weak]
    rows = {row["key"]: row for row in data["rows"]}
    assert rows["params.lr"] == {"key": "params.lr", "values": ["0.1", "0.5"], "differs": True}
    assert rows["metrics.acc"]["values"] == [0.9, 0.3]
    assert rows["metrics.loss"] == {"key": "metrics.loss", "values": ["NaN", None], "differs": True}
    assert rows["cost_usd"]["differs"] is False


def test_runs_compare_table_and_too_few_runs(runs: Runs) -> None:
    result = invoke("runs", "compare", runs.good[:8], runs.weak[:8], "--diff")
    assert result.exit_code == 0, result.output
    assert "params.lr" in result.stdout
    assert "cost_usd" not in result.stdout  # equal rows are hidden by --diff
    result = invoke("runs", "compare", runs.good)
    assert result.exit_code == 2
    assert "at least two" in result.output


def test_runs_delete_is_soft_and_list_all_shows_deleted_runs(fresh_runs: Runs) -> None:
    runs = fresh_runs
    result = invoke("runs", "delete", runs.weak[:8])
    assert result.exit_code == 0, result.output
    assert f"deleted {runs.weak}" in result.stdout
    visible = {run["run_id"] for run in stdout_json(invoke("runs", "list", "--json"))}
    assert visible == {runs.good, runs.failed}
    everything = {run["run_id"]: run for run in stdout_json(invoke("runs", "list", "--all", "--json"))}
    assert set(everything) == {runs.good, runs.weak, runs.failed}
    assert everything[runs.weak]["lifecycle_stage"] == "deleted"
    assert stdout_json(invoke("runs", "show", runs.weak[:8], "--json"))["lifecycle_stage"] == "deleted"


def test_permanent_delete_asks_first_and_removes_the_run(fresh_runs: Runs) -> None:
    runs = fresh_runs
    result = CliRunner().invoke(app, ["runs", "delete", runs.weak, "--permanent"], input="n\n")
    assert result.exit_code == 1  # aborted
    assert runs.weak in {run["run_id"] for run in stdout_json(invoke("runs", "list", "--json"))}
    result = invoke("runs", "delete", runs.weak, "--permanent", "--yes")
    assert result.exit_code == 0, result.output
    remaining = {run["run_id"] for run in stdout_json(invoke("runs", "list", "--all", "--json"))}
    assert remaining == {runs.good, runs.failed}


# -- experiments and artifacts -------------------------------------------------------------------


def test_experiments_list_json(runs: Runs) -> None:
    data = stdout_json(invoke("experiments", "list", "--json"))
    by_name = {e["name"]: e for e in data}
    assert by_name["exp-a"]["runs"] == 3
    assert by_name["exp-a"]["project"] == "default"
    table = invoke("experiments", "list")
    assert table.exit_code == 0
    assert "exp-a" in table.stdout


def test_artifacts_list_and_get(runs: Runs, tmp_path: Path) -> None:
    listed = stdout_json(invoke("artifacts", "list", runs.good[:8], "--json"))
    assert [a["name"] for a in listed] == ["config.json", "notes/hello.txt"]
    assert listed[1]["size"] == 5
    assert [a["name"] for a in stdout_json(invoke("artifacts", "list", runs.good, "notes", "--json"))] == [
        "notes/hello.txt"
    ]
    table = invoke("artifacts", "list", runs.good[:8])
    assert "notes/hello.txt" in table.stdout

    out = tmp_path / "all"
    result = invoke("artifacts", "get", runs.good[:8], "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "notes" / "hello.txt").read_text() == "hello"
    assert json.loads((out / "config.json").read_text()) == {"k": 1}

    one = tmp_path / "one"
    result = invoke("artifacts", "get", runs.good, "notes/hello.txt", "--output", str(one))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str((one / "hello.txt").resolve())
    assert (one / "hello.txt").read_text() == "hello"

    missing = invoke("artifacts", "get", runs.good, "nope.txt", "-o", str(tmp_path / "x"))
    assert missing.exit_code == 1
    assert "no artifact 'nope.txt'" in missing.stderr


# -- models --------------------------------------------------------------------------------------


def test_models_list_show_and_alias(model: str) -> None:
    listed = stdout_json(invoke("models", "list", "--json"))
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [("clf", 1, {})]

    result = invoke("models", "alias", "clf", "champion", "1")
    assert result.exit_code == 0, result.output
    assert "clf@champion -> version 1" in result.stdout
    versions = stdout_json(invoke("models", "show", "clf", "--json"))
    assert [(v["version"], v["run_id"], v["flavor"], v["aliases"]) for v in versions] == [
        (1, model, "sklearn", ["champion"])
    ]
    assert versions[0]["uri"] == "models:/clf/1"
    assert stdout_json(invoke("models", "list", "--json"))[0]["aliases"] == {"champion": 1}
    assert "@champion" in invoke("models", "show", "clf").stdout
    assert "clf" in invoke("models", "list").stdout

    result = invoke("models", "alias", "clf", "champion", "--delete")
    assert result.exit_code == 0, result.output
    assert stdout_json(invoke("models", "show", "clf", "--json"))[0]["aliases"] == []


def test_models_errors_are_clear(model: str) -> None:
    cases = [
        (["models", "alias", "clf", "latest", "1"], 2, "reserved"),
        (["models", "alias", "clf", "v2", "1"], 2, "reserved"),
        (["models", "alias", "clf", "champion"], 2, "VERSION"),
        (["models", "alias", "clf", "champion", "7"], 1, "7"),
        (["models", "show", "no-such-model"], 1, "no-such-model"),
        (["models", "alias", "no-such-model", "champion", "1"], 1, "no-such-model"),
    ]
    for args, code, message in cases:
        result = invoke(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, args
        assert "Traceback" not in result.output
    assert stdout_json(invoke("models", "show", "clf", "--json"))[0]["aliases"] == []


# -- names ---------------------------------------------------------------------------------------


def test_names_check_reports_invalid_names_with_a_suggestion(project: Path) -> None:
    result = invoke("names", "check", "good-name", "Bad Name!", "--kind", "model")
    assert result.exit_code == 1
    assert "ok      good-name" in result.stdout
    assert "invalid Bad Name!" in result.stdout
    assert "'bad_name'" in result.stdout
    assert invoke("names", "check", "good-name", "other.name", "-k", "model").exit_code == 0


def test_names_check_json(project: Path) -> None:
    result = invoke("names", "check", "good-name", "Bad Name!", "--kind", "model", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["kind"] == "model"
    good, bad = data["results"]
    assert good == {"name": "good-name", "valid": True, "problems": [], "suggestion": None}
    assert bad["valid"] is False
    assert bad["problems"]
    assert bad["suggestion"] == "bad_name"
    latest = json.loads(invoke("names", "check", "latest", "--json").stdout)["results"][0]
    assert latest["valid"] is False
    assert latest["suggestion"] == "latest-1"


def test_names_check_follows_the_project_convention(project: Path) -> None:
    (project / "keel.toml").write_text(
        'project = "shop"\n[naming.model]\npattern = "{project}-{model}"\nmax_length = 40\n'
    )
    data = json.loads(invoke("names", "check", "shop-churn", "churn", "--json").stdout)
    assert data["pattern"] == "{project}-{model}"
    assert [r["valid"] for r in data["results"]] == [True, False]
    assert data["results"][1]["suggestion"] == "shop-churn"


def test_names_check_unknown_kind_is_a_usage_error(project: Path) -> None:
    result = invoke("names", "check", "x", "--kind", "dataset")
    assert result.exit_code == 2
    assert "unknown name kind 'dataset'" in result.stderr


# -- help ----------------------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        if hasattr(command, "commands"):  # a group (typer vendors click, so no isinstance)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_command_is_reachable_for_help() -> None:
    paths = {" ".join(p) for p in _command_paths()}
    assert {
        "runs list",
        "runs show",
        "runs compare",
        "runs delete",
        "experiments list",
        "models list",
        "models show",
        "models alias",
        "artifacts list",
        "artifacts get",
        "names check",
        "quickstart",
        "version",
    } <= paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "keel")
def test_every_command_has_help(path: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = invoke(*path, flag)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help, f"`keel {' '.join(path)}` has no help text"


def test_groups_without_a_subcommand_show_help(project: Path) -> None:
    for group in ("runs", "models", "artifacts", "names", "experiments"):
        result = invoke(group)
        assert "Usage:" in result.output
        assert "Traceback" not in result.output


# -- the installed script ------------------------------------------------------------------------


def _keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEEL), *args],
        cwd=cwd,
        env={**os.environ, "KEEL_SYSTEM_METRICS": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_installed_script_help_and_version(project: Path) -> None:
    result = _keel("--help", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "runs" in result.stdout
    assert "quickstart" in result.stdout
    assert _keel("version", cwd=project).stdout.strip() == keel.__version__
    # the flag most people try first; it must not open (or create) a store
    flag = _keel("--version", cwd=project)
    assert flag.returncode == 0 and flag.stdout.strip() == keel.__version__, flag.stderr
    assert not (project / ".keel").exists()


def test_pipeline_show_rounds_step_timings(project: Path) -> None:
    """``keel pipeline show`` printed ``0.0741861`` s of CPU and ``261.898`` MB: noise past the
    millisecond and the megabyte."""
    from keel.entities import StepRun

    client = keel.Client()
    parent = client.create_run("pipelines", "noisy")
    graph = {"name": "p", "nodes": [{"id": "load", "step": "load", "upstream": []}]}
    pipeline_run_id = client.store.create_pipeline_run(parent.run_id, "p", params={}, graph=graph)
    step = StepRun(
        "load", "load", "done", cache_key="k", wall_s=0.164291, cpu_s=0.0741861, peak_rss_mb=261.898
    )
    client.store.record_step_runs(pipeline_run_id, [step])
    result = invoke("pipeline", "show", str(pipeline_run_id))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    row = next(line for line in result.stdout.splitlines() if "│ load" in line)  # type: ignore[attr-defined]
    assert "0.164" in row and "0.074" in row and "262" in row
    assert "0.164291" not in row and "0.0741861" not in row and "261.898" not in row


def test_python_dash_m_keel_is_the_cli(runs: Runs) -> None:
    """``python -m keel`` works where the ``keel`` script is not on PATH (an inactive virtualenv)."""
    result = subprocess.run(
        [sys.executable, "-m", "keel", "runs", "list", "--json"],
        cwd=runs.folder,
        env={**os.environ, "KEEL_SYSTEM_METRICS": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {run["run_id"] for run in json.loads(result.stdout)} == {runs.good, runs.weak, runs.failed}


def test_installed_script_lists_runs_and_fails_cleanly(runs: Runs) -> None:
    result = _keel("runs", "list", "--json", cwd=runs.folder)
    assert result.returncode == 0, result.stderr
    assert {run["run_id"] for run in json.loads(result.stdout)} == {runs.good, runs.weak, runs.failed}
    bad = _keel("runs", "show", "deadbeef", cwd=runs.folder)
    assert bad.returncode == 1
    assert "no run id starts with 'deadbeef'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert bad.stdout == ""


@pytest.mark.slow
def test_quickstart_end_to_end(project: Path) -> None:
    result = _keel("quickstart", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "breast-cancer-classifier"
    assert data["version"] == 1
    assert len(data["runs"]) == 4
    assert {r["name"] for r in data["runs"]} == {"logistic-sgd", "gradient-boosting", "random-forest", "mlp"}
    champions = [r for r in data["runs"] if r["champion"]]
    assert len(champions) == 1
    assert champions[0]["run_id"] == data["champion_run_id"]
    assert champions[0]["roc_auc"] == max(r["roc_auc"] for r in data["runs"])
    assert all(0.8 < r["accuracy"] <= 1 for r in data["runs"])

    from sklearn.datasets import load_breast_cancer

    model = keel.load_model("models:/breast-cancer-classifier@champion")
    x = load_breast_cancer().data[:5]
    predictions = model.predict(x)
    assert len(predictions) == 5
    assert set(predictions.tolist()) <= {0, 1}
    version = keel.Client().get_model_version_by_alias("breast-cancer-classifier", "champion")
    assert version.run_id == data["champion_run_id"]

    # a second run changes nothing: every step of the quickstart pipeline comes from the cache
    again = _keel("quickstart", "--json", cwd=project)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["cached_steps"] == 8 and second["version"] == 1
    assert [r["run_id"] for r in second["runs"]] == [r["run_id"] for r in data["runs"]]
    client = keel.Client()
    first_runs = client.search_runs(["quickstart"])
    assert len(first_runs) == 4  # no new training runs
    assert all(run.parent_run_id for run in first_runs)  # each candidate is a child of the pipeline's run
    # the data was validated once, before training, and the validation is a run of its own
    validations = client.search_runs(["data-validation"])
    assert len(validations) == 1 and validations[0].tags["keel.data.status"] == "passed"


def test_error_messages_keep_bracketed_text(project):
    from keel.cli._output import handle_errors
    from keel.errors import InvalidInputError

    @handle_errors
    def fail() -> None:
        raise InvalidInputError("columns [id, v] are missing; add them to [tool.keel]")

    import typer
    from typer.testing import CliRunner

    app_ = typer.Typer()
    app_.command()(fail)
    result = CliRunner().invoke(app_, [])
    assert result.exit_code == 2
    assert "[id, v]" in result.output and "[tool.keel]" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("runs", "show", "abcd"),
        ("runs", "compare", "abcd", "abce"),
        ("models", "list"),
        ("models", "show", "m"),
        ("experiments", "list"),
        ("lineage", "dataset", "d"),
        ("artifacts", "list", "abcd"),
        ("pipeline", "list"),
        ("sync",),
    ],
)
def test_reading_commands_leave_no_store_where_there_is_no_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    """A read in a folder without a project (say the home folder) must not create ``.keel`` there:
    every project below without its own would then silently use it."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    reset_contexts()
    result = invoke(*args)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    message = " ".join(result.stderr.split())  # type: ignore[attr-defined]
    assert "no keel project found from" in message
    assert "keel quickstart" in message and "KEEL_TRACKING_URI" in message
    assert not (folder / ".keel").exists()
    assert not (tmp_path / ".keel").exists()
