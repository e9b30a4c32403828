"""Pipeline runs, step runs and the step cache for ``SqlStore``."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from keel.clock import now_ms
from keel.entities import PipelineRun, StepRun, StepUse
from keel.errors import InvalidInputError, NotFoundError
from keel.hashing import check_sha256
from keel.limits import check_id
from keel.store import schema as t
from keel.store.sql_base import SqlBase

__all__ = ["PipelineMixin"]

_STATUSES = {"pending", "running", "done", "cached", "failed", "skipped"}
_RUN_STATUSES = {"running", "done", "failed"}


def _dumps(value: Any) -> str:
    """JSON that keeps NaN and infinities (as JSON's non-standard tokens Python reads back)."""
    return json.dumps(value, sort_keys=True, default=str, allow_nan=True)


class PipelineMixin(SqlBase):
    def create_pipeline_run(
        self,
        run_id: str,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        graph: Mapping[str, Any],
        resumed_from: int | None = None,
    ) -> int:
        """Record a pipeline run carried by the tracking run ``run_id``; return its id."""
        with self._write() as c:
            pk = self._run_pk(c, run_id)
            new_id = c.execute(
                sa.insert(t.pipeline_runs).values(
                    run_pk=pk,
                    pipeline=pipeline,
                    params=_dumps(dict(params)),
                    graph=_dumps(dict(graph)),
                    status="running",
                    resumed_from=resumed_from,
                    created_at=now_ms(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(new_id)

    def set_pipeline_run_status(self, pipeline_run_id: int, status: str) -> None:
        if status not in _RUN_STATUSES:
            raise InvalidInputError(f"pipeline run status must be one of {sorted(_RUN_STATUSES)}")
        with self._write() as c:
            done = c.execute(
                sa.update(t.pipeline_runs)
                .where(t.pipeline_runs.c.id == pipeline_run_id)
                .values(status=status)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no pipeline run {pipeline_run_id}")

    def record_step_runs(self, pipeline_run_id: int, steps: Sequence[StepRun]) -> None:
        """Insert or replace step records (by node) in one transaction; finished, uncached steps with
        a cache key also enter the step cache, so a later run can reuse their outputs."""
        if not steps:
            return
        for step in steps:
            if step.status not in _STATUSES:
                raise InvalidInputError(
                    f"step status must be one of {sorted(_STATUSES)}, not {step.status!r}"
                )
        sr = t.step_runs
        with self._write() as c:
            nodes = [step.node for step in steps]
            c.execute(sa.delete(sr).where(sr.c.pipeline_run_id == pipeline_run_id, sr.c.node.in_(nodes)))
            c.execute(sa.insert(sr), [_step_row(pipeline_run_id, step) for step in steps])
            fresh = [s for s in steps if s.status == "done" and s.cache_key and not s.cached]
            if fresh:
                ids = dict(
                    c.execute(
                        sa.select(sr.c.node, sr.c.id).where(
                            sr.c.pipeline_run_id == pipeline_run_id, sr.c.node.in_([s.node for s in fresh])
                        )
                    ).all()
                )
                keys = [s.cache_key for s in fresh]
                c.execute(sa.delete(t.step_cache).where(t.step_cache.c.cache_key.in_(keys)))
                c.execute(
                    sa.insert(t.step_cache),
                    [
                        {
                            "cache_key": s.cache_key,
                            "step_run_id": ids[s.node],
                            "outputs": _dumps(dict(s.outputs)),
                            "created_at": now_ms(),
                        }
                        for s in fresh
                    ],
                )

    def lookup_step_cache(
        self, cache_keys: Sequence[str], *, projects: Collection[str] | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """Outputs stored under each known cache key (unknown keys are absent from the result).

        ``projects`` keeps only entries written by step runs of those projects (``None``: every
        project); the server passes the caller's, so that one project never reuses, nor learns
        of, another's outputs."""
        statement = getattr(self, "_lookup_cache_statement", None)
        if statement is None:  # built once: constructing it costs more than running it
            statement = self._lookup_cache_statement = sa.select(
                t.step_cache.c.cache_key, t.step_cache.c.outputs
            ).where(t.step_cache.c.cache_key.in_(sa.bindparam("keys", expanding=True)))
        if projects is not None:
            statement = statement.where(t.step_cache.c.step_run_id.in_(_step_runs_of(projects)))
        found: dict[str, Mapping[str, Any]] = {}
        with self._read() as c:
            for start in range(0, len(cache_keys), 500):
                part = list(cache_keys[start : start + 500])
                for key, outputs in c.execute(statement, {"keys": part}):
                    found[key] = json.loads(outputs)
        return found

    def step_uses(self, sha256: str) -> list[StepUse]:
        """Pipeline steps that produced or read the artifact ``sha256``, oldest first."""
        sr, pr = t.step_runs, t.pipeline_runs
        pattern = f"%{check_sha256(sha256)}%"  # 64 hex characters: no false matches in the JSON
        with self._read() as c:
            rows = (
                c.execute(
                    sa.select(sr, pr.c.pipeline, t.runs.c.run_id)
                    .join(pr, pr.c.id == sr.c.pipeline_run_id)
                    .join(t.runs, t.runs.c.pk == pr.c.run_pk)
                    .where(sa.or_(sr.c.outputs.like(pattern), sr.c.inputs.like(pattern)))
                    .order_by(sr.c.id)
                )
                .mappings()
                .all()
            )
        uses: list[StepUse] = []
        for row in rows:
            for direction, column in (("input", "inputs"), ("output", "outputs")):
                for name, value in json.loads(row[column]).items():
                    sha = value.get("sha256") if isinstance(value, dict) else value
                    if sha == sha256 and not (direction == "output" and row["cached"]):
                        uses.append(
                            StepUse(
                                pipeline_run_id=row["pipeline_run_id"],
                                run_id=row["run_id"],
                                pipeline=row["pipeline"],
                                node=row["node"],
                                step=row["step"],
                                direction=direction,
                                name=name,
                                status=row["status"],
                                started_at=row["started_at"],
                            )
                        )
        return uses

    def find_step_runs(self, cache_key: str, *, projects: Collection[str] | None = None) -> list[StepRun]:
        """Every recorded step run with this cache key, newest first (for explanations); with
        ``projects``, only those of pipelines run in these projects."""
        sr = t.step_runs
        query = sa.select(sr).where(sr.c.cache_key == cache_key)
        if projects is not None:
            query = query.where(sr.c.id.in_(_step_runs_of(projects)))
        with self._read() as c:
            rows = c.execute(query.order_by(sr.c.id.desc())).mappings()
            return [_step(row) for row in rows]

    def get_pipeline_run(self, pipeline_run_id: int) -> PipelineRun:
        found = self._pipeline_runs(t.pipeline_runs.c.id == check_id(pipeline_run_id, "pipeline run id"), 1)
        if not found:
            raise NotFoundError(f"no pipeline run {pipeline_run_id}; `keel pipeline list` shows them")
        return found[0]

    def get_pipeline_run_by_run_id(self, run_id: str) -> PipelineRun:
        found = self._pipeline_runs(t.runs.c.run_id == run_id, 1)
        if not found:
            raise NotFoundError(f"run {run_id} is not a pipeline run")
        return found[0]

    def list_pipeline_runs(self, pipeline: str | None = None, max_results: int = 100) -> list[PipelineRun]:
        clause = t.pipeline_runs.c.pipeline == pipeline if pipeline else sa.true()
        return self._pipeline_runs(clause, max_results)

    def _pipeline_runs(self, clause: Any, limit: int) -> list[PipelineRun]:
        pr, sr = t.pipeline_runs, t.step_runs
        with self._read() as c:
            rows = (
                c.execute(
                    sa.select(pr, t.runs.c.run_id)
                    .join(t.runs, t.runs.c.pk == pr.c.run_pk)
                    .where(clause)
                    .order_by(pr.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            ids = [row["id"] for row in rows]
            steps: dict[int, list[StepRun]] = {}
            if ids:
                for row in c.execute(
                    sa.select(sr).where(sr.c.pipeline_run_id.in_(ids)).order_by(sr.c.id)
                ).mappings():
                    steps.setdefault(row["pipeline_run_id"], []).append(_step(row))
        return [
            PipelineRun(
                pipeline_run_id=row["id"],
                run_id=row["run_id"],
                pipeline=row["pipeline"],
                params=json.loads(row["params"]),
                graph=json.loads(row["graph"]),
                status=row["status"],
                created_at=row["created_at"],
                resumed_from=row["resumed_from"],
                steps=tuple(steps.get(row["id"], ())),
            )
            for row in rows
        ]


def _step_runs_of(projects: Collection[str]) -> Any:
    """A subquery of the ids of the step runs of pipelines run in ``projects``."""
    return (
        sa.select(t.step_runs.c.id)
        .select_from(
            t.join_run_project(
                t.step_runs.join(t.pipeline_runs, t.pipeline_runs.c.id == t.step_runs.c.pipeline_run_id),
                t.pipeline_runs.c.run_pk,
            )
        )
        .where(t.projects.c.name.in_(sorted(projects)))
    )


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _step_row(pipeline_run_id: int, step: StepRun) -> dict[str, Any]:
    return {
        "pipeline_run_id": pipeline_run_id,
        "node": step.node,
        "step": step.step,
        "status": step.status,
        "cache_key": step.cache_key,
        "cached": step.cached,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "wall_s": _finite(step.wall_s),
        "cpu_s": _finite(step.cpu_s),
        "peak_rss_mb": _finite(step.peak_rss_mb),
        "error": step.error,
        "inputs": _dumps(dict(step.inputs)),
        "outputs": _dumps(dict(step.outputs)),
        "components": _dumps(dict(step.components)) if step.components is not None else None,
    }


def _step(row: Any) -> StepRun:
    return StepRun(
        node=row["node"],
        step=row["step"],
        status=row["status"],
        cache_key=row["cache_key"],
        cached=bool(row["cached"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        wall_s=row["wall_s"],
        cpu_s=row["cpu_s"],
        peak_rss_mb=row["peak_rss_mb"],
        error=row["error"],
        inputs=json.loads(row["inputs"]),
        outputs=json.loads(row["outputs"]),
        components=json.loads(row["components"]) if row["components"] else None,
    )
