"""The first run of a process does not wait for the SQL store to open (issue 11, "the first call in a
process is fast too"): its creation waits in the outbox while the writer opens the store, and every
mistake that used to stop ``start_run`` still stops the script, clearly."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest

import keel
from keel.entities import RunStatus
from keel.errors import NameRuleError, StoreError
from keel.tracking.context import reset_contexts
from tests.conftest import run_python


def _existing_store(project) -> str:
    """A store with its schema, closed again: the next start_run opens it afresh."""
    keel.Client().list_experiments()
    reset_contexts()
    return str(project / ".keel" / "keel.db")


def test_start_run_returns_while_the_store_is_locked_and_the_run_lands_afterwards(project):
    database = _existing_store(project)
    holder = sqlite3.connect(database, isolation_level=None, timeout=60)
    holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        started = time.monotonic()
        run = keel.start_run(experiment="locked", name="first", params={"lr": 0.1})
        keel.log_metric("loss", 0.5, step=1)
        returned = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # before: start_run created the run synchronously and waited out the lock (busy timeout: 60 s)
    assert returned < 5.0
    run.end()
    stored = keel.Client().get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED and stored.name == "first"
    assert stored.params == {"lr": "0.1"} and stored.metrics["loss"].value == 0.5
    assert run.info.experiment_id == stored.experiment_id != ""


def test_a_client_in_the_same_process_reads_the_queued_run(project):
    _existing_store(project)
    with keel.start_run(experiment="read-your-writes") as run:
        keel.log_param("k", "v")
        found = keel.Client().get_run(run.run_id)  # waits for the queued creation, not NotFound
        assert found.params == {"k": "v"}


def test_a_model_registered_while_the_store_opens_gets_its_version_number(project):
    """``log_model(registered_model_name=)`` answers the version: it waits for the run's queued
    creation instead of queueing the registration behind it and answering None."""
    import threading

    from sklearn.linear_model import LogisticRegression

    database = _existing_store(project)
    holder = sqlite3.connect(database, isolation_level=None, timeout=60, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the run's creation cannot land until this is released

    def release() -> None:
        holder.execute("ROLLBACK")
        holder.close()

    releaser = threading.Timer(1.5, release)
    releaser.start()
    try:
        run = keel.start_run(experiment="models")
        model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        info = keel.log_model(model, "model", registered_model_name="clf")  # still locked here
    finally:
        releaser.join()
    run.end()
    assert info.version == 1


def test_a_store_that_cannot_be_opened_is_raised_by_the_run(project):
    blocker = project / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    url = f"sqlite:///{blocker / 'keel.db'}"
    # before: start_run raised the driver's FileExistsError, which named no URI and no fix
    with (
        pytest.raises(StoreError, match="cannot open the metadata store") as caught,
        keel.start_run(experiment="broken", tracking_uri=url),
    ):
        keel.log_metric("loss", 1.0)
        keel.flush()
    assert str(blocker) in str(caught.value) and "tracking_uri" in str(caught.value)
    assert keel.active_run() is None  # the failed run does not stay active


def test_an_unsupported_uri_still_fails_in_start_run(project):
    with pytest.raises(StoreError, match="unsupported tracking URI 'mysql://db/keel'"):
        keel.start_run(tracking_uri="mysql://db/keel")
    assert keel.active_run() is None


def test_a_bad_run_name_is_refused_before_anything_is_queued(project):
    _existing_store(project)
    with pytest.raises(NameRuleError):
        keel.start_run(experiment="names", name="-starts-with-a-dash")
    assert list((project / ".keel").glob("spool/*.outbox")) == []


def test_an_existing_experiment_whose_name_breaks_the_rules_still_takes_runs(project):
    keel.Client().store.create_experiment("-legacy", project="default")  # made before the rule
    reset_contexts()
    with keel.start_run(experiment="-legacy") as run:
        pass
    assert keel.Client().get_experiment(run.info.experiment_id).name == "-legacy"
    with pytest.raises(NameRuleError):
        keel.start_run(experiment="-new-and-bad")


def test_a_process_that_only_starts_a_run_leaves_it_finished(project):
    result = run_python(
        "import keel\nrun = keel.start_run(experiment='short')\n"
        "keel.log_metric('x', 2.0)\nprint(run.run_id)\n",
        project,
    )
    run_id = result.stdout.strip()
    stored = keel.Client().get_run(run_id)
    assert stored.status is RunStatus.FINISHED and stored.metrics["x"].value == 2.0
    assert list((project / ".keel" / "spool").glob("*")) == []


def test_a_queued_run_still_records_the_git_commit_asked_at_its_start(project):
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("-c", "user.email=a@b.c", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "one")
    (project / "keel.toml").write_text('project = "default"\n# changed\n')
    git("add", "keel.toml")
    git("-c", "user.email=a@b.c", "-c", "user.name=a", "commit", "-q", "-m", "two")
    head = git("rev-parse", "HEAD").strip()
    (project / "keel.toml").write_text('project = "default"\n')  # uncommitted change: dirty
    with keel.start_run(experiment="git") as run:
        pass
    stored = keel.Client().get_run(run.run_id)
    assert stored.git_commit == head and stored.git_dirty is True
