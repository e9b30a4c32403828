"""keel's own client against a live server: KEEL_TRACKING_URI=http://... end to end."""

from __future__ import annotations

import textwrap

import pytest

from keel.server.testing import LiveServer
from tests.conftest import run_python


def _uri(server: LiveServer, token: str | None = None) -> str:
    return f"http://:{token or server.token}@127.0.0.1:{server.port}"


SCRIPT = textwrap.dedent(
    """
    import math, keel
    from sklearn.linear_model import LogisticRegression
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    with keel.start_run(experiment="remote") as run:
        keel.log_param("C", 0.5)
        for step in range(500):
            keel.log_metric("loss", 1.0 / (step + 1), step=step)
        keel.log_metric("odd", float("nan"), step=0)
        keel.log_text("hello", "notes/hello.txt")
        model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
        info = keel.log_model(model, "model", input_example=X[:2])
    version = keel.register_model(f"runs:/{run.run_id}/model", "iris-clf", alias="champion")
    loaded = keel.load_model("models:/iris-clf@champion")
    assert (loaded.predict(X) == model.predict(X)).all()
    client = keel.Client()
    history = client.get_metric_history(run.run_id, "loss")
    assert len(history) == 500 and history.values[-1] == 1.0 / 500
    assert math.isnan(client.get_run(run.run_id).metrics["odd"].value)
    assert client.read_artifact(run.run_id, "notes/hello.txt") == b"hello"
    print("RUN", run.run_id, version.version)
    """
)


@pytest.mark.slow
def test_fluent_api_through_the_server(live_server, tmp_path):
    project = tmp_path / "client"
    project.mkdir()
    (project / "keel.toml").write_text('project = "default"\n')
    result = run_python(SCRIPT, project, env={"KEEL_TRACKING_URI": _uri(live_server)})
    run_id = result.stdout.split()[1]
    # the client wrote nothing locally but its spool: metadata and bytes are on the server
    assert not (project / ".keel" / "keel.db").exists()
    assert not (project / ".keel" / "artifacts").exists()
    from keel.store.sql import SqlStore

    server_store = SqlStore(live_server.config.store_url)
    run = server_store.get_run(run_id)
    assert run.params == {"C": "0.5"} and run.status.value == "FINISHED"
    assert len(server_store.get_metric_history(run_id, "loss")) == 500
    server_store.close()


def test_a_read_token_cannot_log(live_server, tmp_path):
    from keel.errors import StoreError
    from keel.store.rest import RestStore

    admin = RestStore(_uri(live_server))
    experiment = admin.create_experiment("e")
    reader = RestStore(_uri(live_server, live_server.make_token("read")), retries=0)
    assert reader.get_experiment(experiment.experiment_id).name == "e"
    with pytest.raises(StoreError, match="403"):
        reader.create_run(experiment.experiment_id, "r")
    assert "keel_" not in reader.url and reader.url == live_server.url


def test_a_missing_or_wrong_token_names_the_setting_that_carries_it(live_server):
    """The server's 401 says "send 'Authorization: Bearer keel_...'", which a curl user acts on; a
    keel client's user sets KEEL_TRACKING_TOKEN instead, and the error says so."""
    from keel.errors import StoreError
    from keel.store.rest import RestStore

    for store in (
        RestStore(live_server.url, retries=0),
        RestStore(_uri(live_server, "keel_wrong"), retries=0),
    ):
        with pytest.raises(StoreError, match="401") as refused:
            store.list_experiments()
        assert "KEEL_TRACKING_TOKEN" in str(refused.value)
        store.close()


def test_the_server_marks_silent_runs_crashed(tmp_path, monkeypatch):
    from keel.entities import RunStatus
    from keel.server import app as server_app
    from keel.server.testing import ThreadedServer
    from keel.store.rest import RestStore
    from tests.conftest import wait_until

    monkeypatch.setattr(server_app, "CRASH_CHECK_GRACE_S", 0.2)
    monkeypatch.setattr(server_app, "CRASH_CHECK_EVERY_S", 0.2)
    with ThreadedServer(tmp_path / "server") as server:
        store = RestStore(server.url)
        experiment = store.create_experiment("e").experiment_id
        silent = store.create_run(experiment, "silent", host="elsewhere", heartbeat_interval=0.2).run_id
        alive = store.create_run(experiment, "alive", host="elsewhere", heartbeat_interval=30).run_id
        assert wait_until(lambda: store.get_run(silent).status is RunStatus.CRASHED, timeout=10)
        assert store.get_run(alive).status is RunStatus.RUNNING
        store.close()


def test_the_token_can_come_from_the_environment(live_server, tmp_path):
    project = tmp_path / "client"
    project.mkdir()
    (project / "keel.toml").write_text("")
    code = textwrap.dedent(
        """
        import keel
        with keel.start_run(experiment="from-env") as run:
            keel.log_param("a", 1)
        assert "keel_" not in repr(keel.Settings.load())
        print(run.run_id)
        """
    )
    env = {"KEEL_TRACKING_URI": live_server.url, "KEEL_TRACKING_TOKEN": live_server.token}
    run_id = run_python(code, project, env=env).stdout.split()[-1]
    from keel.store.sql import SqlStore

    server_store = SqlStore(live_server.config.store_url)
    assert server_store.get_run(run_id).params == {"a": "1"}
    server_store.close()


FLOW = textwrap.dedent(
    """
    import numpy as np
    from keel.pipelines import pipeline, step

    @step
    def make(rows: int) -> np.ndarray:
        return np.arange(rows, dtype="float64")

    @pipeline
    def flow(rows: int = 50_000):
        return make(rows)
    """
)
AUTHOR = textwrap.dedent(
    """
    import keel
    from sklearn.linear_model import LogisticRegression
    from sklearn.datasets import load_iris
    from flow import flow

    X, y = load_iris(return_X_y=True)
    with keel.start_run(experiment="shared") as run:
        keel.log_text("for the team", "notes/readme.txt")
        keel.log_model(LogisticRegression(max_iter=300).fit(X, y), "model", input_example=X[:2])
    keel.register_model(f"runs:/{run.run_id}/model", "team-clf", alias="champion")
    result = flow.run()
    assert not result.nodes["make"].cache_hit
    print("RUN", run.run_id)
    """
)
TEAMMATE = textwrap.dedent(
    """
    import sys
    import keel
    from sklearn.datasets import load_iris
    from flow import flow

    X, _ = load_iris(return_X_y=True)
    assert keel.load_model("models:/team-clf@champion").predict(X[:3]).shape == (3,)
    assert keel.Client().read_artifact(sys.argv[1], "notes/readme.txt") == b"for the team"
    result = flow.run()  # the array (a blob of its own, beside its manifest) comes from the cache
    assert result.nodes["make"].cache_hit
    assert float(result.outputs.sum()) == sum(range(50_000))
    print("OK")
    """
)


@pytest.mark.slow
def test_a_teammate_reads_models_artifacts_and_cached_steps_with_project_tokens(live_server, tmp_path):
    """The server serves blobs only to readers of a project whose records name them: everything a
    teammate of the same project needs (a registered model's files, run artifacts, a cached step's
    large output) is named by such records."""
    project = tmp_path / "client"
    project.mkdir()
    (project / "keel.toml").write_text('project = "team"\n')
    (project / "flow.py").write_text(FLOW)
    author, teammate = live_server.make_token("promote", "team"), live_server.make_token("write", "team")
    made = run_python(AUTHOR, project, env={"KEEL_TRACKING_URI": _uri(live_server, author)})
    run_id = made.stdout.split()[-1]
    code = TEAMMATE.replace("sys.argv[1]", repr(run_id))
    used = run_python(code, project, env={"KEEL_TRACKING_URI": _uri(live_server, teammate)})
    assert used.stdout.strip().endswith("OK")


def test_a_token_for_another_project_is_told_how_to_choose_it(live_server):
    """A user with write on 'vision' whose script sets no project asks for 'default' and is refused:
    the refusal names the projects this token can use and how a keel client picks one."""
    import httpx

    from keel.errors import StoreError
    from keel.store.rest import RestStore

    store = RestStore(_uri(live_server, live_server.make_token("write", "vision")), retries=0)
    with pytest.raises(StoreError, match="403") as refused:
        store.create_experiment("e")
    message = str(refused.value)
    assert "on project 'default'" in message and "this token has 'write' on project 'vision'" in message
    assert "KEEL_PROJECT=vision" in message and "keel.Client(project=" in message
    store.close()
    # without a token at all, the server's own answer names the keel client's setting too
    anonymous = httpx.get(f"{live_server.url}/api/v1/experiments")
    assert anonymous.status_code == 401 and "KEEL_TRACKING_TOKEN" in anonymous.text
