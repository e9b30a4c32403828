"""Cross-project isolation of keel server, attacked over HTTP: a token of project ``alpha`` must
never read, write or learn about project ``beta`` through any route, native or MLflow, whatever the
request's shape (query and path disagreeing, JSON sent with an unusual Content-Type, ids of the
other project inside a body). Runs on SQLite and, with KEEL_TEST_POSTGRES_URL, on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keel.server.testing import LiveServer
from tests.conftest import _postgres_schema_url
from tests.server.conftest import auth_headers

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = b"beta's secret weights"


@dataclass
class World:
    server: LiveServer
    admin: httpx.Client
    #: write and promote on alpha, nothing on beta
    attacker: httpx.Client
    alpha_experiment: str
    alpha_run: str
    beta_experiment: str
    beta_run: str
    sha: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    schemas = _postgres_schema_url() if request.param == "postgres" else None
    store_url = next(schemas) if schemas is not None else None
    try:
        with LiveServer(tmp_path_factory.mktemp("isolation"), store_url=store_url) as server:
            admin = httpx.Client(base_url=server.url, headers=auth_headers(server.token), timeout=30)
            attacker = httpx.Client(
                base_url=server.url, headers=auth_headers(server.make_token("promote", "alpha")), timeout=30
            )
            ids = {}
            for project in ("alpha", "beta"):
                made = admin.post("/api/v1/experiments", json={"name": "e", "project": project})
                experiment = made.json()["experiment_id"]
                run = admin.post("/api/v1/runs", json={"experiment_id": experiment, "name": "r"})
                ids[project] = (experiment, run.json()["run_id"])
            sha = hashlib.sha256(SECRET).hexdigest()
            assert admin.put(f"/api/v1/artifacts/{sha}", content=SECRET).status_code == 200
            for project in ("alpha", "beta"):
                assert admin.post("/api/v1/models", json={"name": "m", "project": project}).status_code == 200
                version = {"artifact_sha256": sha, "flavor": "sklearn", "project": project}
                assert admin.post("/api/v1/models/m/versions", json=version).status_code == 200
                alias = {"version": 1, "project": project}
                assert admin.put("/api/v1/models/m/aliases/champion", json=alias).status_code == 200
            uploaded = admin.put(f"{ARTIFACTS}/runs/{ids['beta'][1]}/model/weights.bin", content=SECRET)
            assert uploaded.status_code == 200, uploaded.text
            yield World(server, admin, attacker, *ids["alpha"], *ids["beta"], sha)
            admin.close()
            attacker.close()
    finally:
        if schemas is not None:
            next(schemas, None)


def _refused(response: httpx.Response) -> None:
    assert response.status_code in (400, 403, 404, 415), (response.status_code, response.text[:300])


# -- the artifact proxy authorises the run it serves --------------------------------------------
def test_artifact_routes_authorise_the_run_in_the_path_not_the_query(world: World) -> None:
    attacker, mine, theirs = world.attacker, world.alpha_run, world.beta_run
    smuggle = {"run_id": mine}
    _refused(attacker.get(f"{ARTIFACTS}/runs/{theirs}/model/weights.bin", params=smuggle))
    _refused(attacker.get(f"{ARTIFACTS}/runs/{theirs}/model/weights.bin", params={"run_uuid": mine}))
    _refused(attacker.get(ARTIFACTS, params={"path": f"runs/{theirs}/model", **smuggle}))
    _refused(attacker.put(f"{ARTIFACTS}/runs/{theirs}/model/weights.bin", params=smuggle, content=b"evil"))
    _refused(attacker.get(f"{API}/artifacts/list", params=[("run_id", mine), ("run_id", theirs)]))
    _refused(attacker.get(f"{API}/artifacts/list", params={"run_id": theirs, "path": "model"}))
    # the bytes are still beta's own, and alpha's own run still works
    served = world.admin.get(f"{ARTIFACTS}/runs/{theirs}/model/weights.bin")
    assert served.status_code == 200 and served.content == SECRET
    assert attacker.put(f"{ARTIFACTS}/runs/{mine}/a.txt", content=b"mine").status_code == 200
    assert attacker.get(f"{ARTIFACTS}/runs/{mine}/a.txt").content == b"mine"


# -- the policy reads every JSON body the route reads -------------------------------------------
JSON_TYPES = ["application/JSON", "Application/Json; charset=utf-8", "application/vnd.keel+json", ""]


@pytest.mark.parametrize("content_type", JSON_TYPES)
def test_json_bodies_are_read_by_the_policy_whatever_the_media_type_spelling(
    world: World, content_type: str
) -> None:
    attacker = world.attacker

    def post(method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return attacker.request(method, path, content=json.dumps(body).encode(), headers=headers)

    _refused(post("POST", "/api/v1/experiments", {"name": "planted", "project": "beta"}))
    _refused(post("POST", "/api/v1/runs", {"experiment_id": world.beta_experiment, "name": "planted"}))
    version = {"artifact_sha256": world.sha, "flavor": "sklearn", "project": "beta"}
    _refused(post("POST", "/api/v1/models/m/versions", version))
    _refused(post("PUT", "/api/v1/models/m/aliases/champion", {"version": 2, "project": "beta"}))
    _refused(post("POST", f"{API}/runs/create", {"experiment_id": world.beta_experiment}))
    if content_type:  # the same request in alpha is served: the media type was understood
        made = post("POST", "/api/v1/experiments", {"name": f"ok{content_type}", "project": "alpha"})
        assert made.status_code == 200, made.text
    _assert_beta_untouched(world)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json-seq", "json"]
)
def test_bodies_the_policy_cannot_read_are_refused(world: World, content_type: str) -> None:
    body = json.dumps({"name": "planted", "project": "beta"}).encode()
    for path in ("/api/v1/experiments", f"{API}/runs/create", f"{API}/experiments/create"):
        response = world.attacker.post(path, content=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
    _assert_beta_untouched(world)


def test_invalid_json_is_refused_whatever_the_media_type_spelling(world: World) -> None:
    response = world.attacker.post(
        "/api/v1/experiments", content=b"{bad", headers={"Content-Type": "APPLICATION/JSON"}
    )
    assert response.status_code == 400


def _assert_beta_untouched(world: World) -> None:
    names = [e["name"] for e in world.admin.get("/api/v1/experiments", params={"project": "beta"}).json()]
    assert names == ["e"]
    runs = world.admin.post("/api/v1/runs/search", json={"experiment_ids": [world.beta_experiment]})
    assert [r["run_id"] for r in runs.json()["runs"]] == [world.beta_run]
    versions = world.admin.get("/api/v1/models/m/versions", params={"project": "beta"}).json()
    assert len(versions) == 1
    alias = world.admin.get("/api/v1/models/m/aliases/champion", params={"project": "beta"}).json()
    assert alias["version"] == 1


# -- artifact bytes are never active content on the server's origin -----------------------------
ACTIVE = {
    "report.html": b"<html><script>fetch('/api/v1/admin/tokens')</script></html>",
    "plot.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "feed.xml": b'<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
}


def _assert_download(response: httpx.Response, filename: str) -> None:
    assert response.status_code == 200, response.text[:200]
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f'filename="{filename}"' in disposition
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox") and "default-src 'none'" in policy


def test_artifact_downloads_are_sandboxed_attachments(world: World) -> None:
    admin, run = world.admin, world.alpha_run
    for name, content in ACTIVE.items():
        assert admin.put(f"{ARTIFACTS}/runs/{run}/x/{name}", content=content).status_code == 200
        _assert_download(admin.get(f"{ARTIFACTS}/runs/{run}/x/{name}"), name)
        sha = hashlib.sha256(content).hexdigest()
        _assert_download(admin.get(f"/api/v1/artifacts/{sha}"), sha)
        # the UI's own download link too; its inline preview stays sandboxed
        _assert_download(admin.get(f"/ui/runs/{run}/raw/x/{name}", params={"download": 1}), name)
        shown = admin.get(f"/ui/runs/{run}/raw/x/{name}")
        assert shown.headers["content-security-policy"].startswith("sandbox")
        assert shown.headers["x-content-type-options"] == "nosniff"
    # a name with spaces and commas becomes a plain file name in the header
    assert admin.put(f"{ARTIFACTS}/runs/{run}/my report,v2.html", content=b"<p>").status_code == 200
    response = admin.get(f"{ARTIFACTS}/runs/{run}/my report,v2.html")
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"my_report_v2.html\"; filename*=UTF-8''my%20report%2Cv2.html"
    )


# -- ids of another project inside a body -------------------------------------------------------
def test_log_batch_refuses_another_projects_logged_model(world: World) -> None:
    beta_model = world.admin.post(f"{API}/logged-models", json={"experiment_id": world.beta_experiment})
    model_id = beta_model.json()["model"]["info"]["model_id"]
    point = {"key": "planted", "value": 1.0, "timestamp": 1, "step": 0}
    for path, body in (
        ("runs/log-batch", {"run_id": world.alpha_run, "metrics": [{**point, "model_id": model_id}]}),
        ("runs/log-metric", {"run_id": world.alpha_run, **point, "model_id": model_id}),
    ):
        refused = world.attacker.post(f"{API}/{path}", json=body)
        assert refused.status_code == 404, refused.text
        unknown = world.attacker.post(f"{API}/{path}", json={**body, "model_id": "m-" + "0" * 32})
        if path == "runs/log-batch":
            unknown = world.attacker.post(
                f"{API}/{path}", json={**body, "metrics": [{**point, "model_id": "m-" + "0" * 32}]}
            )
        assert unknown.status_code == 404  # the same answer as for a model that does not exist
        assert refused.json()["message"].replace(model_id, "X") == unknown.json()["message"].replace(
            "m-" + "0" * 32, "X"
        )
    got = world.admin.get(f"{API}/logged-models/{model_id}").json()["model"]
    assert got["data"]["metrics"] == []
    history = world.admin.get(
        f"{API}/metrics/get-history", params={"run_id": world.alpha_run, "metric_key": "planted"}
    )
    assert history.json()["metrics"] == []  # refused before anything was written
    # alpha's own logged model takes linked points
    mine = world.attacker.post(f"{API}/logged-models", json={"experiment_id": world.alpha_experiment})
    own = mine.json()["model"]["info"]["model_id"]
    body = {"run_id": world.alpha_run, "metrics": [{**point, "model_id": own}]}
    assert world.attacker.post(f"{API}/runs/log-batch", json=body).status_code == 200


def test_a_parent_run_of_another_project_reads_as_missing(world: World) -> None:
    def create(client: httpx.Client, parent: str) -> httpx.Response:
        body = {"experiment_id": world.alpha_experiment, "name": "child", "parent_run_id": parent}
        return client.post("/api/v1/runs", json=body)

    elsewhere, nowhere = create(world.attacker, world.beta_run), create(world.attacker, "f" * 32)
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.json()["message"].replace(world.beta_run, "X") == nowhere.json()["message"].replace(
        "f" * 32, "X"
    )
    # even an admin who reads both projects may not nest runs across them
    assert create(world.admin, world.beta_run).status_code == 404
    assert create(world.attacker, world.alpha_run).status_code == 200
    mlflow = world.attacker.post(
        f"{API}/runs/create",
        json={
            "experiment_id": world.alpha_experiment,
            "tags": [{"key": "mlflow.parentRunId", "value": world.beta_run}],
        },
    )
    assert mlflow.status_code == 404


def test_the_dataset_page_lists_only_the_viewers_models(world: World) -> None:
    dataset = {"name": "shared-data", "fingerprint": "ab" * 16}
    for run in (world.alpha_run, world.beta_run):
        assert world.admin.post(f"/api/v1/runs/{run}/datasets", json=dataset).status_code == 200
    for project, run in (("alpha", world.alpha_run), ("beta", world.beta_run)):
        model = f"{project}-secret-model"
        assert world.admin.post("/api/v1/models", json={"name": model, "project": project}).status_code == 200
        version = {"artifact_sha256": world.sha, "flavor": "sklearn", "run_id": run, "project": project}
        assert world.admin.post(f"/api/v1/models/{model}/versions", json=version).status_code == 200
    assert "beta-secret-model" in world.admin.get("/ui/datasets/shared-data").text
    page = world.attacker.get("/ui/datasets/shared-data")
    assert page.status_code == 200
    assert "alpha-secret-model" in page.text and "beta-secret-model" not in page.text


def test_model_version_comments_belong_to_their_projects_model(world: World) -> None:
    admin, attacker = world.admin, world.attacker
    if admin.get("/api/v1/models/m").status_code == 404:  # a model "m" in the project default too
        assert admin.post("/api/v1/models", json={"name": "m"}).status_code == 200
        version = {"artifact_sha256": world.sha, "flavor": "sklearn"}
        assert admin.post("/api/v1/models/m/versions", json=version).status_code == 200
    secret = {"target_type": "model_version", "target_id": "m/1", "body": "beta: ship on friday"}
    assert admin.post("/api/v1/comments", json={**secret, "project": "beta"}).status_code == 200
    planted = {"target_type": "model_version", "target_id": "m/1", "body": "alpha was here"}
    assert attacker.post("/api/v1/comments", json={**planted, "project": "alpha"}).status_code == 200

    def bodies(client: httpx.Client, project: str) -> list[str]:
        params = {"target_type": "model_version", "target_id": "m/1", "project": project}
        response = client.get("/api/v1/comments", params=params)
        assert response.status_code == 200, response.text
        return [c["body"] for c in response.json()]

    assert bodies(attacker, "alpha") == ["alpha was here"]
    assert bodies(admin, "beta") == ["beta: ship on friday"]
    assert bodies(admin, "default") == []
    # the UI's version page and its comment form are keyed the same way
    page = attacker.get("/ui/models/m/versions/1", params={"project": "alpha"})
    assert page.status_code == 200 and "alpha was here" in page.text and "ship on friday" not in page.text
    posted = attacker.post(
        "/ui/models/m/versions/1/comments", params={"project": "alpha"}, data={"body": "second"}
    )
    assert posted.status_code in (200, 303), posted.text[:200]
    assert bodies(admin, "beta") == ["beta: ship on friday"]
    assert bodies(attacker, "alpha") == ["alpha was here", "second"]


# -- one naming rule and one set of limits on every route ---------------------------------------
def _invalid(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    for word in words:
        assert word in body["message"], body["message"][:300]


def test_names_follow_one_rule_on_native_and_mlflow_routes(world: World) -> None:
    admin = world.admin
    long = "x" * 200_000
    _invalid(admin.post(f"{API}/experiments/create", json={"name": long}), "limit is 256")
    _invalid(admin.post("/api/v1/experiments", json={"name": long}), "256")
    _invalid(admin.post(f"{API}/experiments/create", json={"name": 123}), "must be a string")
    _invalid(admin.post(f"{API}/registered-models/create", json={"name": ["a"]}), "must be a string")
    assert admin.post(f"{API}/registered-models/create", json={"name": "prod model"}).status_code == 200
    for route, body in (
        (f"{API}/registered-models/create", {"name": "prod%20model"}),
        ("/api/v1/models", {"name": "prod%20model"}),
        (f"{API}/registered-models/rename", {"name": "prod model", "new_name": "prod%20model"}),
        (f"{API}/experiments/create", {"name": "exp\u202egnp.exe"}),
        ("/api/v1/experiments", {"name": " padded "}),
        (f"{API}/runs/create", {"experiment_id": world.alpha_experiment, "run_name": "a\nb"}),
        (f"{API}/runs/create", {"experiment_id": world.alpha_experiment, "run_name": "r" * 300}),
        ("/api/v1/runs", {"experiment_id": world.alpha_experiment, "name": "a%2Fb"}),
    ):
        _invalid(admin.post(route, json=body), "invalid")
    eid = admin.post(f"{API}/experiments/create", json={"name": "/Users/ann/churn v1.2"}).json()
    renamed = {"experiment_id": eid["experiment_id"], "new_name": "x" * 257}
    _invalid(admin.post(f"{API}/experiments/update", json=renamed), "keel.limits.MAX_NAME_LENGTH")
    names = {m["name"] for m in admin.get("/api/v1/models").json()}
    assert "prod model" in names and "prod%20model" not in names
    # names MLflow users write keep working
    for name in ("/Users/ann/churn", "churn model (v2)", "team:exp.1-b"):
        assert admin.post(f"{API}/experiments/create", json={"name": name}).status_code == 200


def test_a_model_version_from_an_unreadable_run_reads_as_missing(world: World) -> None:
    def register(run_id: str) -> httpx.Response:
        body = {"artifact_sha256": world.sha, "flavor": "sklearn", "run_id": run_id, "project": "alpha"}
        return world.attacker.post("/api/v1/models/m/versions", json=body)

    elsewhere, nowhere = register(world.beta_run), register("f" * 32)
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.json()["message"].replace(world.beta_run, "X") == nowhere.json()["message"].replace(
        "f" * 32, "X"
    )
    assert register(world.alpha_run).status_code == 200


@pytest.mark.parametrize("project", ["", 5, ["beta"], None])
def test_a_project_the_policy_cannot_read_is_refused_not_defaulted(world: World, project: Any) -> None:
    writer = httpx.Client(
        base_url=world.server.url, headers=auth_headers(world.server.make_token("write", "default"))
    )
    with writer:
        response = writer.post("/api/v1/experiments", json={"name": f"p{project!r}", "project": project})
        assert response.status_code == 400, response.text
    projects = {e["project"] for e in world.admin.get("/api/v1/experiments").json()}
    assert projects <= {"alpha", "beta", "default"}


# -- the project a route acts on is the one its policy checked ----------------------------------
def test_a_project_named_outside_the_body_is_the_project_acted_on(world: World) -> None:
    """``?project=alpha`` with a body naming no project (or a DELETE body naming one) was checked on
    alpha while the route used the body's or the query's default, ``default``: a promoter of alpha
    moved and deleted the aliases of ``default``'s models and wrote into ``default``."""
    admin, attacker = world.admin, world.attacker
    if admin.get("/api/v1/models/m").status_code == 404:
        assert admin.post("/api/v1/models", json={"name": "m"}).status_code == 200
    version = {"artifact_sha256": world.sha, "flavor": "sklearn"}
    while len(admin.get("/api/v1/models/m/versions").json()) < 2:
        assert admin.post("/api/v1/models/m/versions", json=version).status_code == 200
    assert admin.put("/api/v1/models/m/aliases/prod", json={"version": 2}).status_code == 200

    def comments() -> list[str]:
        params = {"target_type": "model_version", "target_id": "m/1"}
        return [c["body"] for c in admin.get("/api/v1/comments", params=params).json()]

    before = comments()
    alpha = {"project": "alpha"}
    attacker.put("/api/v1/models/m/aliases/prod", params=alpha, json={"version": 1})
    attacker.request("DELETE", "/api/v1/models/m/aliases/prod", json=alpha)
    attacker.post("/api/v1/experiments", params=alpha, json={"name": "planted-q"})
    attacker.post("/api/v1/models", params=alpha, json={"name": "planted-q"})
    attacker.post("/api/v1/models/m/versions", params=alpha, json=version)
    attacker.put("/api/v1/models/m/versions/1/tags", params=alpha, json={"tags": {"planted": "1"}})
    planted = {"target_type": "model_version", "target_id": "m/1", "body": "planted-q"}
    attacker.post("/api/v1/comments", params=alpha, json=planted)
    attacker.post("/ui/models/m/versions/1/comments", data={"project": "alpha", "body": "planted-q"})

    assert admin.get("/api/v1/models/m/aliases/prod").json()["version"] == 2
    assert len(admin.get("/api/v1/models/m/versions").json()) == 2
    assert "planted" not in admin.get("/api/v1/models/m/versions/1").json()["tags"]
    assert comments() == before
    experiments = admin.get("/api/v1/experiments", params={"project": "default"}).json()
    assert "planted-q" not in {e["name"] for e in experiments}
    assert admin.get("/api/v1/models/planted-q").status_code == 404
    # the same requests act on alpha, the project that was checked
    assert admin.get("/api/v1/models/planted-q", params=alpha).status_code == 200


def test_an_mlflow_run_without_an_experiment_is_checked_on_the_default_project(world: World) -> None:
    """MLflow's ``runs/create`` without an ``experiment_id`` (or with ``""``) logs to the
    ``Default`` experiment of ``default``, but the policy checked "some project"."""

    def default_runs() -> int:
        found = world.admin.post(f"{API}/runs/search", json={"experiment_ids": ["0"]})
        return len(found.json().get("runs", []))

    before = default_runs()
    for body in ({}, {"experiment_id": ""}, {"experiment_id": None}):
        _refused(world.attacker.post(f"{API}/runs/create", json=body))
    assert default_runs() == before
    assert world.admin.post(f"{API}/runs/create", json={}).status_code == 200


def test_a_run_id_sent_as_a_json_number_is_checked(world: World) -> None:
    """A run id of decimal digits sent as a JSON number was "no run" to the policy (some project
    will do) and the run's id to MLflow's routes, which read numbers as their digits."""
    digits = "12345678901234567890123456789012"
    made = world.admin.post(
        "/api/v1/runs", json={"experiment_id": world.beta_experiment, "name": "digits", "run_id": digits}
    )
    assert made.status_code == 200, made.text
    tag = {"run_id": int(digits), "key": "planted", "value": "1"}
    _refused(world.attacker.post(f"{API}/runs/set-tag", json=tag))
    _refused(world.attacker.post(f"{API}/runs/delete", json={"run_id": int(digits)}))
    run = world.admin.get(f"/api/v1/runs/{digits}").json()
    assert "planted" not in run["tags"] and run["lifecycle_stage"] == "active"


def test_aliases_and_dataset_names_follow_the_stored_name_rule(world: World) -> None:
    """Aliases and dataset names had no rule: a 100,000-character alias was stored on SQLite (a
    500 on PostgreSQL's 128-character column), NUL, newlines and bidirectional overrides reached
    the pages and the CLI, and a NUL in a dataset name was a 500 on PostgreSQL."""
    admin = world.admin
    assert admin.post("/api/v1/models", json={"name": "aliased"}).status_code == 200
    version = {"artifact_sha256": world.sha, "flavor": "sklearn"}
    assert admin.post("/api/v1/models/aliased/versions", json=version).status_code == 200
    for alias in ("x" * 100_000, "a\nb", "a\x00b", "\u202eprod", " champion ", ""):
        body = {"name": "aliased", "alias": alias, "version": "1"}
        response = admin.post(f"{API}/registered-models/alias", json=body)
        assert response.status_code == 400, (alias[:20], response.status_code, response.text[:200])
    _invalid(admin.put("/api/v1/models/aliased/aliases/" + "y" * 129, json={"version": 1}), "128")
    assert admin.put("/api/v1/models/aliased/aliases/" + "y" * 128, json={"version": 1}).status_code == 200
    assert set(admin.get("/api/v1/models/aliased").json()["aliases"]) == {"y" * 128}

    fingerprint = "cd" * 16
    for name in ("a\x00b", "a\nb", "\u202eevil.csv", " padded.csv", "x" * 300):
        dataset = {"name": name, "fingerprint": fingerprint}
        response = admin.post(f"/api/v1/runs/{world.alpha_run}/datasets", json=dataset)
        assert response.status_code == 400, (name[:20], response.status_code, response.text[:200])
        mlflow = {"dataset": {"name": name, "digest": "d", "source_type": "local", "source": "s"}}
        response = admin.post(
            f"{API}/runs/log-inputs", json={"run_id": world.alpha_run, "datasets": [mlflow]}
        )
        assert response.status_code == 400, (name[:20], response.status_code, response.text[:200])
    # a file fetched from a URL keeps its escapes, and is still a dataset name
    dataset = {"name": "report%20q1.csv", "fingerprint": fingerprint}
    assert admin.post(f"/api/v1/runs/{world.alpha_run}/datasets", json=dataset).status_code == 200
