"""Pipelines on keel's spine: outputs in the content-addressed store, runs and lineage in tracking.

:func:`run_pipeline` is what ``Pipeline.run`` and ``keel pipeline run`` use: it opens a tracking run
(experiment ``pipelines`` unless told otherwise), records the pipeline run and its graph, runs the
graph with outputs stored as artifacts of that run (so lineage from data to model comes for free)
and a cache shared by every run of the project, then records every step: status, timing, CPU, peak
memory, cache hit, cache key and what it was made of, inputs and outputs.

>>> result = run_pipeline(training, {"lr": 0.2})        # doctest: +SKIP
>>> result.pipeline_run_id, result.outputs               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from keel.artifacts import safe_destination
from keel.artifacts.base import BlobStore
from keel.entities import StepRun
from keel.hashing import check_sha256
from keel.pipelines.graph import Graph
from keel.pipelines.runner import METRICS_ENTRY, RunResult, output_entries, run_graph
from keel.pipelines.steps import Pipeline

__all__ = ["StoreCache", "StoreSink", "graph_document", "load_pipeline", "run_pipeline", "stored_graph"]

_MANIFEST_FORMAT = "keel-step-output"
#: files up to this size are stored inside the output's manifest instead of as blobs of their own
_INLINE_LIMIT = 64 * 1024
#: manifest writes that may wait in the background before the run waits for half of them
_MAX_QUEUED = 2048
#: threads writing manifests: creating files waits on the disk, not the CPU, so a few overlap well
_WRITERS = 2


def _artifact_name(node_id: str, name: str) -> str:
    # node ids of map branches look like `train[3]`; artifact names keep to a safe alphabet
    return f"steps/{node_id.replace('[', '@').replace(']', '')}/{name}.json"


def _file_name(node_id: str, name: str, relative: str) -> str:
    """The artifact name of a file of an output stored as a blob of its own (beside the manifest)."""
    return f"{_artifact_name(node_id, name).removesuffix('.json')}.files/{relative}"


class StoreSink:
    """Step outputs as blobs in keel's artifact store: one blob per file plus a manifest blob that
    names them. ``put`` returns the manifest's sha256; the run records it as an output artifact."""

    def __init__(self, client: Any, run_id: str, cache_dir: Path | None = None):
        self.client = client
        self.run_id = run_id
        self.artifacts: BlobStore = client.artifacts
        self.cache_dir = cache_dir or client._context.keel_dir / "cache" / "outputs"
        #: hashes of outputs this machine's runs pickled themselves: they reload without trust
        self.own_pickles = self.cache_dir.parent / "own-pickles"
        #: where large outputs are written before they are stored (a rename away from the store)
        self.scratch = self.artifacts.scratch
        #: artifact records not yet written; :meth:`flush` writes them in one transaction
        self.pending: list[tuple[str, str, int, str]] = []
        # manifests are hashed here and written by a background thread (creating a file costs
        # ~0.5 ms on some disks, more than the step); flush() waits for them before recording
        self._writer: ThreadPoolExecutor | None = None
        self._writes: list[Future[Any]] = []

    #: files up to this size ride inside the manifest
    inline_limit = _INLINE_LIMIT

    def put(self, node_id: str, name: str, folder: Path) -> str:
        files: dict[str, str] = {}
        inline: dict[str, bytes] = {}
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = file.relative_to(folder).as_posix()
            if file.stat().st_size <= _INLINE_LIMIT:  # small files ride inside the manifest
                inline[relative] = file.read_bytes()
            else:
                sha, size = self.artifacts.put_file(file, durable=False, move=True)
                files[relative] = sha
                # an artifact of the run as well as a name in the manifest: a keel server serves a
                # blob only to readers of a project whose records name it
                self.pending.append(
                    (_file_name(node_id, name, relative), sha, size, "application/octet-stream")
                )
        shutil.rmtree(folder, ignore_errors=True)
        return self._manifest(node_id, name, files, inline)

    def put_files(self, node_id: str, name: str, files: Mapping[str, bytes]) -> str:
        """Store small files held in memory (each at most ``inline_limit``) as one manifest blob."""
        return self._manifest(node_id, name, {}, files)

    def _manifest(
        self, node_id: str, name: str, files: Mapping[str, str], inline: Mapping[str, bytes]
    ) -> str:
        encoded = {path: base64.b64encode(inline[path]).decode("ascii") for path in sorted(inline)}
        document = {"format": _MANIFEST_FORMAT, "files": dict(files), "inline": encoded}
        manifest = json.dumps(document, sort_keys=True).encode()
        sha = hashlib.sha256(manifest).hexdigest()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="keel-manifests")
        if len(self._writes) >= _MAX_QUEUED:
            self._wait(len(self._writes) // 2)
        self._writes.append(self._writer.submit(self.artifacts.put_bytes, manifest, durable=False))
        self.pending.append((_artifact_name(node_id, name), sha, len(manifest), "application/json"))
        return sha

    def _wait(self, count: int | None = None) -> None:
        """Wait for the oldest ``count`` (default: all) manifest writes; raise the first failure."""
        count = len(self._writes) if count is None else count
        done, self._writes = self._writes[:count], self._writes[count:]
        for write in done:
            write.result()

    def flush(self) -> None:
        """Wait for the manifests to be written, then record the stored outputs as artifacts of the
        run (lineage edges included)."""
        try:
            self._wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
        if self.pending:
            self.client.store.record_artifacts(self.run_id, self.pending)
            self.pending = []

    def record_own_pickle(self, sha256: str) -> None:
        """Remember, on this machine only, that a run here pickled the output ``sha256`` itself."""
        self.own_pickles.mkdir(parents=True, exist_ok=True)
        (self.own_pickles / check_sha256(sha256)).touch()

    def is_own_pickle(self, sha256: str) -> bool:
        return (self.own_pickles / check_sha256(sha256)).is_file()

    def has(self, sha256: str) -> bool:
        """Whether ``sha256`` can be opened (its manifest is stored or already unpacked here)."""
        return (self.cache_dir / sha256).is_dir() or self.artifacts.exists(sha256)

    def open(self, sha256: str) -> Path:
        target = self.cache_dir / sha256
        if target.is_dir():
            return target
        manifest = json.loads(self.artifacts.read_bytes(sha256))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".incoming-"))
        try:
            for relative, blob in manifest["files"].items():
                # sha256-verified; a hard link where possible (loaders only read, memory-mapped arrays too)
                self.artifacts.download(blob, safe_destination(staging, relative), link=True)
            for relative, content in manifest.get("inline", {}).items():
                target_file = safe_destination(staging, relative)  # the manifest itself was verified
                target_file.parent.mkdir(parents=True, exist_ok=True)
                target_file.write_bytes(base64.b64decode(content))
            os.replace(staging, target)
        except FileExistsError:  # another process materialized it first
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


class StoreCache:
    """The step cache of the metadata store, shared by every run of ``project`` (``None``: of
    every project) that uses it: a project never takes another project's outputs."""

    def __init__(self, store: Any, project: str | None = None):
        self.store = store
        self.projects = None if project is None else [project]

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, Mapping[str, Any]]:
        """The entries of those ``keys`` that are known, in one query."""
        found: dict[str, Mapping[str, Any]] = self.store.lookup_step_cache(keys, projects=self.projects)
        return found

    def put(self, key: str, outputs: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        """Nothing to do here: the cache entry is written with the step's record (same transaction)."""


def _project_of(store: Any, experiment_id: str) -> str | None:
    """The project of the pipeline's run, whose step cache it uses (``None`` if not known yet)."""
    return str(store.get_experiment(experiment_id).project) if experiment_id else None


def graph_document(graph: Graph) -> dict[str, Any]:
    """A JSON-able description of the graph, stored with the pipeline run for drawing it later."""
    return {
        "name": graph.name,
        "entry": getattr(graph, "entry", None),
        "nodes": [
            {"id": node.id, "step": node.step.name, "upstream": list(node.upstream)}
            for node in graph.nodes.values()
        ],
    }


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    executor: Literal["inline", "process", "ray"] = "inline",
    max_workers: int | None = None,
    cache: bool = True,
    trust: bool = False,
    experiment: str = "pipelines",
    tracking_uri: str | None = None,
    progress: bool | None = None,
    options: Mapping[str, str] | None = None,
) -> RunResult:
    """Build ``pipeline`` with ``params``, run it tracked, and return the result.

    The result also carries ``pipeline_run_id`` and ``run_id``. A failing step stops its dependants;
    everything else finishes and is recorded, and completed steps are reused by the next run.
    ``progress`` shows a progress bar on stderr (default: when stderr is a terminal). Setting
    ``KEEL_PIPELINE_CACHE=false`` turns caching off for every run (useful in tests). Outputs that
    had to be pickled reload without ``trust`` when a run on this machine wrote them; ``trust=True``
    also accepts pickles other users' runs put in a shared store. ``options`` is how step errors
    name ``cache``/``trust`` (the CLI passes its flags).
    """
    from keel.tracking.fluent import active_run, start_run

    graph = pipeline.build(**dict(params or {}))
    graph.entry = f"{pipeline.fn.__module__}:{pipeline.fn.__qualname__}"  # type: ignore[attr-defined]
    nested = active_run() is not None
    with start_run(
        experiment=experiment,
        name=None,
        nested=nested,
        tracking_uri=tracking_uri,
        tags={"keel.pipeline": graph.name},
    ) as run:
        store = run.client.store
        pipeline_run_id = store.create_pipeline_run(
            run.run_id, graph.name, params=graph.params, graph=graph_document(graph)
        )
        sink = StoreSink(run.client, run.run_id)
        use_cache = cache and os.environ.get("KEEL_PIPELINE_CACHE", "true").lower() not in {
            "0",
            "false",
            "no",
        }
        with _progress(graph, progress) as on_settle:
            try:
                result = run_graph(
                    graph,
                    executor=executor,
                    max_workers=max_workers,
                    sink=sink,
                    cache=StoreCache(store, _project_of(store, run.info.experiment_id))
                    if use_cache
                    else None,
                    trust=trust,
                    progress=on_settle,
                    options=options,
                )
            finally:
                sink.flush()
        logged, rows = _store_logged_metrics(sink.artifacts, result)
        if rows:  # artifacts of the run, like the outputs: listed, downloadable, in lineage
            store.record_artifacts(run.run_id, rows)
        replay_logged_metrics(run.client, run.run_id, sink.artifacts, result)
        # downstream cache keys name large outputs by identity; lineage wants their content hashes
        stored = {
            record.identities.get(name, sha): sha
            for record in result.nodes.values()
            for name, sha in record.outputs.items()
        }
        store.record_step_runs(
            pipeline_run_id,
            [_step_run(graph, result, node_id, stored, logged.get(node_id)) for node_id in graph.nodes],
        )
        # outputs taken from the cache were made by earlier runs: this run used them (lineage)
        reused = [
            (sha, _artifact_name(node_id, name))
            for node_id, record in result.nodes.items()
            if record.cache_hit
            for name, sha in record.outputs.items()
        ]
        if reused:
            store.record_input_artifacts(run.run_id, reused)
        store.set_pipeline_run_status(pipeline_run_id, "done" if result.ok else "failed")
        cached = sum(1 for record in result.nodes.values() if record.cache_hit)
        run.client.log_batch(
            run.run_id,
            metrics=[
                ("pipeline/steps", len(graph.nodes)),
                ("pipeline/cached_steps", cached),
                ("pipeline/wall_s", result.wall_s),
            ],
        )
        if not result.ok:
            run.client.set_tag(run.run_id, "keel.failed_steps", ", ".join(sorted(result.failed)))
    result.pipeline_run_id = pipeline_run_id  # type: ignore[attr-defined]
    result.run_id = run.run_id  # type: ignore[attr-defined]
    return result


@contextlib.contextmanager
def _progress(graph: Graph, enabled: bool | None) -> Iterator[Callable[[Any], None] | None]:
    """A Rich progress bar on stderr that advances as steps settle; off when not a terminal."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"pipeline {graph.name}", total=len(graph))

        def advance(record: Any) -> None:
            bar.update(task, advance=1, description=f"pipeline {graph.name}: {record.id} {record.status}")

        yield advance


def _store_logged_metrics(
    artifacts: BlobStore, result: RunResult
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, int, str]]]:
    """Store the metrics each step that ran logged, as one JSON blob per step; return the cache
    entries (``{"sha256", "count"}``) that name them by node id, and their artifact records."""
    entries: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, str, int, str]] = []
    for node_id, record in result.nodes.items():
        if record.status != "done" or record.cache_hit or not record.metrics:
            continue
        points = []
        for key, value, step in record.metrics:
            try:
                points.append([str(key), float(value), int(step)])
            except (TypeError, ValueError):  # log_metric refused it too
                continue
        document = json.dumps({"format": "keel-step-metrics", "metrics": points}).encode()
        sha, size = artifacts.put_bytes(document, durable=False)
        entries[node_id] = {"sha256": sha, "count": len(points)}
        rows.append((_artifact_name(node_id, "logged-metrics.keel"), sha, size, "application/json"))
    return entries, rows


def replay_logged_metrics(client: Any, run_id: str, artifacts: BlobStore, result: RunResult) -> None:
    """Log again, on this run, the metrics that the steps served from the cache logged when they ran,
    so a cached run shows them too (same keys, values and steps; timestamps of now)."""
    points: list[tuple[str, float, int]] = []
    for record in result.nodes.values():
        if record.cache_hit and record.logged and record.logged.get("sha256"):
            document = json.loads(artifacts.read_bytes(str(record.logged["sha256"])))
            points.extend((str(k), float(v), int(s)) for k, v, s in document.get("metrics", []))
    if points:
        client.log_batch(run_id, metrics=points)


def _step_run(
    graph: Graph,
    result: RunResult,
    node_id: str,
    stored: Mapping[str, str],
    logged: Mapping[str, Any] | None = None,
) -> StepRun:
    record = result.nodes[node_id]
    components = record.components or {}
    outputs: dict[str, Any] = dict(output_entries(record))
    if logged:
        outputs[METRICS_ENTRY] = dict(logged)  # enters the step cache with the outputs
    return StepRun(
        node=node_id,
        step=graph.nodes[node_id].step.name,
        status="cached" if record.cache_hit else record.status,
        cache_key=record.cache_key,
        cached=record.cache_hit,
        started_at=int(record.started * 1000) if record.started else None,
        ended_at=int(record.ended * 1000) if record.ended else None,
        wall_s=record.wall_s,
        cpu_s=record.cpu_s,
        peak_rss_mb=record.peak_rss / 2**20 if record.peak_rss else None,
        error=record.error,
        inputs={name: stored.get(ident, ident) for name, ident in components.get("inputs", {}).items()},
        outputs=outputs,
        components=components or None,
    )


def stored_graph(document: Mapping[str, Any]) -> Graph:
    """Rebuild a drawable :class:`Graph` from a stored graph document (no step functions needed)."""
    from keel.pipelines.graph import Node, Output
    from keel.pipelines.steps import Step

    graph = Graph(str(document.get("name", "pipeline")))
    steps: dict[str, Step] = {}
    for entry in document.get("nodes", []):
        name = str(entry.get("step") or entry["id"])
        placeholder = steps.get(name)
        if placeholder is None:
            placeholder = steps[name] = Step(_stored_step, name=name)
        arguments = {f"in{i}": Output(parent) for i, parent in enumerate(entry.get("upstream", []))}
        graph.nodes[entry["id"]] = Node(entry["id"], placeholder, arguments)
    return graph


def _stored_step(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for a step function when only a stored graph is drawn."""


def load_pipeline(reference: str) -> Pipeline:
    """The pipeline at ``module:function`` (the current folder is importable, like ``python -m``)."""
    import importlib
    import sys

    from keel.errors import InvalidInputError

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(
            f"name a pipeline as module:function, such as train:training, not {reference!r}"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(f"cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise InvalidInputError(f"{module_name!r} has no pipeline {attribute!r}")
    if not isinstance(target, Pipeline):
        raise InvalidInputError(f"{reference} is not a pipeline: decorate it with @keel.pipelines.pipeline")
    return target
