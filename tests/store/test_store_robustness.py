"""Bad calls to the SQL store fail with keel's errors (found by fuzzing the server), never raw
database or Python errors."""

from __future__ import annotations

import pytest

from keel.entities import StepRun
from keel.errors import ConflictError, InvalidInputError, NotFoundError


@pytest.fixture
def sql(store_url):
    from keel.store.sql import SqlStore

    opened = SqlStore(store_url)
    yield opened
    opened.close()


def test_count_runs_of_a_malformed_experiment_id(sql):
    with pytest.raises(InvalidInputError, match="experiment id"):
        sql.count_runs("abc")


def test_a_run_id_cannot_be_created_twice(sql):
    experiment = sql.create_experiment("e").experiment_id
    run = sql.create_run(experiment, "first", run_id="f" * 32)
    with pytest.raises(ConflictError, match="already exists"):
        sql.create_run(experiment, "second", run_id=run.run_id)
    assert sql.get_run(run.run_id).name == "first"


def test_updating_a_missing_run_with_nothing_still_says_it_is_missing(sql):
    with pytest.raises(NotFoundError):
        sql.update_run("0" * 32)


def test_a_pipeline_run_is_deleted_with_its_run(sql):
    experiment = sql.create_experiment("e").experiment_id
    run = sql.create_run(experiment, "pipeline").run_id
    pipeline_run = sql.create_pipeline_run(run, "p", params={}, graph={"nodes": []})
    key = "a" * 64
    sql.record_step_runs(
        pipeline_run,
        [StepRun(node="s", step="s", status="done", cache_key=key, outputs={"o": {"sha256": "b" * 64}})],
    )
    assert key in sql.lookup_step_cache([key])
    sql.delete_run_permanently(run)
    with pytest.raises(NotFoundError):
        sql.get_run(run)
    with pytest.raises(NotFoundError):
        sql.get_pipeline_run(pipeline_run)
    assert sql.lookup_step_cache([key]) == {}


def test_a_file_uri_database_creates_no_folder_in_the_working_directory(tmp_path, monkeypatch):
    """``sqlite:///file:/abs/path?uri=true`` names a database; it once made ``./file:/abs`` folders."""
    from keel.store.sql import SqlStore

    db = tmp_path / "keel.db"
    SqlStore(f"sqlite:///{db}")  # creates the database
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    SqlStore(f"sqlite:///file:{db}?mode=ro&uri=true", crash_check=False)
    assert list(cwd.iterdir()) == []
