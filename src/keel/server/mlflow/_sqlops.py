"""Changes MLflow's API offers that keel's ``Store`` protocol does not (yet) have.

Renaming experiments and models, experiment and model tags after creation, model descriptions,
deleting registered models and versions. The server always holds a ``SqlStore``, so these run as
short transactions on its tables; each checks what it changes exists and raises keel's errors.
They belong in the ``Store`` protocol once keel's own client needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from keel import limits
from keel.clock import now_ms
from keel.errors import ConflictError, NotFoundError, StoreError
from keel.store import schema as t

__all__ = [
    "delete_experiment_tag",
    "delete_model_version",
    "delete_model_version_tag",
    "delete_registered_model",
    "delete_registered_model_tag",
    "rename_experiment",
    "rename_registered_model",
    "set_experiment_tag",
    "set_registered_model_tag",
    "update_model_version",
    "update_registered_model",
]


def _sql(store: Any) -> Any:
    if not hasattr(store, "_write") or not hasattr(store, "engine"):
        raise StoreError("this change needs the server's SQL store")
    return store


def _experiment_pk(c: sa.Connection, experiment_id: str) -> int:
    try:
        eid = int(experiment_id)
    except (TypeError, ValueError):
        raise NotFoundError(f"no experiment with id {experiment_id!r}") from None
    if c.execute(sa.select(t.experiments.c.id).where(t.experiments.c.id == eid)).scalar() is None:
        raise NotFoundError(f"no experiment with id {experiment_id!r}")
    return eid


def rename_experiment(store: Any, experiment_id: str, new_name: str) -> None:
    e = t.experiments
    with _sql(store)._write() as c:
        eid = _experiment_pk(c, experiment_id)
        project_id = c.execute(sa.select(e.c.project_id).where(e.c.id == eid)).scalar()
        taken = c.execute(
            sa.select(e.c.id).where(e.c.project_id == project_id, e.c.name == new_name, e.c.id != eid)
        ).scalar()
        if taken is not None:
            raise ConflictError(f"an experiment named {new_name!r} already exists")
        c.execute(sa.update(e).where(e.c.id == eid).values(name=new_name, updated_at=now_ms()))


def set_experiment_tag(store: Any, experiment_id: str, key: str, value: str) -> None:
    limits.check_key(key, "tag key")
    limits.check_tag_value(key, value)
    et = t.experiment_tags
    with _sql(store)._write() as c:
        eid = _experiment_pk(c, experiment_id)
        c.execute(sa.delete(et).where(et.c.experiment_id == eid, et.c.key == key))
        c.execute(sa.insert(et).values(experiment_id=eid, key=key, value=value))
        c.execute(sa.update(t.experiments).where(t.experiments.c.id == eid).values(updated_at=now_ms()))


def delete_experiment_tag(store: Any, experiment_id: str, key: str) -> None:
    et = t.experiment_tags
    with _sql(store)._write() as c:
        eid = _experiment_pk(c, experiment_id)
        if c.execute(sa.delete(et).where(et.c.experiment_id == eid, et.c.key == key)).rowcount == 0:
            raise NotFoundError(f"experiment {experiment_id} has no tag {key!r}")


# -- registry --------------------------------------------------------------------------------
def _model_pk(store: Any, c: sa.Connection, name: str, project: str) -> int:
    return int(store._model_id(c, name, project))


def _version_pk(store: Any, c: sa.Connection, name: str, version: int, project: str) -> int:
    mv = t.model_versions
    mid = _model_pk(store, c, name, project)
    vid = c.execute(sa.select(mv.c.id).where(mv.c.model_id == mid, mv.c.version == version)).scalar()
    if vid is None:
        raise NotFoundError(f"model {name!r} has no version {version}")
    return int(vid)


def update_registered_model(store: Any, name: str, project: str, description: str | None) -> None:
    m = t.registered_models
    with _sql(store)._write() as c:
        mid = _model_pk(store, c, name, project)
        c.execute(sa.update(m).where(m.c.id == mid).values(description=description, updated_at=now_ms()))


def rename_registered_model(store: Any, name: str, new_name: str, project: str) -> None:
    m = t.registered_models
    with _sql(store)._write() as c:
        mid = _model_pk(store, c, name, project)
        if store._model_id(c, new_name, project, must=False) is not None:
            raise ConflictError(f"registered model {new_name!r} already exists")
        c.execute(sa.update(m).where(m.c.id == mid).values(name=new_name, updated_at=now_ms()))


def delete_registered_model(store: Any, name: str, project: str) -> None:
    mv, mvt = t.model_versions, t.model_version_tags
    with _sql(store)._write() as c:
        mid = _model_pk(store, c, name, project)
        version_ids = sa.select(mv.c.id).where(mv.c.model_id == mid)
        c.execute(sa.delete(mvt).where(mvt.c.model_version_id.in_(version_ids)))
        c.execute(sa.delete(t.model_aliases).where(t.model_aliases.c.model_id == mid))
        c.execute(sa.delete(mv).where(mv.c.model_id == mid))
        c.execute(sa.delete(t.registered_model_tags).where(t.registered_model_tags.c.model_id == mid))
        c.execute(sa.delete(t.registered_models).where(t.registered_models.c.id == mid))


def set_registered_model_tag(store: Any, name: str, key: str, value: str, project: str) -> None:
    limits.check_key(key, "tag key")
    limits.check_tag_value(key, value)
    rt = t.registered_model_tags
    with _sql(store)._write() as c:
        mid = _model_pk(store, c, name, project)
        c.execute(sa.delete(rt).where(rt.c.model_id == mid, rt.c.key == key))
        c.execute(sa.insert(rt).values(model_id=mid, key=key, value=value))


def delete_registered_model_tag(store: Any, name: str, key: str, project: str) -> None:
    rt = t.registered_model_tags
    with _sql(store)._write() as c:
        mid = _model_pk(store, c, name, project)
        if c.execute(sa.delete(rt).where(rt.c.model_id == mid, rt.c.key == key)).rowcount == 0:
            raise NotFoundError(f"registered model {name!r} has no tag {key!r}")


def update_model_version(
    store: Any, name: str, version: int, project: str, values: Mapping[str, Any]
) -> None:
    mv = t.model_versions
    with _sql(store)._write() as c:
        vid = _version_pk(store, c, name, version, project)
        c.execute(sa.update(mv).where(mv.c.id == vid).values(**values, updated_at=now_ms()))


def delete_model_version(store: Any, name: str, version: int, project: str) -> None:
    mv, a = t.model_versions, t.model_aliases
    with _sql(store)._write() as c:
        vid = _version_pk(store, c, name, version, project)
        mid = _model_pk(store, c, name, project)
        c.execute(sa.delete(t.model_version_tags).where(t.model_version_tags.c.model_version_id == vid))
        c.execute(sa.delete(a).where(a.c.model_id == mid, a.c.version == version))
        c.execute(sa.delete(mv).where(mv.c.id == vid))


def delete_model_version_tag(store: Any, name: str, version: int, key: str, project: str) -> None:
    mvt = t.model_version_tags
    with _sql(store)._write() as c:
        vid = _version_pk(store, c, name, version, project)
        if c.execute(sa.delete(mvt).where(mvt.c.model_version_id == vid, mvt.c.key == key)).rowcount == 0:
            raise NotFoundError(f"model {name!r} version {version} has no tag {key!r}")
