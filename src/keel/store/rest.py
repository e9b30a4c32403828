"""``RestStore``: the ``Store`` protocol over HTTP, talking to ``keel server``'s native API.

``open_store("http://host:5055")`` (or ``KEEL_TRACKING_URI=http://...``) returns one. A token goes
in the URL's password, like a database password: ``http://:keel_abc..._secret@host:5055`` (the
user name part is ignored); it is sent as ``Authorization: Bearer`` and never appears in
``store.url``.

Every call is retried with exponential backoff when the server cannot be reached or answers 429,
502, 503 or 504; calls that change something are retried only when they are safe to repeat
(metric batches carry ids the server deduplicates, runs get their id from the client). When the
retries run out the call raises :class:`~keel.errors.StoreError`, which the background metric
writer treats as "try later": logged points wait in the local spool, and the training script goes
on. The server's errors come back as the same keel errors the SQL store raises.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from keel import entities as e
from keel import errors, limits
from keel.hashing import check_sha256
from keel.ids import new_id
from keel.store.metrics import Chunk
from keel.store.wire import chunk_to_json, history_from_json, record_from_json, to_json

__all__ = ["RestStore", "split_url"]

_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def split_url(url: str) -> tuple[str, str | None]:
    """(URL without credentials and trailing slash, token from the URL's password or None)."""
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.unquote(parts.password) if parts.password else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, token


def _error(response: Any) -> errors.KeelError:
    """The keel error a server's error response stands for."""
    try:
        body = response.json()
        detail = body.get("error") or {}
        message = str(detail.get("message") or body.get("message") or response.text)
        kind = str(detail.get("type", ""))
    except (ValueError, AttributeError):
        detail, message, kind = {}, response.text[:2000], ""
    status = response.status_code
    if kind == "LimitExceededError" or (status == 413 and "limit" in detail):
        return errors.LimitExceededError(
            message, limit=int(detail.get("limit", 0)), actual=int(detail.get("actual", 0)),
            what=str(detail.get("what", "")),
        )  # fmt: skip
    if kind == "ParamConflictError":
        exc = errors.ParamConflictError("x", key=detail.get("key", ""), old=detail.get("old", ""),
                                        new=detail.get("new", ""))  # fmt: skip
        exc.args = (message,)
        return exc
    if kind == "ArtifactCorruptedError":
        return errors.ArtifactCorruptedError(
            message, expected=str(detail.get("expected", "")), actual=str(detail.get("actual", ""))
        )
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.KeelError) and kind not in {
        "NameRuleError", "FilterSyntaxError", "MissingDependencyError",
    }:  # fmt: skip
        return cls(message)
    if kind == "FilterSyntaxError":
        return errors.FilterSyntaxError(message)
    if status == 401:
        # a keel client is configured, not coded: name the setting (older servers name only the header)
        return errors.StoreError(
            f"keel server refused the request (401): {message}. keel sends the token set in "
            "KEEL_TRACKING_TOKEN (or the tracking URI's password: http://:TOKEN@host:port)"
        )
    if status == 403:
        hint = ""
        if "on project" in message and "KEEL_PROJECT" not in message:  # an older server
            hint = ". keel asks for the project set in KEEL_PROJECT (default 'default')"
        return errors.StoreError(f"keel server refused the request ({status}): {message}{hint}")
    if status == 404:
        return errors.NotFoundError(message)
    if status == 409:
        return errors.ConflictError(message)
    if 400 <= status < 500:
        return errors.InvalidInputError(message)
    return errors.StoreError(f"keel server failed ({status}): {message}")


class RestStore:
    """The ``Store`` protocol over keel server's ``/api/v1``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 6,
        backoff: float = 0.1,
    ):
        import httpx

        self.url, url_token = split_url(url)
        self.token = url_token or token
        self.retries = retries
        self.backoff = backoff
        self._local = threading.local()
        headers = {"User-Agent": "keel-rest-store"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    def __repr__(self) -> str:
        return f"RestStore({self.url!r})"

    def close(self) -> None:
        self._http.close()

    @contextlib.contextmanager
    def single_try(self) -> Iterator[None]:
        """Calls from this thread inside the block try once (connection failures twice) and raise
        :class:`~keel.errors.StoreUnavailableError` at once: for callers with a retry schedule of
        their own, like the background writer, which should not sit out six backoffs per attempt."""
        self._local.retries = 1
        try:
            yield
        finally:
            self._local.retries = None

    # -- transport -----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request with retries; return the response (2xx) or raise the keel error."""
        import httpx

        send_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(body, allow_nan=True, separators=(",", ":"))
            send_headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        last: str = ""
        retries = getattr(self._local, "retries", None)
        for attempt in range((self.retries if retries is None else retries) + 1):
            if attempt:
                time.sleep(min(5.0, self.backoff * 2 ** (attempt - 1)))
            try:
                response = self._http.request(
                    method, path, content=content, params=query, headers=send_headers
                )
            except httpx.ConnectError as exc:  # nothing was sent: always safe to retry
                last = f"cannot connect: {exc}"
                continue
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if not idempotent:
                    raise errors.StoreUnavailableError(
                        f"keel server {self.url} did not answer ({exc}); the change may or may not "
                        "have been made"
                    ) from exc
                last = str(exc) or type(exc).__name__
                continue
            if response.status_code in _RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise errors.StoreUnavailableError(
            f"keel server {self.url} is unreachable ({last}) after {attempt + 1} tries; "
            "check that `keel server` runs there. Logged metrics wait in the local spool."
        )

    @contextlib.contextmanager
    def stream(self, method: str, path: str) -> Iterator[Any]:
        """One request whose body is read as it arrives (artifact downloads), tried once: a
        retry could not replay what the caller already consumed. An error status raises the keel
        error it stands for."""
        with self._http.stream(method, path) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return json.loads(response.content) if response.content else None

    @staticmethod
    def _q(value: str) -> str:
        return urllib.parse.quote(str(value), safe="")

    # -- experiments -----------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> e.Experiment:
        body = {"name": name, "project": project, "description": description,
                "tags": dict(tags) if tags else None}  # fmt: skip
        return record_from_json(e.Experiment, self._json("POST", "/experiments", body=body, idempotent=False))

    def get_experiment(self, experiment_id: str) -> e.Experiment:
        if not str(experiment_id).isdigit():
            raise errors.NotFoundError(f"no experiment with id {experiment_id!r}")
        return record_from_json(e.Experiment, self._json("GET", f"/experiments/{self._q(experiment_id)}"))

    def get_experiment_by_name(self, name: str, *, project: str = "default") -> e.Experiment | None:
        found = self._json("GET", "/experiments/by-name", params={"name": name, "project": project})
        return None if found is None else record_from_json(e.Experiment, found)

    def list_experiments(
        self, *, project: str | None = None, include_deleted: bool = False
    ) -> list[e.Experiment]:
        found = self._json(
            "GET", "/experiments", params={"project": project, "include_deleted": include_deleted}
        )
        return [record_from_json(e.Experiment, x) for x in found]

    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> None:
        self._checked_lifecycle(lifecycle)
        self.request("PUT", f"/experiments/{self._q(experiment_id)}/lifecycle", body={"lifecycle": lifecycle})

    def count_runs(self, experiment_id: str) -> int:
        return int(self._json("GET", f"/experiments/{self._q(experiment_id)}/run-count")["count"])

    @staticmethod
    def _checked_lifecycle(lifecycle: str) -> None:
        if lifecycle not in ("active", "deleted"):
            raise errors.InvalidInputError(f"lifecycle must be 'active' or 'deleted', not {lifecycle!r}")

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        name: str,
        *,
        user: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        start_time: int | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        entry_point: str | None = None,
        parent_run_id: str | None = None,
        heartbeat_interval: float | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> e.Run:
        chosen = run_id or new_id()  # the client picks the id, so a retried create is harmless
        body = {
            "experiment_id": str(experiment_id), "name": name, "user": user, "host": host, "pid": pid,
            "start_time": start_time, "git_commit": git_commit, "git_dirty": git_dirty,
            "entry_point": entry_point, "parent_run_id": parent_run_id,
            "heartbeat_interval": heartbeat_interval, "tags": dict(tags) if tags else None,
            "run_id": chosen,
        }  # fmt: skip
        try:
            return record_from_json(e.Run, self._json("POST", "/runs", body=body))
        except errors.ConflictError:
            if run_id is not None:
                raise
            return self.get_run(chosen)  # an earlier try went through

    def get_run(self, run_id: str) -> e.Run:
        return record_from_json(e.Run, self._json("GET", f"/runs/{self._q(run_id)}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: e.RunStatus | str | None = None,
        end_time: int | None = None,
        traceback: str | None = None,
        name: str | None = None,
        cost_usd: float | None = None,
        cost_detail: Mapping[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        for key, value in (
            ("status", None if status is None else str(e.RunStatus(status))), ("end_time", end_time),
            ("traceback", traceback), ("name", name), ("cost_usd", cost_usd),
            ("cost_detail", None if cost_detail is None else dict(cost_detail)),
        ):  # fmt: skip
            if value is not None:
                body[key] = value
        self.request("PATCH", f"/runs/{self._q(run_id)}", body=body)

    def delete_run_permanently(self, run_id: str) -> None:
        self.request("DELETE", f"/runs/{self._q(run_id)}")

    def set_run_lifecycle(self, run_id: str, lifecycle: str) -> None:
        self._checked_lifecycle(lifecycle)
        self.request("PUT", f"/runs/{self._q(run_id)}/lifecycle", body={"lifecycle": lifecycle})

    def heartbeat(self, run_id: str) -> None:
        self.request("POST", f"/runs/{self._q(run_id)}/heartbeat")

    def mark_crashed_runs(self) -> list[str]:
        return list(self._json("POST", "/runs/mark-crashed"))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        # the server takes MAX_PARAMS_PER_REQUEST a request; params are immutable, so a
        # repeated part (after a retry) changes nothing
        for part in _parts(params, limits.MAX_PARAMS_PER_REQUEST):
            self.request("POST", f"/runs/{self._q(run_id)}/params", body={"params": part})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        for part in _parts(tags, limits.MAX_TAGS_PER_REQUEST):
            self.request("POST", f"/runs/{self._q(run_id)}/tags", body={"tags": part})

    def delete_tag(self, run_id: str, key: str) -> None:
        self.request("DELETE", f"/runs/{self._q(run_id)}/tags", params={"key": key})

    # -- metrics -------------------------------------------------------------------------------
    def write_metric_batch(self, batch_id: str, run_id: str, chunks: Sequence[Chunk]) -> bool:
        body = {"batch_id": batch_id, "chunks": [chunk_to_json(c) for c in chunks]}
        return bool(self._json("POST", f"/runs/{self._q(run_id)}/metrics/batches", body=body)["written"])

    def list_metric_keys(self, run_id: str) -> list[str]:
        return list(self._json("GET", f"/runs/{self._q(run_id)}/metrics"))

    def get_metric_history(self, run_id: str, key: str, *, max_points: int | None = None) -> e.MetricHistory:
        if max_points is not None and max_points <= 0:
            raise ValueError("max_points must be positive")
        params = {"key": key, "max_points": max_points, "encoding": "base64"}
        return history_from_json(self._json("GET", f"/runs/{self._q(run_id)}/metrics/history", params=params))

    # -- search --------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> e.RunPage:
        body = {
            "experiment_ids": None if experiment_ids is None else [str(x) for x in experiment_ids],
            "filter_string": filter_string, "order_by": None if order_by is None else list(order_by),
            "max_results": max_results, "page_token": page_token, "include_deleted": include_deleted,
        }  # fmt: skip
        found = self._json("POST", "/runs/search", body=body)
        page = e.RunPage(record_from_json(e.Run, run) for run in found["runs"])
        page.token = found.get("token")
        return page

    # -- artifacts, datasets, lineage ------------------------------------------------------------
    def record_artifact(self, run_id: str, name: str, sha256: str, size: int, media_type: str) -> e.Artifact:
        return self.record_artifacts(run_id, [(name, sha256, size, media_type)])[0]

    def record_artifacts(
        self, run_id: str, artifacts: Sequence[tuple[str, str, int, str]]
    ) -> list[e.Artifact]:
        body = {
            "artifacts": [{"name": n, "sha256": s, "size": z, "media_type": m} for n, s, z, m in artifacts]
        }
        found = self._json("POST", f"/runs/{self._q(run_id)}/artifacts", body=body)
        return [record_from_json(e.Artifact, a) for a in found]

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[e.Artifact]:
        found = self._json("GET", f"/runs/{self._q(run_id)}/artifacts", params={"prefix": prefix or None})
        return [record_from_json(e.Artifact, a) for a in found]

    def record_input_artifact(self, run_id: str, sha256: str, name: str) -> None:
        self.record_input_artifacts(run_id, [(sha256, name)])

    def record_input_artifacts(self, run_id: str, items: Sequence[tuple[str, str]]) -> None:
        if items:
            body = {"items": [{"sha256": sha, "name": name} for sha, name in items]}
            self.request("POST", f"/runs/{self._q(run_id)}/inputs", body=body)

    def step_uses(self, sha256: str) -> list[e.StepUse]:
        return [
            record_from_json(e.StepUse, found)
            for found in self._json("GET", f"/lineage/{check_sha256(sha256)}/steps")
        ]

    def dataset_usage(self, name: str, fingerprint: str | None = None) -> list[e.DatasetUse]:
        found = self._json("GET", "/dataset-usage", params={"name": name, "fingerprint": fingerprint})
        return [record_from_json(e.DatasetUse, x) for x in found]

    def model_versions_from_runs(self, run_ids: Sequence[str]) -> list[e.ModelVersion]:
        if not run_ids:
            return []
        found = self._json("POST", "/model-versions/from-runs", body={"run_ids": list(run_ids)})
        return [record_from_json(e.ModelVersion, v) for v in found]

    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        fingerprint: str,
        schema: Mapping[str, Any] | None,
        row_count: int | None,
        source: str | None,
        context: str = "training",
        profile_sha256: str | None = None,
    ) -> e.Dataset:
        body = {
            "name": name, "fingerprint": fingerprint, "schema": None if schema is None else dict(schema),
            "row_count": row_count, "source": source, "context": context, "profile_sha256": profile_sha256,
        }  # fmt: skip
        return record_from_json(e.Dataset, self._json("POST", f"/runs/{self._q(run_id)}/datasets", body=body))

    def list_run_inputs(self, run_id: str) -> list[e.Dataset]:
        return [
            record_from_json(e.Dataset, d) for d in self._json("GET", f"/runs/{self._q(run_id)}/datasets")
        ]

    def run_lineage(self, run_id: str) -> list[e.LineageEdge]:
        found = self._json("GET", f"/runs/{self._q(run_id)}/lineage")
        return [record_from_json(e.LineageEdge, x) for x in found]

    def lineage(self, sha256: str) -> list[e.LineageEdge]:
        found = self._json("GET", f"/lineage/{check_sha256(sha256)}")
        return [record_from_json(e.LineageEdge, x) for x in found]

    # -- comments ------------------------------------------------------------------------------
    def add_comment(
        self,
        target_type: str,
        target_id: str,
        body: str,
        *,
        author: str | None = None,
        project: str = "default",
    ) -> e.Comment:
        payload = {
            "target_type": target_type,
            "target_id": target_id,
            "body": body,
            "author": author,
            "project": project,
        }
        return record_from_json(e.Comment, self._json("POST", "/comments", body=payload, idempotent=False))

    def list_comments(self, target_type: str, target_id: str, *, project: str = "default") -> list[e.Comment]:
        params = {"target_type": target_type, "target_id": target_id, "project": project}
        return [record_from_json(e.Comment, c) for c in self._json("GET", "/comments", params=params)]

    # -- registry ------------------------------------------------------------------------------
    def _model(self, name: str) -> str:
        return f"/models/{self._q(name)}"

    def create_registered_model(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> e.RegisteredModel:
        body = {"name": name, "project": project, "description": description,
                "tags": dict(tags) if tags else None}  # fmt: skip
        return record_from_json(e.RegisteredModel, self._json("POST", "/models", body=body, idempotent=False))

    def get_registered_model(self, name: str, *, project: str = "default") -> e.RegisteredModel:
        return record_from_json(
            e.RegisteredModel, self._json("GET", self._model(name), params={"project": project})
        )

    def list_registered_models(
        self, *, project: str | None = None, name_like: str | None = None
    ) -> list[e.RegisteredModel]:
        found = self._json("GET", "/models", params={"project": project, "name_like": name_like})
        return [record_from_json(e.RegisteredModel, m) for m in found]

    def create_model_version(
        self,
        name: str,
        *,
        artifact_sha256: str,
        flavor: str,
        run_id: str | None = None,
        artifact_name: str | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        project: str = "default",
    ) -> e.ModelVersion:
        body = {
            "artifact_sha256": artifact_sha256, "flavor": flavor, "run_id": run_id,
            "artifact_name": artifact_name, "signature": None if signature is None else dict(signature),
            "description": description, "tags": dict(tags) if tags else None, "project": project,
        }  # fmt: skip
        found = self._json("POST", f"{self._model(name)}/versions", body=body, idempotent=False)
        return record_from_json(e.ModelVersion, found)

    def list_model_versions(self, name: str, *, project: str = "default") -> list[e.ModelVersion]:
        found = self._json("GET", f"{self._model(name)}/versions", params={"project": project})
        return [record_from_json(e.ModelVersion, v) for v in found]

    def get_model_version(self, name: str, version: int, *, project: str = "default") -> e.ModelVersion:
        path = f"{self._model(name)}/versions/{int(version)}"
        return record_from_json(e.ModelVersion, self._json("GET", path, params={"project": project}))

    def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str], *, project: str = "default"
    ) -> None:
        path = f"{self._model(name)}/versions/{int(version)}/tags"
        self.request("PUT", path, body={"tags": dict(tags), "project": project})

    def set_model_alias(self, name: str, alias: str, version: int, *, project: str = "default") -> None:
        path = f"{self._model(name)}/aliases/{self._q(alias)}"
        self.request("PUT", path, body={"version": int(version), "project": project})

    def delete_model_alias(self, name: str, alias: str, *, project: str = "default") -> None:
        self.request("DELETE", f"{self._model(name)}/aliases/{self._q(alias)}", params={"project": project})

    def get_model_version_by_alias(
        self, name: str, alias: str, *, project: str = "default"
    ) -> e.ModelVersion:
        path = f"{self._model(name)}/aliases/{self._q(alias)}"
        return record_from_json(e.ModelVersion, self._json("GET", path, params={"project": project}))

    # -- changes after creation: the native API does not offer them ------------------------------
    def _not_offered(self, method: str) -> errors.StoreError:
        return errors.StoreError(
            f"Store.{method} is not offered by a keel server's /api/v1 ({self.url}); call it on a store "
            "opened with the server's database URL, or use the server's MLflow-compatible API "
            "(/api/2.0/mlflow), which offers it"
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        raise self._not_offered("rename_experiment")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        raise self._not_offered("set_experiment_tag")

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        raise self._not_offered("delete_experiment_tag")

    def update_registered_model(
        self, name: str, *, description: str | None, project: str = "default"
    ) -> None:
        raise self._not_offered("update_registered_model")

    def rename_registered_model(self, name: str, new_name: str, *, project: str = "default") -> None:
        raise self._not_offered("rename_registered_model")

    def delete_registered_model(self, name: str, *, project: str = "default") -> None:
        raise self._not_offered("delete_registered_model")

    def set_registered_model_tag(self, name: str, key: str, value: str, *, project: str = "default") -> None:
        raise self._not_offered("set_registered_model_tag")

    def delete_registered_model_tag(self, name: str, key: str, *, project: str = "default") -> None:
        raise self._not_offered("delete_registered_model_tag")

    def update_model_version(
        self, name: str, version: int, *, description: str | None, project: str = "default"
    ) -> None:
        raise self._not_offered("update_model_version")

    def delete_model_version(self, name: str, version: int, *, project: str = "default") -> None:
        raise self._not_offered("delete_model_version")

    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, project: str = "default"
    ) -> None:
        raise self._not_offered("delete_model_version_tag")

    # -- pipelines -----------------------------------------------------------------------------
    def create_pipeline_run(
        self,
        run_id: str,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        graph: Mapping[str, Any],
        resumed_from: int | None = None,
    ) -> int:
        body = {"run_id": run_id, "pipeline": pipeline, "params": to_json(params), "graph": to_json(graph),
                "resumed_from": resumed_from}  # fmt: skip
        return int(self._json("POST", "/pipeline-runs", body=body, idempotent=False)["pipeline_run_id"])

    def get_pipeline_run(self, pipeline_run_id: int) -> e.PipelineRun:
        return record_from_json(e.PipelineRun, self._json("GET", f"/pipeline-runs/{int(pipeline_run_id)}"))

    def get_pipeline_run_by_run_id(self, run_id: str) -> e.PipelineRun:
        return record_from_json(e.PipelineRun, self._json("GET", f"/runs/{self._q(run_id)}/pipeline-run"))

    def list_pipeline_runs(self, pipeline: str | None = None, max_results: int = 100) -> list[e.PipelineRun]:
        found = self._json("GET", "/pipeline-runs", params={"pipeline": pipeline, "max_results": max_results})
        return [record_from_json(e.PipelineRun, p) for p in found]

    def record_step_runs(self, pipeline_run_id: int, steps: Sequence[e.StepRun]) -> None:
        if steps:
            body = {"steps": [to_json(step) for step in steps]}
            self.request("POST", f"/pipeline-runs/{int(pipeline_run_id)}/steps", body=body)

    def set_pipeline_run_status(self, pipeline_run_id: int, status: str) -> None:
        self.request("PUT", f"/pipeline-runs/{int(pipeline_run_id)}/status", body={"status": status})

    def find_step_runs(self, cache_key: str, *, projects: Collection[str] | None = None) -> list[e.StepRun]:
        params: dict[str, Any] = {"cache_key": cache_key}
        if projects is not None:
            params["projects"] = sorted(projects)
        return [record_from_json(e.StepRun, s) for s in self._json("GET", "/step-runs", params=params)]

    def lookup_step_cache(
        self, cache_keys: Sequence[str], *, projects: Collection[str] | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """The server answers only entries of projects the caller may read (and of ``projects``)."""
        if not cache_keys:
            return {}
        body: dict[str, Any] = {"cache_keys": list(cache_keys)}
        if projects is not None:
            body["projects"] = sorted(projects)
        return dict(self._json("POST", "/step-cache/lookup", body=body))


def _parts(values: Mapping[str, Any], size: int) -> list[dict[str, str]]:
    """``values`` as text, in dicts of at most ``size`` entries (none for an empty mapping)."""
    items = [(str(k), v if isinstance(v, str) else str(v)) for k, v in values.items()]
    return [dict(items[start : start + size]) for start in range(0, len(items), size)]
