"""`keel data profile | suggest | drift`, through the commands registered on a Typer app."""

from __future__ import annotations

import json
import struct

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

import keel
from keel.cli.data_profiles import register
from keel.data.profiles import FORMAT_VERSION, MAGIC, Profile
from keel.data.suite import Suite

app = typer.Typer(rich_markup_mode=None)
register(app)
runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 5_000
    reference = pl.DataFrame(
        {"x": rng.normal(size=n), "s": rng.choice(["a", "b"], n), "k": rng.integers(0, 5, n)}
    )
    drifted = reference.with_columns(pl.col("x") + 1.5, pl.Series("s", rng.choice(["a", "b", "c"], n)))
    paths = {
        "ref": tmp_path / "ref.parquet",
        "same": tmp_path / "same.csv",
        "drifted": tmp_path / "today.parquet",
    }
    reference.write_parquet(paths["ref"])
    reference.sample(fraction=1.0, shuffle=True, seed=1).write_csv(paths["same"])
    drifted.write_parquet(paths["drifted"])
    paths["profile"] = tmp_path / "ref.kprof"
    return paths


def test_profile_prints_a_table_and_writes_the_profile(files):
    result = runner.invoke(app, ["profile", str(files["ref"]), "-o", str(files["profile"])])
    assert result.exit_code == 0, result.output
    assert "ref.parquet: 5,000 rows, 3 columns" in result.output
    assert "a (2," in result.output and f"profile written to {files['profile']}" in result.output
    assert Profile.load(files["profile"]).row_count == 5_000
    as_json = runner.invoke(app, ["profile", str(files["ref"]), "--json", "--columns", "x"])
    payload = json.loads(as_json.output)
    assert [c["name"] for c in payload["columns"]] == ["x"] and payload["rows"] == 5_000


def test_profile_log_records_a_run_with_the_dataset_and_profile(files, project):
    result = runner.invoke(app, ["profile", str(files["ref"]), "--log", "--experiment", "nightly"])
    assert result.exit_code == 0, result.output
    run_id = result.output.split("logged as run ")[1].split()[0]
    client = keel.Client()
    (dataset,) = client.list_inputs(run_id)
    assert dataset.name == "ref.parquet" and dataset.profile_sha256
    assert [a.name for a in client.list_artifacts(run_id)] == ["profile.kprof"]
    drifted = runner.invoke(app, ["drift", str(files["drifted"]), "--reference", f"runs:/{run_id}"])
    assert drifted.exit_code == 1, drifted.output


def test_drift_exit_codes_report_and_json(files, tmp_path, project):
    runner.invoke(app, ["profile", str(files["ref"]), "-o", str(files["profile"])])
    same = runner.invoke(app, ["drift", str(files["same"]), "--reference", str(files["profile"])])
    assert same.exit_code == 0, same.output
    assert "no drift: 0 of 3 columns drifted" in same.output

    report = tmp_path / "drift.html"
    drifted = runner.invoke(
        app, ["drift", str(files["drifted"]), "-r", str(files["profile"]), "--report", str(report)]
    )
    assert drifted.exit_code == 1, drifted.output
    assert "DRIFT: 2 of 3 columns drifted" in drifted.output
    assert "Dataset drift detected" in report.read_text()

    as_json = runner.invoke(
        app,
        [
            "drift",
            str(files["drifted"]),
            "-r",
            str(files["profile"]),
            "--json",
            "--method",
            "x=ks",
            "--threshold",
            "s=0.9",
            "--threshold",
            "0.3",
        ],
    )
    assert as_json.exit_code == 0  # only x drifts now: 1 of 3 is below the 50 % share
    payload = json.loads(as_json.output)
    assert not payload["dataset_drift"] and payload["drifted_columns"] == 1
    by_column = {c["column"]: c for c in payload["columns"]}
    assert by_column["x"]["method"] == "ks" and by_column["x"]["drifted"]
    assert by_column["s"]["threshold"] == 0.9 and not by_column["s"]["drifted"]
    assert by_column["k"]["threshold"] == 0.3
    profile_vs_profile = runner.invoke(app, ["drift", str(files["profile"]), "-r", str(files["profile"])])
    assert profile_vs_profile.exit_code == 0, profile_vs_profile.output


def test_drift_bad_input_exits_2(files, tmp_path, project):
    runner.invoke(app, ["profile", str(files["ref"]), "-o", str(files["profile"])])
    missing = runner.invoke(app, ["drift", str(tmp_path / "nope.parquet"), "-r", str(files["profile"])])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_a_profile = runner.invoke(app, ["drift", str(files["ref"]), "-r", str(files["ref"])])
    assert not_a_profile.exit_code == 2 and "not a keel profile" in not_a_profile.output
    newer = tmp_path / "newer.kprof"
    data = files["profile"].read_bytes()
    newer.write_bytes(MAGIC + struct.pack("<H", FORMAT_VERSION + 1) + data[len(MAGIC) + 2 :])
    incompatible = runner.invoke(app, ["drift", str(files["ref"]), "-r", str(newer)])
    assert incompatible.exit_code == 2 and f"format version {FORMAT_VERSION + 1}" in incompatible.output
    bad_threshold = runner.invoke(
        app, ["drift", str(files["ref"]), "-r", str(files["profile"]), "--threshold", "x=high"]
    )
    assert bad_threshold.exit_code == 2 and "x=high" in bad_threshold.output
    bad_method = runner.invoke(
        app, ["drift", str(files["ref"]), "-r", str(files["profile"]), "--method", "s=ks"]
    )
    assert bad_method.exit_code == 2 and "does not fit categorical column 's'" in bad_method.output


def test_suggest_writes_a_valid_suite(files, tmp_path):
    target = tmp_path / "suite.yaml"
    result = runner.invoke(app, ["suggest", str(files["ref"]), "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert text.startswith("# suggested by `keel data suggest`")
    suite = Suite.load(target)
    assert {c.type for c in suite} >= {"columns_match", "column_type", "not_null", "between", "in_set"}
    assert keel.data.validate(pl.read_parquet(files["ref"]), suite).passed


def test_commands_are_on_keel_data(files):
    from keel.cli import app as keel_app

    result = runner.invoke(keel_app, ["data", "profile", str(files["ref"]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == 5_000
    assert runner.invoke(keel_app, ["data", "drift", "--help"]).exit_code == 0


def test_drift_leaves_out_columns_that_identify_rows_and_says_so(tmp_path, project):
    from tests.data.test_drift import _orders  # four columns identify rows, two are measurements

    _orders(3000, 4, 0.0).write_parquet(tmp_path / "last.parquet")
    _orders(3000, 5, 1.0).write_parquet(tmp_path / "now.parquet")
    kprof = str(tmp_path / "last.kprof")
    assert runner.invoke(app, ["profile", str(tmp_path / "last.parquet"), "-o", kprof]).exit_code == 0
    now = str(tmp_path / "now.parquet")
    text = runner.invoke(app, ["drift", now, "-r", kprof, "--no-log"])
    assert text.exit_code == 1, text.output  # 2 of 2 compared columns drifted, not 2 of 6
    assert "DRIFT: 2 of 2 columns drifted" in text.output
    assert "excluded: id (id-like: 100% distinct within 3,000 values), email (id-like: 100% distinct)" in (
        " ".join(text.output.split())
    )
    as_json = runner.invoke(app, ["drift", now, "-r", kprof, "--no-log", "--json"])
    excluded = {e["column"]: e["reason"] for e in json.loads(as_json.stdout)["excluded"]}
    assert set(excluded) == {"id", "email", "order_no", "at"}
    named = runner.invoke(app, ["drift", now, "-r", kprof, "--no-log", "--json", "--columns", "id,order_no"])
    assert named.exit_code == 0 and json.loads(named.stdout)["excluded"] == []  # named: compared, no drift
    fewer = runner.invoke(app, ["drift", now, "-r", kprof, "--no-log", "--json", "--exclude", "items"])
    assert json.loads(fewer.stdout)["columns_compared"] == 1
