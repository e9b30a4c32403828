"""The lineage queries through the server (RestStore), with a reader limited to one project."""

from __future__ import annotations

from keel.artifacts.remote import RemoteArtifactStore
from keel.entities import StepRun
from keel.server.testing import ThreadedServer
from keel.store.rest import RestStore


def test_lineage_queries_over_http_respect_projects(tmp_path):
    with ThreadedServer(tmp_path / "server", auth=True) as server:
        store = RestStore(server.url, token=server.token)
        blobs = RemoteArtifactStore(store)
        made, other = blobs.put_bytes(b"made")[0], blobs.put_bytes(b"other")[0]
        mine = store.create_run(store.create_experiment("mine").experiment_id, "a").run_id
        theirs = store.create_run(
            store.create_experiment("theirs", project="other").experiment_id, "b"
        ).run_id
        for run in (mine, theirs):
            store.log_dataset(
                run, name="customers", fingerprint="aa" * 32, schema=None, row_count=1, source=None
            )
            store.record_input_artifacts(run, [(made, "in/a"), (other, "in/b"), (made, "in/a")])
        pipeline_run = store.create_pipeline_run(mine, "train", params={}, graph={"nodes": []})
        store.record_step_runs(
            pipeline_run,
            [
                StepRun(
                    node="fit",
                    step="fit",
                    status="done",
                    inputs={"data": made},
                    outputs={"out": {"sha256": other}},
                )
            ],
        )
        store.create_registered_model("churn")
        store.create_model_version("churn", artifact_sha256=made, flavor="sklearn", run_id=mine)
        store.create_registered_model("fraud", project="other")
        store.create_model_version(
            "fraud", artifact_sha256=made, flavor="sklearn", run_id=theirs, project="other"
        )

        assert sorted(e.name for e in store.run_lineage(mine)) == ["in/a", "in/b"]
        assert {u.run_id for u in store.dataset_usage("customers")} == {mine, theirs}
        assert [(u.node, u.direction) for u in store.step_uses(other)] == [("fit", "output")]
        assert {v.name for v in store.model_versions_from_runs([mine, theirs])} == {"churn", "fraud"}

        auth = server.app.state.auth
        auth.create_user("reader")
        auth.set_role("reader", "default", "read")
        token, _ = auth.create_token("reader", project="default", scope="read")
        reader = RestStore(server.url, token=token)
        assert [u.run_id for u in reader.dataset_usage("customers")] == [mine]
        assert [v.name for v in reader.model_versions_from_runs([mine, theirs])] == ["churn"]
        assert {e.run_id for e in reader.lineage(made)} == {mine}
        assert reader.step_uses(other)[0].run_id == mine
        store.close()
        reader.close()
