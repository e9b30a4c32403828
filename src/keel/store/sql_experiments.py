"""Experiment changes after creation for ``SqlStore``: renames and experiment tags.

MLflow's API offers these (``experiments/update``, ``set-experiment-tag``, ...), so the server needs
them as store methods rather than SQL of its own; each is one short transaction that checks the
experiment exists and raises keel's errors.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel import limits
from keel.clock import now_ms
from keel.errors import ConflictError, NotFoundError
from keel.naming import check_stored_name
from keel.store import schema as t
from keel.store.sql_base import SqlBase

__all__ = ["ExperimentChangesMixin"]


class ExperimentChangesMixin(SqlBase):
    def _experiment_pk(self, c: sa.Connection, experiment_id: str) -> int:
        try:
            eid = int(experiment_id)
        except (TypeError, ValueError):
            raise NotFoundError(f"no experiment with id {experiment_id!r}") from None
        if c.execute(sa.select(t.experiments.c.id).where(t.experiments.c.id == eid)).scalar() is None:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        return eid

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        check_stored_name("experiment", new_name)
        e = t.experiments
        with self._write() as c:
            eid = self._experiment_pk(c, experiment_id)
            project_id = c.execute(sa.select(e.c.project_id).where(e.c.id == eid)).scalar()
            taken = c.execute(
                sa.select(e.c.id).where(e.c.project_id == project_id, e.c.name == new_name, e.c.id != eid)
            ).scalar()
            if taken is not None:
                raise ConflictError(f"an experiment named {new_name!r} already exists")
            c.execute(sa.update(e).where(e.c.id == eid).values(name=new_name, updated_at=now_ms()))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        limits.check_key(key, "tag key")
        limits.check_tag_value(key, value)
        et = t.experiment_tags
        with self._write() as c:
            eid = self._experiment_pk(c, experiment_id)
            c.execute(sa.delete(et).where(et.c.experiment_id == eid, et.c.key == key))
            c.execute(sa.insert(et).values(experiment_id=eid, key=key, value=value))
            c.execute(sa.update(t.experiments).where(t.experiments.c.id == eid).values(updated_at=now_ms()))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        et = t.experiment_tags
        with self._write() as c:
            eid = self._experiment_pk(c, experiment_id)
            if c.execute(sa.delete(et).where(et.c.experiment_id == eid, et.c.key == key)).rowcount == 0:
                raise NotFoundError(f"experiment {experiment_id} has no tag {key!r}")
