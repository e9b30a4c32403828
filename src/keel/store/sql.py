"""``SqlStore``: the metadata store on SQLite or PostgreSQL (SQLAlchemy 2 Core)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from keel import limits
from keel.clock import now_ms
from keel.entities import (
    Artifact,
    Dataset,
    DatasetUse,
    Experiment,
    LineageEdge,
    Metric,
    MetricHistory,
    Run,
    RunPage,
    RunStatus,
)
from keel.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ParamConflictError,
)
from keel.ids import new_id
from keel.naming import check_stored_name
from keel.store import schema as t
from keel.store.engine import create_engine, migrate, translate_errors
from keel.store.metrics import Chunk, decode_special, downsample, encode_special, join_chunks
from keel.store.search import parse_filter, parse_order_by
from keel.store.sql_base import SqlBase, current_user, dialect_insert, insert_tags
from keel.store.sql_experiments import ExperimentChangesMixin
from keel.store.sql_pipelines import PipelineMixin
from keel.store.sql_registry import RegistryMixin
from keel.store.sql_search import compile_filter, decode_token, encode_token, int_id, order_column

__all__ = ["SqlStore"]

_IN_CHUNK = 500  # ids per IN (...) list


class SqlStore(ExperimentChangesMixin, RegistryMixin, PipelineMixin, SqlBase):
    """Metadata on SQLite (the default, one file) or PostgreSQL (for teams)."""

    def __init__(self, url: str, *, crash_check: bool = True, search_timeout: float | None = None):
        """``search_timeout``: seconds PostgreSQL may spend on one run search before it cancels the
        query (default: the ``KEEL_SEARCH_TIMEOUT`` environment variable, else
        :data:`keel.limits.SEARCH_TIMEOUT_SECONDS`); SQLite has no such limit."""
        self.url = url
        self.search_timeout = limits.search_timeout(search_timeout)
        with translate_errors(url):
            self.engine = create_engine(url)
        migrate(self.engine, url)
        self._run_pks: dict[str, int] = {}
        self._host = socket.gethostname()
        self._build_statements()
        if crash_check:
            self.mark_crashed_runs()

    def close(self) -> None:
        self.engine.dispose()

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        check_stored_name("experiment", name)
        with self._write() as c:
            pid = self._project_id(c, project)
            exists = c.execute(
                sa.select(t.experiments.c.id).where(
                    t.experiments.c.project_id == pid, t.experiments.c.name == name
                )
            ).scalar()
            if exists is not None:
                raise ConflictError(f"experiment {name!r} already exists in project {project!r}")
            stamp = now_ms()
            eid = c.execute(
                sa.insert(t.experiments).values(
                    project_id=pid,
                    name=name,
                    description=description,
                    lifecycle="active",
                    created_at=stamp,
                    updated_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            insert_tags(c, t.experiment_tags, {"experiment_id": eid}, tags)
        return self.get_experiment(str(eid))

    def get_experiment(self, experiment_id: str) -> Experiment:
        try:
            eid = int(experiment_id)
        except (TypeError, ValueError):
            raise NotFoundError(f"no experiment with id {experiment_id!r}") from None
        found = self._experiments(t.experiments.c.id == int_id(eid))
        if not found:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        return found[0]

    def get_experiment_by_name(self, name: str, *, project: str = "default") -> Experiment | None:
        found = self._experiments(sa.and_(t.experiments.c.name == name, t.projects.c.name == project))
        return found[0] if found else None

    def list_experiments(
        self, *, project: str | None = None, include_deleted: bool = False
    ) -> list[Experiment]:
        clause: Any = sa.true()
        if project is not None:
            clause = sa.and_(clause, t.projects.c.name == project)
        if not include_deleted:
            clause = sa.and_(clause, t.experiments.c.lifecycle == "active")
        return self._experiments(clause)

    def _experiments(self, clause: Any) -> list[Experiment]:
        e, p = t.experiments, t.projects
        query = (
            sa.select(e, p.c.name.label("project"))
            .join(p, p.c.id == e.c.project_id)
            .where(clause)
            .order_by(e.c.id)
        )
        with self._read() as c:
            rows = c.execute(query).mappings().all()
            tag_rows = (
                c.execute(
                    sa.select(t.experiment_tags).where(
                        t.experiment_tags.c.experiment_id.in_([r["id"] for r in rows])
                    )
                ).all()
                if rows
                else []
            )
        tags: dict[int, dict[str, str]] = {}
        for eid, key, value in tag_rows:
            tags.setdefault(eid, {})[key] = value
        return [
            Experiment(
                str(r["id"]),
                r["name"],
                r["project"],
                r["lifecycle"],
                r["created_at"],
                r["updated_at"],
                r["description"],
                tags.get(r["id"], {}),
            )
            for r in rows
        ]

    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> None:
        self.get_experiment(experiment_id)
        with self._write() as c:
            c.execute(
                sa.update(t.experiments)
                .where(t.experiments.c.id == int(experiment_id))
                .values(lifecycle=lifecycle, updated_at=now_ms())
            )

    # -- runs --------------------------------------------------------------------------------
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
    ) -> Run:
        check_stored_name("run", name)
        self.get_experiment(experiment_id)
        run_id = run_id or new_id()
        stamp = start_time if start_time is not None else now_ms()
        with self._write() as c:
            parent_pk = self._run_pk(c, parent_run_id) if parent_run_id else None
            if (
                run_id in self._run_pks
                or c.execute(sa.select(t.runs.c.pk).where(t.runs.c.run_id == run_id)).scalar() is not None
            ):
                raise ConflictError(f"run {run_id} already exists; resume it with start_run(run_id=...)")
            pk = c.execute(
                sa.insert(t.runs).values(
                    run_id=run_id,
                    experiment_id=int(experiment_id),
                    name=name,
                    status=RunStatus.RUNNING.value,
                    lifecycle="active",
                    user=user or current_user(),
                    host=host or self._host,
                    pid=pid,
                    start_time=stamp,
                    heartbeat_at=now_ms(),
                    heartbeat_interval=heartbeat_interval,
                    git_commit=git_commit,
                    git_dirty=git_dirty,
                    entry_point=entry_point,
                    parent_run_pk=parent_pk,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._run_pks[run_id] = int(pk)
            self._set_tags(c, int(pk), tags or {})
        return self.get_run(run_id)

    def count_runs(self, experiment_id: str) -> int:
        with self._read() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count())
                    .select_from(t.runs)
                    .where(t.runs.c.experiment_id == int_id(experiment_id))
                ).scalar()
                or 0
            )

    def get_run(self, run_id: str) -> Run:
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            runs = self._load_runs(c, [pk])
        return runs[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        traceback: str | None = None,
        name: str | None = None,
        cost_usd: float | None = None,
        cost_detail: Mapping[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = RunStatus(status).value
        if end_time is not None:
            values["end_time"] = end_time
        if traceback is not None:
            values["traceback"] = traceback
        if name is not None:
            values["name"] = check_stored_name("run", name)
        if cost_usd is not None:
            values["cost_usd"] = cost_usd
        if cost_detail is not None:
            values["cost_detail"] = json.dumps(cost_detail)
        if not values:
            self.get_run(run_id)  # nothing to change, but a missing run is still an error
            return
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            c.execute(sa.update(t.runs).where(t.runs.c.pk == pk).values(**values))

    def heartbeat(self, run_id: str) -> None:
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            c.execute(sa.update(t.runs).where(t.runs.c.pk == pk).values(heartbeat_at=now_ms()))

    def mark_crashed_runs(self) -> list[str]:
        """Mark CRASHED every RUNNING run whose process is gone.

        A run is gone when it missed two heartbeats, or when it ran on this host under a pid that no
        longer exists (found at once, without waiting for heartbeats). Runs created without a
        heartbeat interval (``Client.create_run``, MLflow-style clients that end runs themselves)
        are only judged by their pid.
        """
        now = now_ms()
        r = t.runs
        with self._read() as c:
            rows = c.execute(
                sa.select(
                    r.c.pk, r.c.run_id, r.c.host, r.c.pid, r.c.heartbeat_at, r.c.heartbeat_interval
                ).where(r.c.status == "RUNNING")
            ).all()
        dead: list[tuple[int, str]] = []
        for pk, run_id, host, pid, beat, interval in rows:
            silent = interval is not None and beat is not None and now - beat > 2000 * interval
            if silent or (host == self._host and pid and not _pid_alive(pid)):
                dead.append((pk, run_id))
        if dead:
            with self._write() as c:
                for pk, _ in dead:
                    c.execute(
                        sa.update(r)
                        .where(r.c.pk == pk, r.c.status == "RUNNING")
                        .values(
                            status=RunStatus.CRASHED.value,
                            end_time=sa.func.coalesce(r.c.heartbeat_at, now),
                        )
                    )
        return [run_id for _, run_id in dead]

    def set_run_lifecycle(self, run_id: str, lifecycle: str) -> None:
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            c.execute(sa.update(t.runs).where(t.runs.c.pk == pk).values(lifecycle=lifecycle))

    def delete_run_permanently(self, run_id: str) -> None:
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            # a pipeline run goes with its run: its step records and the cache entries they hold
            pipeline_ids = sa.select(t.pipeline_runs.c.id).where(t.pipeline_runs.c.run_pk == pk)
            step_ids = sa.select(t.step_runs.c.id).where(t.step_runs.c.pipeline_run_id.in_(pipeline_ids))
            c.execute(sa.delete(t.step_cache).where(t.step_cache.c.step_run_id.in_(step_ids)))
            c.execute(sa.delete(t.step_runs).where(t.step_runs.c.pipeline_run_id.in_(pipeline_ids)))
            c.execute(sa.delete(t.pipeline_runs).where(t.pipeline_runs.c.run_pk == pk))
            for table in (
                t.params,
                t.tags,
                t.metric_chunks,
                t.latest_metrics,
                t.run_inputs,
                t.artifacts,
                t.lineage_edges,
            ):
                c.execute(sa.delete(table).where(table.c.run_pk == pk))
            c.execute(sa.delete(t.ingest_batches).where(t.ingest_batches.c.run_pk == pk))
            c.execute(sa.update(t.model_versions).where(t.model_versions.c.run_pk == pk).values(run_pk=None))
            c.execute(sa.delete(t.runs).where(t.runs.c.pk == pk))
        self._run_pks.pop(run_id, None)

    # -- params and tags ---------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if not params:
            return
        clean = limits.clean_params(params)
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            existing = dict(
                c.execute(
                    sa.select(t.params.c.key, t.params.c.value).where(
                        t.params.c.run_pk == pk, t.params.c.key.in_(list(clean))
                    )
                ).all()
            )
            for key, value in clean.items():
                if key in existing and existing[key] != value:
                    raise ParamConflictError(
                        f"param {key!r} of run {run_id} is already {_short(existing[key])} and cannot "
                        f"change to {_short(value)}: params are immutable. Start a new run, or log the "
                        "changing value as a metric or tag.",
                        key=key,
                        old=existing[key],
                        new=value,
                    )
            new = [{"run_pk": pk, "key": k, "value": v} for k, v in clean.items() if k not in existing]
            if new:
                c.execute(sa.insert(t.params), new)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        with self._write() as c:
            self._set_tags(c, self._run_pk(c, run_id), tags)

    def _set_tags(self, c: sa.Connection, pk: int, tags: Mapping[str, Any]) -> None:
        clean = limits.clean_tags(tags)
        if not clean:
            return
        c.execute(sa.delete(t.tags).where(t.tags.c.run_pk == pk, t.tags.c.key.in_(list(clean))))
        c.execute(sa.insert(t.tags), [{"run_pk": pk, "key": k, "value": v} for k, v in clean.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            deleted = c.execute(sa.delete(t.tags).where(t.tags.c.run_pk == pk, t.tags.c.key == key))
            if deleted.rowcount == 0:
                raise NotFoundError(f"run {run_id} has no tag {key!r}")

    # -- metrics -----------------------------------------------------------------------------
    def write_metric_batch(self, batch_id: str, run_id: str, chunks: Sequence[Chunk]) -> bool:
        """Store one batch of points exactly once; ``False`` when ``batch_id`` was already stored."""
        if not chunks:
            return True
        for chunk in chunks:
            limits.check_key(chunk.key, "metric key")
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            if c.execute(self._seen_batch, {"batch": batch_id}).first() is not None:
                return False
            c.execute(
                self._insert_batch,
                {
                    "batch_id": batch_id,
                    "run_pk": pk,
                    "points": sum(ch.count for ch in chunks),
                    "created_at": now_ms(),
                },
            )
            c.execute(
                self._insert_chunks,
                [
                    {
                        "run_pk": pk,
                        "key": ch.key,
                        "count": ch.count,
                        "min_step": ch.min_step,
                        "max_step": ch.max_step,
                        "steps": ch.steps,
                        "timestamps": ch.timestamps,
                        "vals": ch.values,
                    }
                    for ch in chunks
                ],
            )
            self._upsert_latest(c, pk, chunks)
        return True

    def _upsert_latest(self, c: sa.Connection, pk: int, chunks: Sequence[Chunk]) -> None:
        rows = []
        for chunk in chunks:
            step, stamp, value = chunk.latest()
            column_value, special = encode_special(value)
            rows.append(
                {
                    "run_pk": pk,
                    "key": chunk.key,
                    "value": column_value,
                    "special": special,
                    "step": step,
                    "timestamp": stamp,
                }
            )
        c.execute(self._upsert_latest_statement, rows)

    def _build_statements(self) -> None:
        """Statements of the ingest path, built once: constructing them costs more than running them."""
        self._seen_batch = sa.select(t.ingest_batches.c.batch_id).where(
            t.ingest_batches.c.batch_id == sa.bindparam("batch")
        )
        self._insert_batch = sa.insert(t.ingest_batches)
        self._insert_chunks = sa.insert(t.metric_chunks)
        statement = dialect_insert(self.engine.dialect.name, t.latest_metrics)
        lm = t.latest_metrics
        newer = sa.or_(
            statement.excluded.step > lm.c.step,
            sa.and_(statement.excluded.step == lm.c.step, statement.excluded.timestamp >= lm.c.timestamp),
        )
        self._upsert_latest_statement = statement.on_conflict_do_update(
            index_elements=[lm.c.run_pk, lm.c.key],
            set_={
                "value": statement.excluded.value,
                "special": statement.excluded.special,
                "step": statement.excluded.step,
                "timestamp": statement.excluded.timestamp,
            },
            where=newer,
        )

    def get_metric_history(self, run_id: str, key: str, *, max_points: int | None = None) -> MetricHistory:
        mc = t.metric_chunks
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            rows = c.execute(
                sa.select(mc.c.steps, mc.c.timestamps, mc.c.vals)
                .where(mc.c.run_pk == pk, mc.c.key == key)
                .order_by(mc.c.id)
            ).all()
        steps, stamps, values = join_chunks([tuple(r) for r in rows])
        if max_points is not None:
            if max_points < 4:
                raise InvalidInputError("max_points must be at least 4 (first, min, max and last)")
            steps, stamps, values = downsample(steps, stamps, values, max_points)
        return MetricHistory(key, steps, stamps, values)

    def list_metric_keys(self, run_id: str) -> list[str]:
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            return list(
                c.execute(
                    sa.select(t.latest_metrics.c.key)
                    .where(t.latest_metrics.c.run_pk == pk)
                    .order_by(t.latest_metrics.c.key)
                ).scalars()
            )

    # -- inputs, artifacts, lineage ----------------------------------------------------------
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
    ) -> Dataset:
        check_stored_name("dataset", name)
        d = t.datasets
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            did = c.execute(
                sa.select(d.c.id).where(d.c.name == name, d.c.fingerprint == fingerprint)
            ).scalar()
            if did is None:
                did = c.execute(
                    sa.insert(d).values(
                        name=name,
                        fingerprint=fingerprint,
                        schema=json.dumps(schema) if schema else None,
                        row_count=row_count,
                        source=source,
                        profile_sha256=profile_sha256,
                        created_at=now_ms(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            linked = c.execute(
                sa.select(t.run_inputs.c.run_pk).where(
                    t.run_inputs.c.run_pk == pk,
                    t.run_inputs.c.dataset_id == did,
                    t.run_inputs.c.context == context,
                )
            ).scalar()
            if linked is None:
                c.execute(sa.insert(t.run_inputs).values(run_pk=pk, dataset_id=did, context=context))
        return next(ds for ds in self.list_run_inputs(run_id) if ds.dataset_id == did)

    def list_run_inputs(self, run_id: str) -> list[Dataset]:
        d, ri = t.datasets, t.run_inputs
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            rows = (
                c.execute(
                    sa.select(d, ri.c.context)
                    .join(ri, ri.c.dataset_id == d.c.id)
                    .where(ri.c.run_pk == pk)
                    .order_by(d.c.id)
                )
                .mappings()
                .all()
            )
        return [_dataset(r) for r in rows]

    def record_artifact(self, run_id: str, name: str, sha256: str, size: int, media_type: str) -> Artifact:
        return self.record_artifacts(run_id, [(name, sha256, size, media_type)])[0]

    def record_artifacts(self, run_id: str, artifacts: Sequence[tuple[str, str, int, str]]) -> list[Artifact]:
        """Record several (name, sha256, size, media type) outputs of a run in one transaction.

        A name given twice keeps its last entry; a name already recorded on the run is replaced."""
        a = t.artifacts
        stamp = now_ms()
        latest = {name: (name, sha, size, media) for name, sha, size, media in artifacts}
        rows = list(latest.values())
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            self._check_registered_files(c, pk, run_id, [(name, sha) for name, sha, _, _ in rows])
            names = list(latest)
            for start in range(0, len(names), _IN_CHUNK):
                chunk = names[start : start + _IN_CHUNK]
                c.execute(sa.delete(a).where(a.c.run_pk == pk, a.c.name.in_(chunk)))
            if rows:
                c.execute(
                    sa.insert(a),
                    [
                        {"run_pk": pk, "name": name, "sha256": sha, "size": size, "media_type": media}
                        | {"created_at": stamp}
                        for name, sha, size, media in rows
                    ],
                )
            self._edges(c, pk, "output", [(sha, name) for name, sha, _, _ in rows], stamp)
        return [Artifact(run_id, name, sha, size, media, stamp) for name, sha, size, media in rows]

    def record_input_artifact(self, run_id: str, sha256: str, name: str) -> None:
        self.record_input_artifacts(run_id, [(sha256, name)])

    def record_input_artifacts(self, run_id: str, items: Sequence[tuple[str, str]]) -> None:
        """Record that the run read these (sha256, name) artifacts, in one transaction."""
        with self._write() as c:
            self._edges(c, self._run_pk(c, run_id), "input", items, now_ms())

    def dataset_usage(self, name: str, fingerprint: str | None = None) -> list[DatasetUse]:
        """Every run that took a version of dataset ``name`` (or only ``fingerprint``) as input,
        oldest first."""
        d, ri, r = t.datasets, t.run_inputs, t.runs
        query = (
            sa.select(d, ri.c.context, r.c.run_id)
            .join(ri, ri.c.dataset_id == d.c.id)
            .join(r, r.c.pk == ri.c.run_pk)
            .where(d.c.name == name)
        )
        if fingerprint:
            query = query.where(d.c.fingerprint.startswith(fingerprint, autoescape=True))
        with self._read() as c:
            rows = c.execute(query.order_by(r.c.start_time, r.c.pk)).mappings().all()
        return [DatasetUse(_dataset(row), row["run_id"]) for row in rows]

    def _edges(
        self, c: sa.Connection, pk: int, direction: str, items: Sequence[tuple[str, str]], stamp: int
    ) -> None:
        """Lineage edges (sha256, name) of one run in one direction; those already there are kept."""
        e = t.lineage_edges
        wanted = list(dict.fromkeys(items))
        shas = sorted({sha for sha, _ in wanted})
        existing: set[tuple[str, str]] = set()
        for start in range(0, len(shas), _IN_CHUNK):
            chunk = shas[start : start + _IN_CHUNK]
            found = c.execute(
                sa.select(e.c.sha256, e.c.name).where(
                    e.c.run_pk == pk, e.c.direction == direction, e.c.sha256.in_(chunk)
                )
            )
            existing.update((sha, name) for sha, name in found)
        rows = [
            {"run_pk": pk, "sha256": sha, "direction": direction, "name": name, "created_at": stamp}
            for sha, name in wanted
            if (sha, name) not in existing
        ]
        if rows:
            c.execute(sa.insert(e), rows)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        a = t.artifacts
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            query = sa.select(a).where(a.c.run_pk == pk)
            if prefix:
                query = query.where(
                    sa.or_(
                        a.c.name == prefix.rstrip("/"),
                        a.c.name.startswith(prefix.rstrip("/") + "/", autoescape=True),
                    )
                )
            rows = c.execute(query.order_by(a.c.name)).mappings().all()
        return [
            Artifact(run_id, r["name"], r["sha256"], r["size"], r["media_type"], r["created_at"])
            for r in rows
        ]

    def lineage(self, sha256: str) -> list[LineageEdge]:
        """Every run that produced or consumed the artifact with this hash."""
        e, r = t.lineage_edges, t.runs
        with self._read() as c:
            rows = c.execute(
                sa.select(r.c.run_id, e.c.sha256, e.c.direction, e.c.name, e.c.created_at)
                .join(r, r.c.pk == e.c.run_pk)
                .where(e.c.sha256 == sha256)
                .order_by(e.c.created_at)
            ).all()
        return [LineageEdge(*row) for row in rows]

    def run_lineage(self, run_id: str) -> list[LineageEdge]:
        e = t.lineage_edges
        with self._read() as c:
            pk = self._run_pk(c, run_id)
            rows = c.execute(
                sa.select(e.c.sha256, e.c.direction, e.c.name, e.c.created_at)
                .where(e.c.run_pk == pk)
                .order_by(e.c.id)
            ).all()
        return [LineageEdge(run_id, *row) for row in rows]

    # -- search ------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        if not 1 <= max_results <= 50_000:
            raise InvalidInputError(f"max_results must be between 1 and 50,000, not {max_results}")
        tree = parse_filter(filter_string)
        orders = parse_order_by(list(order_by or []))
        offset = decode_token(page_token)
        r = t.runs
        query = sa.select(r.c.pk)
        if experiment_ids is not None:  # [] matches nothing; None means every experiment
            query = query.where(r.c.experiment_id.in_([int_id(e) for e in experiment_ids]))
        if not include_deleted:
            query = query.where(r.c.lifecycle == "active")
        if tree is not None:
            query = query.where(compile_filter(tree))
        for index, order in enumerate(orders):
            query, column = order_column(query, order, index)
            query = query.order_by(column.is_(None), column.asc() if order.ascending else column.desc())
        query = query.order_by(r.c.start_time.desc(), r.c.run_id).limit(max_results + 1).offset(offset)
        with self._read() as c:
            pks = self._search_pks(c, query)
            page = RunPage(self._load_runs(c, pks[:max_results]))
        page.token = encode_token(offset + max_results) if len(pks) > max_results else None
        return page

    def _search_pks(self, c: sa.Connection, query: Any) -> list[int]:
        """Run a search under ``search_timeout`` on PostgreSQL: the server cancels the query itself,
        so a search that outlives its client (a closed browser tab, a killed script) ends too.
        JIT compilation is off for it: a long filter's many sub-plans made PostgreSQL spend seconds
        compiling a query that runs in milliseconds."""
        if c.dialect.name != "postgresql":
            return list(c.execute(query).scalars())
        milliseconds = max(1, round(self.search_timeout * 1000))
        c.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        c.exec_driver_sql("SET LOCAL jit = off")
        try:
            return list(c.execute(query).scalars())
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "57014":  # query_canceled
                raise
            raise InvalidInputError(
                f"the search took longer than {self.search_timeout:g} s (the search timeout) and was "
                "cancelled: narrow the filter (fewer conditions, or an experiment id), or raise "
                "KEEL_SEARCH_TIMEOUT where the store is opened (the server's environment)"
            ) from None

    def _load_runs(self, c: sa.Connection, pks: Sequence[int]) -> list[Run]:
        if not pks:
            return []
        r = t.runs
        parent = r.alias("parent")
        rows: dict[int, Any] = {}
        params: dict[int, dict[str, str]] = {}
        tags: dict[int, dict[str, str]] = {}
        metrics: dict[int, dict[str, Metric]] = {}
        for i in range(0, len(pks), _IN_CHUNK):
            part = list(pks[i : i + _IN_CHUNK])
            for row in c.execute(
                sa.select(r, parent.c.run_id.label("parent_run_id"))
                .outerjoin(parent, parent.c.pk == r.c.parent_run_pk)
                .where(r.c.pk.in_(part))
            ).mappings():
                rows[row["pk"]] = row
            for pk, key, value in c.execute(sa.select(t.params).where(t.params.c.run_pk.in_(part))):
                params.setdefault(pk, {})[key] = value
            for pk, key, value in c.execute(sa.select(t.tags).where(t.tags.c.run_pk.in_(part))):
                tags.setdefault(pk, {})[key] = value
            lm = t.latest_metrics
            for pk, key, value, special, step, stamp in c.execute(
                sa.select(lm.c.run_pk, lm.c.key, lm.c.value, lm.c.special, lm.c.step, lm.c.timestamp).where(
                    lm.c.run_pk.in_(part)
                )
            ):
                metrics.setdefault(pk, {})[key] = Metric(key, decode_special(value, special), step, stamp)
        result = []
        for pk in pks:
            row = rows[pk]
            self._run_pks[row["run_id"]] = pk
            result.append(
                Run(
                    run_id=row["run_id"],
                    experiment_id=str(row["experiment_id"]),
                    name=row["name"],
                    status=RunStatus(row["status"]),
                    lifecycle_stage=row["lifecycle"],
                    user=row["user"],
                    host=row["host"],
                    pid=row["pid"],
                    start_time=row["start_time"],
                    end_time=row["end_time"],
                    heartbeat_at=row["heartbeat_at"],
                    git_commit=row["git_commit"],
                    git_dirty=row["git_dirty"],
                    entry_point=row["entry_point"],
                    parent_run_id=row["parent_run_id"],
                    params=params.get(pk, {}),
                    tags=tags.get(pk, {}),
                    metrics=metrics.get(pk, {}),
                    traceback=row["traceback"],
                    cost_usd=row["cost_usd"],
                    cost_detail=json.loads(row["cost_detail"]) if row["cost_detail"] else None,
                )
            )
        return result


def _dataset(row: Any) -> Dataset:
    return Dataset(
        row["id"],
        row["name"],
        row["fingerprint"],
        json.loads(row["schema"]) if row["schema"] else None,
        row["row_count"],
        row["source"],
        row["created_at"],
        row["profile_sha256"],
        row.get("context"),
    )


def _short(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
