"""``keel.Client``: explicit, synchronous access to runs, artifacts, lineage and the registry."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import limits
from keel.artifacts import BlobStore, check_artifact_name, media_type, safe_destination
from keel.clock import now_ms
from keel.errors import InvalidInputError, NotFoundError
from keel.ids import new_id
from keel.run_status import RunStatus
from keel.store.base import Store
from keel.store.metrics import chunks_from_points
from keel.tracking.context import Context, get_context
from keel.tracking.writer import MAX_BATCH_POINTS

if TYPE_CHECKING:  # the records load with the store: not on the path of a first start_run
    from keel.entities import (
        Artifact,
        Comment,
        Dataset,
        Experiment,
        LineageEdge,
        Metric,
        MetricHistory,
        ModelVersion,
        RegisteredModel,
        Run,
    )

__all__ = ["Client", "ModelInfo"]

DEFAULT_EXPERIMENT = "default"


class ModelInfo(dict[str, Any]):
    """What ``log_model`` stored: ``artifact_name``, ``sha256`` (of the manifest), ``flavor``,
    ``signature``, ``run_id`` and, when registered, ``version``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Client:
    """Queries and synchronous writes against one store.

    >>> client = keel.Client()                      # the store found from the working directory
    >>> page = client.search_runs(["quickstart"], "metrics.accuracy > 0.9", ["metrics.accuracy DESC"])
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
        project: str | None = None,
    ):
        self._context: Context = get_context(tracking_uri, artifact_uri, project)
        self._context.recover()

    @classmethod
    def for_context(cls, context: Context) -> Client:
        """A client of an already open context (no settings lookup, no recovery)."""
        client = cls.__new__(cls)
        client._context = context
        return client

    def _recover_dead(self) -> None:
        """Before reading runs or metrics: take over what processes that died since the last look
        left for the store (their points, their RUNNING runs marked CRASHED). At most twice a
        second; in between this costs a clock read (ADR 012)."""
        writer = self._context._writer
        if writer is not None and writer.next_scan <= time.monotonic():
            writer.recover_dead()

    def _settle(self) -> None:
        """Read your writes: run changes this process queued (a first run's creation waits for the
        store to open in the background) reach the store before it is asked anything; changes
        queued because the store is away stay queued."""
        writer = self._context._writer
        if (
            writer is not None
            and writer.outbox
            and not writer.offline
            and writer.error is None
            and threading.current_thread() is not writer._thread
        ):
            writer.flush()

    @property
    def store(self) -> Store:
        self._settle()
        return self._context.store

    @property
    def tracking_uri(self) -> str:
        return self._context.tracking_uri

    @property
    def artifact_uri(self) -> str:
        return self._context.artifact_uri

    @property
    def project(self) -> str:
        return self._context.settings.project

    @property
    def artifacts(self) -> BlobStore:
        """Where this client's artifact bytes live (a folder, a bucket, or a keel server)."""
        return self._context.artifacts

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        self._context.naming.validate("experiment", name)
        return self.store.create_experiment(
            name, project=self.project, description=description, tags=tags
        ).experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name, project=self.project)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.store.list_experiments(
            project=self.project,
            include_deleted=include_deleted,
        )

    def experiment_id(self, experiment: str | None, create: bool = True) -> str:
        """The id of an experiment given by name or id; a missing name is created when ``create``."""
        name = experiment or DEFAULT_EXPERIMENT
        found = self.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        if name.isdigit():
            try:
                return self.get_experiment(name).experiment_id
            except NotFoundError:
                pass
        if not create:
            raise NotFoundError(
                f"no experiment {name!r} in project {self.project!r}; `keel experiments list` shows them"
            )
        from keel.errors import ConflictError

        try:
            return self.create_experiment(name)
        except ConflictError:  # another process created it first
            found = self.get_experiment_by_name(name)
            assert found is not None
            return found.experiment_id

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        **fields: Any,
    ) -> Run:
        naming = self._context.naming
        if name is not None:
            naming.validate("run", name)  # before anything is created
        experiment_id = self.experiment_id(experiment)
        if name is None:
            exp = self.get_experiment(experiment_id)
            name = naming.generate("run", experiment=exp.name, seq=self.store.count_runs(experiment_id) + 1)
        return self.store.create_run(
            experiment_id,
            name,
            tags=tags,
            parent_run_id=parent_run_id,
            **fields,
        )

    def get_run(self, run_id: str) -> Run:
        self._recover_dead()
        return self.store.get_run(run_id)

    def resolve_run_id(self, text: str) -> str:
        """A full run id from a full id or a unique prefix of at least 4 characters (like git)."""
        text = text.strip().lower()
        if len(text) == 32:
            return text
        if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
            raise InvalidInputError(
                f"{text!r} is not a run id or a prefix of one (at least 4 hex "
                "characters); `keel runs list` shows the ids"
            )
        found = self.store.search_runs(None, f"run_id LIKE '{text}%'", max_results=2, include_deleted=True)
        if not found:
            raise NotFoundError(f"no run id starts with {text!r}; `keel runs list` shows the ids")
        if len(found) > 1:
            raise InvalidInputError(f"several runs start with {text!r}; give more characters")
        return found[0].run_id

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        self.store.update_run(run_id, status=RunStatus(status), end_time=end_time or now_ms())

    def delete_run(self, run_id: str, permanently: bool = False) -> None:
        if permanently:
            self.store.delete_run_permanently(run_id)
        else:
            self.store.set_run_lifecycle(run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, "active")

    def search_runs(
        self,
        experiments: Sequence[str] | str | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> list[Run]:
        """Runs matching an MLflow-style filter, newest first unless ``order_by`` says otherwise.

        ``experiments`` are names or ids (all experiments of the project when omitted). The result
        is a list with a ``token`` attribute for the next page.
        """
        self._recover_dead()
        if isinstance(experiments, str):
            experiments = [experiments]
        if experiments:
            ids = [self.experiment_id(e, create=False) for e in experiments]
        else:
            ids = [e.experiment_id for e in self.list_experiments(include_deleted=include_deleted)]
        return self.store.search_runs(
            ids,
            filter_string,
            order_by,
            max_results,
            page_token,
            include_deleted,
        )

    # -- logging (synchronous) ---------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric | tuple[Any, ...]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags now, in one metric batch (not through the spool)."""
        if params:
            self.store.log_params(run_id, params)
        if tags:
            self.store.set_tags(run_id, tags)
        from keel.entities import Metric

        points = []
        stamp = now_ms()
        for item in metrics:
            if isinstance(item, Metric):
                key, value, step, ts = item.key, item.value, item.step, item.timestamp
            else:
                key, value, step, ts = (tuple(item) + (0, None))[:4]
            points.append((key, limits.to_float(key, value), int(step or 0), int(ts or stamp)))
        if points:
            for start in range(0, len(points), MAX_BATCH_POINTS):
                part = points[start : start + MAX_BATCH_POINTS]
                self.store.write_metric_batch(new_id(), run_id, chunks_from_points(part))

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.log_batch(run_id, [(key, value, step, timestamp)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.store.log_params(run_id, params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.store.set_tags(run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str, max_points: int | None = None) -> MetricHistory:
        """Every point of a metric as numpy arrays; ``max_points`` downsamples, keeping spikes."""
        self._recover_dead()
        return self.store.get_metric_history(run_id, key, max_points=max_points)

    def list_metric_keys(self, run_id: str) -> list[str]:
        self._recover_dead()
        return self.store.list_metric_keys(run_id)

    # -- datasets ----------------------------------------------------------------------------
    def log_input(
        self,
        run_id: str,
        data: Any,
        name: str | None = None,
        context: str = "training",
        source: str | None = None,
    ) -> Dataset:
        """Record a dataset version the run read: name, fingerprint, schema and row count."""
        from keel.tracking.datasets import describe

        return self._record_dataset(run_id, describe(data, name=name, source=source), context)

    def _record_dataset(self, run_id: str, info: dict[str, Any], context: str) -> Dataset:
        return self.store.log_dataset(run_id, context=context, **info)

    def list_inputs(self, run_id: str) -> list[Dataset]:
        return self.store.list_run_inputs(run_id)

    # -- artifacts ---------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], name: str | None = None
    ) -> list[Artifact]:
        """Store a file or a whole folder as artifacts of the run; return what was stored."""
        path = Path(local_path)
        if not path.exists():
            raise NotFoundError(f"cannot log {path}: no such file or folder")
        if path.is_dir():
            prefix = name if name is not None else path.name
            if prefix:
                check_artifact_name(prefix)
            logged = []
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = file.relative_to(path).as_posix()
                logged.append(self._log_file(run_id, file, f"{prefix}/{relative}" if prefix else relative))
            return logged
        return [self._log_file(run_id, path, name or path.name)]

    def _log_file(self, run_id: str, path: Path, name: str) -> Artifact:
        return self._store_artifact(run_id, name, path)

    def log_bytes(self, run_id: str, data: bytes, name: str) -> Artifact:
        return self._store_artifact(run_id, name, data)

    def _store_artifact(self, run_id: str, name: str, source: Path | bytes) -> Artifact:
        check_artifact_name(name)
        self._context.naming.validate("artifact", name)
        return self._put_and_record(run_id, name, source)

    def _put_and_record(self, run_id: str, name: str, source: Path | bytes) -> Artifact:
        """Store the bytes (a file or in memory) and record them as artifact ``name`` of the run."""
        blobs = self._context.artifacts
        sha, size = blobs.put_bytes(source) if isinstance(source, bytes) else blobs.put_file(source)
        return self.store.record_artifact(run_id, name, sha, size, media_type(name))

    def log_text(self, run_id: str, text: str, name: str) -> Artifact:
        return self.log_bytes(run_id, text.encode("utf-8"), name)

    def log_dict(self, run_id: str, data: Any, name: str) -> Artifact:
        """A dict (or list) as JSON, or as YAML when ``name`` ends in .yaml/.yml. NaN and ±inf survive."""
        if name.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                from keel.errors import MissingDependencyError

                raise MissingDependencyError("pyyaml", "yaml", "Logging YAML") from None
            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2, sort_keys=False, default=_json_default)
        return self.log_text(run_id, text, name)

    def log_figure(self, run_id: str, figure: Any, name: str, dpi: int = 110) -> Artifact:
        """A matplotlib figure as PNG (or SVG/PDF by the name's suffix)."""
        suffix = Path(name).suffix.lower().lstrip(".") or "png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, dpi=dpi, bbox_inches="tight")
        return self.log_bytes(run_id, buffer.getvalue(), name)

    def log_table(self, run_id: str, table: Any, name: str) -> Artifact:
        """A pandas or polars DataFrame as Parquet (``.parquet``), CSV (``.csv``) or JSON (``.json``)."""
        suffix = Path(name).suffix.lower()
        import tempfile

        with tempfile.TemporaryDirectory(prefix="keel-table-") as folder:
            target = Path(folder) / f"table{suffix or '.parquet'}"
            if suffix == ".csv":
                table.to_csv(target, index=False) if hasattr(table, "to_csv") else table.write_csv(target)
            elif suffix == ".json":
                if hasattr(table, "to_json"):
                    table.to_json(target, orient="records")
                else:
                    table.write_json(target)
            elif suffix in {"", ".parquet"}:
                if hasattr(table, "to_parquet"):
                    table.to_parquet(target, index=False)
                else:
                    table.write_parquet(target)
            else:
                raise InvalidInputError(f"log_table writes .parquet, .csv or .json, not {suffix!r}")
            return self._log_file(run_id, target, name if suffix else f"{name}.parquet")

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        return self.store.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, name: str) -> bytes:
        return self._context.artifacts.read_bytes(self.get_artifact(run_id, name).sha256)

    def download_artifacts(self, run_id: str, name: str = "", dest: str | os.PathLike[str] = ".") -> Path:
        """Download one artifact, or every artifact under a folder name, into ``dest``."""
        found = self.list_artifacts(run_id, name)
        if not found:
            raise NotFoundError(f"run {run_id} has no artifact {name!r}; `keel artifacts list {run_id}`")
        # names are written relative to the folder that holds `name`: "plots" lands as dest/plots/...
        name = name.rstrip("/")
        parent = name.rpartition("/")[0]

        def relative(artifact_name: str) -> str:
            return artifact_name[len(parent) + 1 :] if parent else artifact_name

        for artifact in found:
            self._context.artifacts.download(artifact.sha256, safe_destination(dest, relative(artifact.name)))
        return Path(dest) / relative(name) if name else Path(dest)

    def get_artifact(self, run_id: str, name: str) -> Artifact:
        """The artifact of ``run_id`` called ``name`` (NotFoundError if the run has none)."""
        for artifact in self.list_artifacts(run_id, name):
            if artifact.name == name:
                return artifact
        raise NotFoundError(f"run {run_id} has no artifact {name!r}")

    def use_artifact(self, run_id: str, source_run_id: str, name: str) -> Artifact:
        """Record that ``run_id`` consumed an artifact of ``source_run_id`` (a lineage edge)."""
        artifact = self.get_artifact(source_run_id, name)
        self.store.record_input_artifact(run_id, artifact.sha256, name)
        return artifact

    def lineage(self, sha256: str) -> list[LineageEdge]:
        return self.store.lineage(sha256)

    def run_lineage(self, run_id: str) -> list[LineageEdge]:
        return self.store.run_lineage(run_id)

    # -- models and registry -----------------------------------------------------------------
    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str = "model",
        *,
        flavor: str | None = None,
        input_example: Any = None,
        signature: Mapping[str, Any] | None = None,
        trust: bool = False,
        registered_model_name: str | None = None,
    ) -> ModelInfo:
        """Save ``model`` in a safe format for its flavor, as artifacts of the run under ``name/``."""
        from keel.models import MANIFEST_NAME, save_model

        check_artifact_name(name)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="keel-model-") as folder:
            target = Path(folder) / "model"
            manifest = save_model(
                model,
                target,
                flavor=flavor,
                input_example=input_example,
                signature=dict(signature) if signature else None,
                trust=trust,
            )
            artifacts = self.log_artifact(run_id, target, name)
        manifest_sha = next(a.sha256 for a in artifacts if a.name == f"{name}/{MANIFEST_NAME}")
        info = ModelInfo(
            run_id=run_id,
            artifact_name=name,
            sha256=manifest_sha,
            flavor=manifest["flavor"],
            signature=manifest.get("signature"),
        )
        if registered_model_name:
            version = self.register_model(f"runs:/{run_id}/{name}", registered_model_name)
            # None: the store is away and the registration waits in the outbox (fluent API only)
            info["version"] = version.version if version is not None else None
        return info

    def register_model(
        self,
        source: str,
        name: str,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register the model at ``runs:/RUN_ID/NAME`` as a new version of ``name`` (created if new)."""
        from keel.models import MANIFEST_NAME

        if not source.startswith("runs:/"):
            raise InvalidInputError(f"register a model from 'runs:/RUN_ID/NAME', not {source!r}")
        run_id, _, artifact_name = source[len("runs:/") :].partition("/")
        artifact_name = artifact_name.rstrip("/") or "model"
        manifest_artifact = self.get_artifact(run_id, f"{artifact_name}/{MANIFEST_NAME}")
        manifest = json.loads(self._context.artifacts.read_bytes(manifest_artifact.sha256))
        self._context.naming.validate("model", name)
        try:
            self.store.get_registered_model(name, project=self.project)
        except NotFoundError:
            from keel.errors import ConflictError

            try:
                self.store.create_registered_model(name, project=self.project)
            except ConflictError:
                pass
        return self.store.create_model_version(
            name,
            artifact_sha256=manifest_artifact.sha256,
            flavor=manifest["flavor"],
            run_id=run_id,
            artifact_name=artifact_name,
            signature=manifest.get("signature"),
            description=description,
            tags=tags,
            project=self.project,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name, project=self.project)

    def list_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        return self.store.list_registered_models(
            project=self.project,
            name_like=name_like,
        )

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return self.store.list_model_versions(name, project=self.project)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, int(version), project=self.project)

    def set_model_alias(self, name: str, alias: str, version: int | str) -> None:
        _check_alias(alias)
        self.store.set_model_alias(name, alias, int(version), project=self.project)

    def delete_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_model_alias(name, alias, project=self.project)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version_by_alias(name, alias, project=self.project)

    def set_model_version_tags(self, name: str, version: int | str, tags: Mapping[str, str]) -> None:
        self.store.set_model_version_tags(name, int(version), tags, project=self.project)

    def resolve_model_uri(self, uri: str) -> ModelVersion:
        """``models:/name/3``, ``models:/name@alias`` or ``models:/name/latest`` to a version."""
        if not uri.startswith("models:/"):
            raise InvalidInputError(
                f"model URIs look like models:/NAME/VERSION or models:/NAME@ALIAS, not {uri!r}"
            )
        body = uri[len("models:/") :]
        if "@" in body:
            name, _, alias = body.partition("@")
            return self.get_model_version_by_alias(name, alias)
        name, _, version = body.rpartition("/")
        if not name:
            raise InvalidInputError(
                f"{uri!r} names no version: use models:/{body}/VERSION or models:/{body}@ALIAS"
            )
        if version == "latest":
            versions = self.list_model_versions(name)
            if not versions:
                raise NotFoundError(f"model {name!r} has no versions")
            return versions[-1]
        if not version.isdigit():
            raise InvalidInputError(f"model version must be a number or 'latest', not {version!r}")
        return self.get_model_version(name, int(version))

    def load_model(self, uri: str, *, trust: bool = False, torch_module: Any = None) -> Any:
        """Load a model by ``models:/...`` or ``runs:/RUN_ID/NAME``; every byte is checked by sha256.

        Pickled models load only with ``trust=True``, and only if their bytes are those recorded when
        the model was logged.
        """
        from keel.models import MANIFEST_NAME, load_model

        if uri.startswith("runs:/"):
            run_id, _, artifact_name = uri[len("runs:/") :].partition("/")
            manifest_sha = self.get_artifact(run_id, f"{artifact_name.rstrip('/')}/{MANIFEST_NAME}").sha256
        else:
            version = self.resolve_model_uri(uri)
            if version.flavor == "mlflow":
                raise InvalidInputError(
                    f"{uri} was registered through MLflow's client (an MLflow model, not a keel one); "
                    f"load it with mlflow.pyfunc.load_model({uri!r}) against this server"
                )
            manifest_sha = version.artifact_sha256
        try:
            manifest = json.loads(self._context.artifacts.read_bytes(manifest_sha))
            manifest["files"]
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(
                f"{uri} does not point at a model keel saved (no keel model manifest); log models with "
                "keel.log_model"
            ) from None
        files: dict[str, str] = manifest["files"]
        import tempfile

        with tempfile.TemporaryDirectory(prefix="keel-load-") as folder:
            root = Path(folder)
            (root / MANIFEST_NAME).write_bytes(self._context.artifacts.read_bytes(manifest_sha))
            for relative, sha in files.items():
                self._context.artifacts.download(sha, safe_destination(root, relative))
            return load_model(root, trust=trust, expected_sha256=files, torch_module=torch_module)

    # -- comments ----------------------------------------------------------------------------
    def add_comment(self, target: str, body: str, author: str | None = None) -> Comment:
        """Comment on a run (its id) or a model version (``models:/name/3``)."""
        target_type, target_id = self._comment_target(target)
        return self.store.add_comment(target_type, target_id, body, author=author, project=self.project)

    def list_comments(self, target: str) -> list[Comment]:
        target_type, target_id = self._comment_target(target)
        return self.store.list_comments(target_type, target_id, project=self.project)

    def _comment_target(self, target: str) -> tuple[str, str]:
        if target.startswith("models:/"):
            version = self.resolve_model_uri(target)
            return "model_version", f"{version.name}/{version.version}"
        return "run", target


def _check_alias(alias: str) -> None:
    import re

    if (
        not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,127}", alias or "")
        or alias.lower() == "latest"
        or (alias[0] in "vV" and alias[1:].isdigit())
    ):
        raise InvalidInputError(
            f"invalid alias {alias!r}: use letters, digits, '_' and '-' (such as 'champion'); "
            "'latest' and 'v<number>' are reserved"
        )


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
