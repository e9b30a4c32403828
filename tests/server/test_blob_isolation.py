"""Blobs, step caches, searches and model links across projects, attacked over HTTP: a token of
project ``alpha`` holding the sha256 of project ``beta``'s bytes (hashes are printed, shown and, for
public files, computable) must neither read them, learn that they exist, nor make them its own by
naming them in a record. Runs on SQLite and, with KEEL_TEST_POSTGRES_URL, on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from keel.server.testing import LiveServer
from tests.conftest import _postgres_schema_url
from tests.server.conftest import auth_headers

SECRET = b"beta's private weights"
PROFILE = b"beta's private dataset profile"
MODEL = b"beta's registered model manifest"
MISSING = "0" * 64


@dataclass
class World:
    server: LiveServer
    admin: httpx.Client
    #: promote on alpha, nothing on beta
    attacker: httpx.Client
    #: read on beta only
    beta_reader: httpx.Client
    alpha_experiment: str
    alpha_run: str
    beta_experiment: str
    beta_run: str


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    schemas = _postgres_schema_url() if request.param == "postgres" else None
    store_url = next(schemas) if schemas is not None else None
    try:
        with LiveServer(tmp_path_factory.mktemp("blobs"), store_url=store_url) as server:

            def client(token: str) -> httpx.Client:
                return httpx.Client(base_url=server.url, headers=auth_headers(token), timeout=30)

            admin = client(server.token)
            attacker = client(server.make_token("promote", "alpha"))
            beta_reader = client(server.make_token("read", "beta"))
            ids = []
            for project in ("alpha", "beta"):
                made = admin.post("/api/v1/experiments", json={"name": "e", "project": project})
                run = admin.post(
                    "/api/v1/runs", json={"experiment_id": made.json()["experiment_id"], "name": "r"}
                )
                ids += [made.json()["experiment_id"], run.json()["run_id"]]
            beta_run = ids[3]
            for data in (SECRET, PROFILE, MODEL):
                assert admin.put(f"/api/v1/artifacts/{_sha(data)}", content=data).status_code == 200
            record = {"name": "w.bin", "sha256": _sha(SECRET), "size": len(SECRET), "media_type": "x/y"}
            assert (
                admin.post(f"/api/v1/runs/{beta_run}/artifacts", json={"artifacts": [record]}).status_code
                == 200
            )
            dataset = {"name": "private", "fingerprint": "cd" * 16, "profile_sha256": _sha(PROFILE)}
            assert admin.post(f"/api/v1/runs/{beta_run}/datasets", json=dataset).status_code == 200
            assert admin.post("/api/v1/models", json={"name": "m", "project": "beta"}).status_code == 200
            version = {"artifact_sha256": _sha(MODEL), "flavor": "sklearn", "project": "beta"}
            assert admin.post("/api/v1/models/m/versions", json=version).status_code == 200
            yield World(server, admin, attacker, beta_reader, *ids)
            for each in (admin, attacker, beta_reader):
                each.close()
    finally:
        if schemas is not None:
            next(schemas, None)


def _same_answer(theirs: httpx.Response, nowhere: httpx.Response, sha: str) -> None:
    """The answer for another project's blob is the answer for a blob that does not exist."""
    assert theirs.status_code == nowhere.status_code, (theirs.status_code, theirs.text[:200])
    assert theirs.text.replace(sha, "X") == nowhere.text.replace(MISSING, "X")


# -- blobs are served to readers of a project that references them -----------------------------
@pytest.mark.parametrize(
    "data", [SECRET, PROFILE, MODEL], ids=["run-artifact", "dataset-profile", "model-version"]
)
def test_a_blob_is_served_only_to_readers_of_a_project_referencing_it(world: World, data: bytes) -> None:
    sha = _sha(data)
    for method in ("GET", "HEAD"):
        theirs = world.attacker.request(method, f"/api/v1/artifacts/{sha}")
        assert theirs.status_code == 404
        _same_answer(theirs, world.attacker.request(method, f"/api/v1/artifacts/{MISSING}"), sha)
        assert world.beta_reader.request(method, f"/api/v1/artifacts/{sha}").status_code == 200
    assert world.beta_reader.get(f"/api/v1/artifacts/{sha}").content == data


def test_naming_another_projects_blob_in_a_record_neither_confirms_nor_opens_it(world: World) -> None:
    attacker, run, sha = world.attacker, world.alpha_run, _sha(SECRET)

    def attempts(target: str) -> list[tuple[str, str, dict[str, object]]]:
        record = {"name": "stolen.bin", "sha256": target, "size": len(SECRET), "media_type": "x/y"}
        return [
            ("POST", f"/api/v1/runs/{run}/artifacts", {"artifacts": [record]}),
            ("POST", f"/api/v1/runs/{run}/inputs", {"items": [{"sha256": target, "name": "in"}]}),
            (
                "POST",
                f"/api/v1/runs/{run}/datasets",
                {"name": "d", "fingerprint": "ef" * 16, "profile_sha256": target},
            ),
            ("POST", "/api/v1/models", {"name": "stolen", "project": "alpha"}),
            (
                "POST",
                "/api/v1/models/stolen/versions",
                {"artifact_sha256": target, "flavor": "sklearn", "project": "alpha"},
            ),
        ]

    for (method, path, body), (_, _, missing) in zip(attempts(sha), attempts(MISSING), strict=True):
        response = attacker.request(method, path, json=body)
        if path == "/api/v1/models":
            assert response.status_code == 200
            continue
        assert response.status_code == 400, (path, response.text[:200])
        _same_answer(response, attacker.request(method, path, json=missing), sha)
    assert attacker.get(f"/api/v1/artifacts/{sha}").status_code == 404
    assert attacker.get(f"/api/v1/runs/{run}/artifacts").json() == []
    assert world.admin.get("/api/v1/models/stolen/versions", params={"project": "alpha"}).json() == []


def test_uploads_answer_alike_whether_or_not_the_bytes_were_there(world: World) -> None:
    attacker, sha = world.attacker, _sha(SECRET)
    fresh = b"alpha's own new bytes"
    known = attacker.put(f"/api/v1/artifacts/{sha}", content=b"not the secret")
    unknown = attacker.put(f"/api/v1/artifacts/{_sha(fresh)}", content=b"not the secret")
    assert known.status_code == unknown.status_code == 400  # wrong bytes are refused either way
    assert known.text.replace(sha, "X") == unknown.text.replace(_sha(fresh), "X")
    first, again = attacker.put(f"/api/v1/artifacts/{_sha(fresh)}", content=fresh), None
    again = attacker.put(f"/api/v1/artifacts/{_sha(fresh)}", content=fresh)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert set(first.json()) == {"sha256", "size"}
    # whoever sends the bytes holds them: uploading beta's bytes lets alpha name them too
    assert attacker.put(f"/api/v1/artifacts/{sha}", content=SECRET).json() == {
        "sha256": sha,
        "size": len(SECRET),
    }
    assert attacker.head(f"/api/v1/artifacts/{sha}").status_code == 200
    record = {"name": "mine.bin", "sha256": sha, "size": len(SECRET), "media_type": "x/y"}
    assert (
        attacker.post(f"/api/v1/runs/{world.alpha_run}/artifacts", json={"artifacts": [record]}).status_code
        == 200
    )


def test_an_uploaded_blob_serves_every_reader_of_the_project_that_records_it(world: World) -> None:
    data = b"alpha's shared result"
    alpha_reader = httpx.Client(
        base_url=world.server.url, headers=auth_headers(world.server.make_token("read", "alpha"))
    )
    with alpha_reader:
        assert world.attacker.put(f"/api/v1/artifacts/{_sha(data)}", content=data).status_code == 200
        assert alpha_reader.head(f"/api/v1/artifacts/{_sha(data)}").status_code == 404  # not recorded yet
        record = {"name": "result.bin", "sha256": _sha(data), "size": len(data), "media_type": "x/y"}
        recorded = world.attacker.post(
            f"/api/v1/runs/{world.alpha_run}/artifacts", json={"artifacts": [record]}
        )
        assert recorded.status_code == 200, recorded.text
        assert alpha_reader.get(f"/api/v1/artifacts/{_sha(data)}").content == data
    assert world.beta_reader.get(f"/api/v1/artifacts/{_sha(data)}").status_code == 404


# -- the step cache and step runs belong to their pipeline's project -----------------------------
def _record_step(client: httpx.Client, run_id: str, key: str, output: str) -> None:
    made = client.post(
        "/api/v1/pipeline-runs", json={"run_id": run_id, "pipeline": "p", "params": {}, "graph": {}}
    )
    assert made.status_code == 200, made.text
    step = {
        "node": "fit", "step": "fit", "status": "done", "cache_key": key, "cached": False,
        "inputs": {}, "outputs": {"model": {"sha256": output}},
    }  # fmt: skip
    recorded = client.post(
        f"/api/v1/pipeline-runs/{made.json()['pipeline_run_id']}/steps", json={"steps": [step]}
    )
    assert recorded.status_code == 200, recorded.text


def test_step_cache_and_step_runs_answer_only_the_callers_projects(world: World) -> None:
    key = "k" * 64

    def lookup(client: httpx.Client) -> dict[str, object]:
        response = client.post("/api/v1/step-cache/lookup", json={"cache_keys": [key]})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def step_runs(client: httpx.Client) -> list[str]:
        response = client.get("/api/v1/step-runs", params={"cache_key": key})
        assert response.status_code == 200, response.text
        return [s["outputs"]["model"]["sha256"] for s in response.json()]

    _record_step(world.admin, world.beta_run, key, _sha(SECRET))
    assert lookup(world.beta_reader) == {key: {"model": {"sha256": _sha(SECRET)}}}
    assert lookup(world.attacker) == {} and step_runs(world.attacker) == []
    # alpha writes the same key: alpha sees its own entry, and beta never takes alpha's outputs
    planted = "ab" * 32
    _record_step(world.attacker, world.alpha_run, key, planted)
    assert lookup(world.attacker) == {key: {"model": {"sha256": planted}}}
    assert step_runs(world.attacker) == [planted]
    assert lookup(world.beta_reader) == {}
    assert step_runs(world.beta_reader) == [_sha(SECRET)]
    assert step_runs(world.admin) == [planted, _sha(SECRET)]
    # a caller may narrow the answer to projects (a pipeline asks for its own); never widen it
    for client, projects, expected in (
        (world.admin, ["beta"], {}),
        (world.admin, ["alpha"], {key: {"model": {"sha256": planted}}}),
        (world.beta_reader, ["alpha", "beta"], {}),
    ):
        response = client.post("/api/v1/step-cache/lookup", json={"cache_keys": [key], "projects": projects})
        assert response.json() == expected, (projects, response.text)
    narrowed = world.admin.get("/api/v1/step-runs", params={"cache_key": key, "projects": ["beta"]}).json()
    assert [s["outputs"]["model"]["sha256"] for s in narrowed] == [_sha(SECRET)]


# -- searches answer one way for ids of other projects and ids that do not exist ---------------
def test_searching_another_projects_experiment_reads_as_missing(world: World) -> None:
    def search(experiment_id: str) -> httpx.Response:
        return world.attacker.post("/api/v1/runs/search", json={"experiment_ids": [experiment_id]})

    elsewhere, nowhere = search(world.beta_experiment), search("999999")
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.text.replace(world.beta_experiment, "X") == nowhere.text.replace("999999", "X")
    assert [r["run_id"] for r in search(world.alpha_experiment).json()["runs"]] == [world.alpha_run]


# -- model versions shown beside runs belong to models the viewer may read ---------------------
def test_model_versions_of_a_run_link_to_their_project_and_hide_unreadable_ones(world: World) -> None:
    admin, run = world.admin, world.alpha_run
    for project, model in (("alpha", "alpha-model"), ("beta", "beta-hidden-model")):
        assert admin.post("/api/v1/models", json={"name": model, "project": project}).status_code == 200
        version = {"artifact_sha256": _sha(MODEL), "flavor": "sklearn", "run_id": run, "project": project}
        assert admin.post(f"/api/v1/models/{model}/versions", json=version).status_code == 200
    page = admin.get(f"/ui/runs/{run}").text
    assert "/ui/models/beta-hidden-model/versions/1?project=beta" in page
    assert "/ui/models/alpha-model/versions/1?project=alpha" in page
    seen = world.attacker.get(f"/ui/runs/{run}")
    assert seen.status_code == 200 and "alpha-model" in seen.text and "beta-hidden-model" not in seen.text
    listed = world.attacker.post("/api/v1/model-versions/from-runs", json={"run_ids": [run]}).json()
    assert [(v["name"], v["project"]) for v in listed] == [("alpha-model", "alpha")]
    dataset = {"name": "linked-data", "fingerprint": "12" * 16}
    assert admin.post(f"/api/v1/runs/{run}/datasets", json=dataset).status_code == 200
    shown = world.attacker.get("/ui/datasets/linked-data").text
    assert "/ui/models/alpha-model/versions/1?project=alpha" in shown and "beta-hidden-model" not in shown


# -- a run or experiment id of another project reads as one that does not exist ---------------
PROBES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/api/v1/runs/{run}", None),
    ("GET", "/api/v1/runs/{run}/artifacts", None),
    ("POST", "/api/v1/runs/{run}/params", {"params": {"planted": 1}}),
    ("POST", "/api/v1/pipeline-runs", {"run_id": "{run}", "pipeline": "p", "params": {}, "graph": {}}),
    ("GET", "/api/2.0/mlflow/runs/get?run_id={run}", None),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/runs/{run}/w.bin", None),
    ("GET", "/api/2.0/mlflow/logged-models/m-{run}", None),
    ("GET", "/api/v1/experiments/{experiment}", None),
    ("POST", "/api/v1/runs", {"experiment_id": "{experiment}", "name": "planted"}),
]


def _probe(
    client: httpx.Client, probe: tuple[str, str, dict[str, object] | None], run: str, experiment: str
) -> httpx.Response:
    method, template, body = probe

    def fill(text: str) -> str:
        return text.replace("{run}", run).replace("{experiment}", experiment)

    filled = None if body is None else {k: fill(v) if isinstance(v, str) else v for k, v in body.items()}
    return client.request(method, fill(template), json=filled)


def test_ids_of_another_project_in_paths_and_bodies_read_as_missing(world: World) -> None:
    nowhere_run, nowhere_experiment = "f" * 32, "999999"
    model = world.admin.post("/api/2.0/mlflow/logged-models", json={"experiment_id": world.beta_experiment})
    model_run = model.json()["model"]["info"]["model_id"].removeprefix("m-")
    for probe in PROBES:
        run = model_run if "logged-models" in probe[1] else world.beta_run
        theirs = _probe(world.attacker, probe, run, world.beta_experiment)
        missing = _probe(world.attacker, probe, nowhere_run, nowhere_experiment)
        assert theirs.status_code == missing.status_code == 404, (
            probe,
            theirs.status_code,
            theirs.text[:200],
        )
        masked = theirs.text.replace(run, "R").replace(world.beta_experiment, "E")
        assert masked == missing.text.replace(nowhere_run, "R").replace(nowhere_experiment, "E")
    assert world.admin.get(f"/api/v1/runs/{world.beta_run}").json()["params"] == {}
    # the UI answers both with its error page
    page, missing_page = (
        world.attacker.get(f"/ui/runs/{world.beta_run}"),
        world.attacker.get(f"/ui/runs/{nowhere_run}"),
    )
    assert page.status_code == missing_page.status_code == 404 and "Not found" in page.text
    assert page.text.replace(world.beta_run, "R") == missing_page.text.replace(nowhere_run, "R")
    # a probe that would change something is still audited, with the reason
    entries = world.admin.get("/api/v1/admin/audit", params={"limit": 500}).json()
    probes = [e for e in entries if world.beta_run in e["target"] and e["actor"] != "admin"]
    assert probes and all("may not read" in json.loads(e["detail"]).get("reason", "") for e in probes)
    # a reader of beta may see the run exists: without the write scope, the answer is a 403
    refused = world.beta_reader.post(f"/api/v1/runs/{world.beta_run}/params", json={"params": {"a": 1}})
    assert refused.status_code == 403


def test_pipeline_runs_and_run_comments_of_another_project_read_as_missing(world: World) -> None:
    carrier = world.admin.post("/api/v1/runs", json={"experiment_id": world.beta_experiment, "name": "p"})
    beta_run = carrier.json()["run_id"]
    made = world.admin.post(
        "/api/v1/pipeline-runs", json={"run_id": beta_run, "pipeline": "p", "params": {}, "graph": {}}
    )
    theirs, nowhere = str(made.json()["pipeline_run_id"]), "999999"
    for template in ("/api/v1/pipeline-runs/{id}", "/ui/pipelines/{id}"):
        elsewhere = world.attacker.get(template.replace("{id}", theirs))
        missing = world.attacker.get(template.replace("{id}", nowhere))
        assert elsewhere.status_code == missing.status_code == 404, (template, elsewhere.text[:200])
        masked = elsewhere.text.replace(f"pipeline run {theirs}", "X").replace(f"/{theirs}", "/N")
        assert masked == missing.text.replace(f"pipeline run {nowhere}", "X").replace(f"/{nowhere}", "/N")
        assert beta_run not in elsewhere.text
    params = {"target_type": "run", "target_id": beta_run}
    elsewhere = world.attacker.get("/api/v1/comments", params=params)
    missing = world.attacker.get("/api/v1/comments", params={**params, "target_id": "f" * 32})
    assert elsewhere.status_code == missing.status_code == 404
    assert elsewhere.text.replace(beta_run, "R") == missing.text.replace("f" * 32, "R")
    assert world.beta_reader.get("/api/v1/comments", params=params).status_code == 200
