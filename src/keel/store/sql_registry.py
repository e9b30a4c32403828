"""Registry and comments for ``SqlStore``: registered models, versions, aliases, tags, comments."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from keel import limits
from keel.clock import now_ms
from keel.entities import Comment, ModelVersion, RegisteredModel
from keel.errors import ConflictError, InvalidInputError, NotFoundError
from keel.naming import check_stored_name
from keel.store import schema as t
from keel.store.like import LikePattern, LikePatternError, parse_like
from keel.store.sql_base import SqlBase, current_user, insert_tags
from keel.store.sql_search import like_clause

__all__ = ["RegistryMixin"]

#: how the MLflow routes record a version whose files are not a folder of its own run
_MLFLOW_SCHEME = "mlflow-artifacts:/"


class RegistryMixin(SqlBase):
    # -- registry ----------------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        check_stored_name("model", name)
        with self._write() as c:
            pid = self._project_id(c, project)
            if self._model_id(c, name, project, must=False) is not None:
                raise ConflictError(f"registered model {name!r} already exists in project {project!r}")
            stamp = now_ms()
            mid = c.execute(
                sa.insert(t.registered_models).values(
                    project_id=pid,
                    name=name,
                    description=description,
                    created_at=stamp,
                    updated_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            insert_tags(c, t.registered_model_tags, {"model_id": mid}, tags)
        return self.get_registered_model(name, project=project)

    def _model_id(self, c: sa.Connection, name: str, project: str, must: bool = True) -> int | None:
        m, p = t.registered_models, t.projects
        mid = c.execute(
            sa.select(m.c.id).join(p, p.c.id == m.c.project_id).where(m.c.name == name, p.c.name == project)
        ).scalar()
        if mid is None and must:
            raise NotFoundError(
                f"no registered model {name!r} in project {project!r}; `keel models list` shows the models"
            )
        return mid

    def get_registered_model(self, name: str, *, project: str = "default") -> RegisteredModel:
        found = self._models(sa.and_(t.registered_models.c.name == name, t.projects.c.name == project))
        if not found:
            raise NotFoundError(
                f"no registered model {name!r} in project {project!r}; `keel models list` shows the models"
            )
        return found[0]

    def list_registered_models(
        self, *, project: str | None = None, name_like: str | None = None
    ) -> list[RegisteredModel]:
        clause: Any = sa.true()
        if project is not None:
            clause = sa.and_(clause, t.projects.c.name == project)
        if name_like:
            clause = sa.and_(clause, like_clause(t.registered_models.c.name, _like_pattern(name_like)))
        return self._models(clause)

    def _models(self, clause: Any) -> list[RegisteredModel]:
        m, p, mv = t.registered_models, t.projects, t.model_versions
        latest = sa.select(sa.func.max(mv.c.version)).where(mv.c.model_id == m.c.id).scalar_subquery()
        query = (
            sa.select(m, p.c.name.label("project"), latest.label("latest"))
            .join(p, p.c.id == m.c.project_id)
            .where(clause)
            .order_by(m.c.name)
        )
        with self._read() as c:
            rows = c.execute(query).mappings().all()
            ids = [r["id"] for r in rows]
            tag_rows = (
                c.execute(
                    sa.select(t.registered_model_tags).where(t.registered_model_tags.c.model_id.in_(ids))
                ).all()
                if ids
                else []
            )
            alias_rows = (
                c.execute(sa.select(t.model_aliases).where(t.model_aliases.c.model_id.in_(ids))).all()
                if ids
                else []
            )
        tags: dict[int, dict[str, str]] = {}
        for mid, key, value in tag_rows:
            tags.setdefault(mid, {})[key] = value
        aliases: dict[int, dict[str, int]] = {}
        for mid, alias, version in alias_rows:
            aliases.setdefault(mid, {})[alias] = version
        return [
            RegisteredModel(
                r["name"],
                r["project"],
                r["description"],
                r["created_at"],
                r["updated_at"],
                tags.get(r["id"], {}),
                aliases.get(r["id"], {}),
                r["latest"],
            )
            for r in rows
        ]

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
    ) -> ModelVersion:
        mv = t.model_versions
        with self._write() as c:
            mid = self._model_id(c, name, project)
            run_pk = self._run_pk(c, run_id) if run_id else None
            version = (
                c.execute(sa.select(sa.func.max(mv.c.version)).where(mv.c.model_id == mid)).scalar() or 0
            ) + 1
            stamp = now_ms()
            vid = c.execute(
                sa.insert(mv).values(
                    model_id=mid,
                    version=version,
                    run_pk=run_pk,
                    artifact_sha256=artifact_sha256,
                    artifact_name=artifact_name,
                    flavor=flavor,
                    signature=json.dumps(signature) if signature else None,
                    status="READY",
                    description=description,
                    created_at=stamp,
                    updated_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            insert_tags(c, t.model_version_tags, {"model_version_id": vid}, tags)
            c.execute(
                sa.update(t.registered_models).where(t.registered_models.c.id == mid).values(updated_at=stamp)
            )
        return self.get_model_version(name, version, project=project)

    def _check_registered_files(
        self, c: sa.Connection, run_pk: int, run_id: str, rows: Sequence[tuple[str, str]]
    ) -> None:
        """Refuse (name, sha256) rows that would change or add a file of a registered MLflow model.

        A keel version pins its manifest's sha256, which pins every file, so a later artifact under
        the same name cannot change what it loads. A version registered through MLflow's client is
        loaded by MLflow from the run's folder by name, with no hash check, so that folder is frozen
        once registered: re-uploading the same bytes is accepted, anything else is a ConflictError.
        """
        frozen = self._registered_mlflow_folders(c, run_pk, run_id)
        if not frozen or not rows:
            return
        a = t.artifacts
        current = dict(
            c.execute(
                sa.select(a.c.name, a.c.sha256).where(
                    a.c.run_pk == run_pk, a.c.name.in_([name for name, _ in rows])
                )
            ).all()
        )
        for name, sha in rows:
            for folder, model, version in frozen:
                inside = not folder or name == folder or name.startswith(folder + "/")
                if inside and current.get(name) != sha:
                    raise ConflictError(
                        f"artifact {name!r} of run {run_id} is part of version {version} of registered "
                        f"model {model!r}, whose files cannot change after registration; log the new "
                        "files under another artifact path (or in a new run) and register that"
                    )

    def _registered_mlflow_folders(
        self, c: sa.Connection, run_pk: int, run_id: str
    ) -> list[tuple[str, str, int]]:
        """(folder in this run, model name, version) for each MLflow version whose files it holds."""
        mv, rm = t.model_versions, t.registered_models
        found = c.execute(
            sa.select(mv.c.artifact_name, mv.c.run_pk, rm.c.name, mv.c.version)
            .join(rm, rm.c.id == mv.c.model_id)
            .where(
                mv.c.flavor == "mlflow",
                sa.or_(mv.c.run_pk == run_pk, mv.c.artifact_name.like(f"{_MLFLOW_SCHEME}%{run_id}%")),
            )
        ).all()
        folders: list[tuple[str, str, int]] = []
        for artifact_name, version_run_pk, model, version in found:
            name = artifact_name or ""
            if not name.startswith(_MLFLOW_SCHEME):
                if version_run_pk == run_pk:  # a folder of the version's own run
                    folders.append((name.strip("/"), model, version))
                continue
            kind, _, rest = name[len(_MLFLOW_SCHEME) :].strip("/").partition("/")
            owner, _, folder = rest.partition("/")
            if (kind == "runs" and owner == run_id) or (kind == "models" and owner == f"m-{run_id}"):
                folders.append((folder.strip("/"), model, version))
        return folders

    def get_model_version(self, name: str, version: int, *, project: str = "default") -> ModelVersion:
        found = self._versions(name, project, version=version)
        if not found:
            raise NotFoundError(
                f"model {name!r} has no version {version}; `keel models show {name}` lists its versions"
            )
        return found[0]

    def model_versions_from_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        """The model versions registered from any of these runs (lineage from data to model)."""
        mv, rm, r, p = t.model_versions, t.registered_models, t.runs, t.projects
        found: list[Any] = []
        with self._read() as c:
            ids = list(dict.fromkeys(run_ids))
            for start in range(0, len(ids), 500):
                found += c.execute(
                    sa.select(rm.c.name, p.c.name, mv.c.version)
                    .join(rm, rm.c.id == mv.c.model_id)
                    .join(p, p.c.id == rm.c.project_id)
                    .join(r, r.c.pk == mv.c.run_pk)
                    .where(r.c.run_id.in_(ids[start : start + 500]))
                ).all()
        return [
            self.get_model_version(name, version, project=project) for name, project, version in sorted(found)
        ]

    def list_model_versions(self, name: str, *, project: str = "default") -> list[ModelVersion]:
        return self._versions(name, project)

    def _versions(self, name: str, project: str, version: int | None = None) -> list[ModelVersion]:
        mv, r = t.model_versions, t.runs
        with self._read() as c:
            mid = self._model_id(c, name, project)
            query = sa.select(mv, r.c.run_id).outerjoin(r, r.c.pk == mv.c.run_pk).where(mv.c.model_id == mid)
            if version is not None:
                query = query.where(mv.c.version == limits.check_id(version, "model version"))
            rows = c.execute(query.order_by(mv.c.version)).mappings().all()
            ids = [row["id"] for row in rows]
            tag_rows = (
                c.execute(
                    sa.select(t.model_version_tags).where(t.model_version_tags.c.model_version_id.in_(ids))
                ).all()
                if ids
                else []
            )
            alias_rows = c.execute(
                sa.select(t.model_aliases.c.alias, t.model_aliases.c.version).where(
                    t.model_aliases.c.model_id == mid
                )
            ).all()
        tags: dict[int, dict[str, str]] = {}
        for vid, key, value in tag_rows:
            tags.setdefault(vid, {})[key] = value
        return [
            ModelVersion(
                name=name,
                version=row["version"],
                run_id=row["run_id"],
                artifact_sha256=row["artifact_sha256"],
                artifact_name=row["artifact_name"],
                flavor=row["flavor"],
                signature=json.loads(row["signature"]) if row["signature"] else None,
                status=row["status"],
                description=row["description"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                tags=tags.get(row["id"], {}),
                aliases=tuple(sorted(a for a, v in alias_rows if v == row["version"])),
                project=project,
            )
            for row in rows
        ]

    def set_model_alias(self, name: str, alias: str, version: int, *, project: str = "default") -> None:
        check_stored_name("alias", alias)  # shown on pages and in the CLI; a column of 128 characters
        self.get_model_version(name, version, project=project)
        a = t.model_aliases
        with self._write() as c:
            mid = self._model_id(c, name, project)
            c.execute(sa.delete(a).where(a.c.model_id == mid, a.c.alias == alias))
            c.execute(sa.insert(a).values(model_id=mid, alias=alias, version=int(version)))

    def delete_model_alias(self, name: str, alias: str, *, project: str = "default") -> None:
        a = t.model_aliases
        with self._write() as c:
            mid = self._model_id(c, name, project)
            if c.execute(sa.delete(a).where(a.c.model_id == mid, a.c.alias == alias)).rowcount == 0:
                raise NotFoundError(f"model {name!r} has no alias @{alias}")

    def get_model_version_by_alias(self, name: str, alias: str, *, project: str = "default") -> ModelVersion:
        a = t.model_aliases
        with self._read() as c:
            mid = self._model_id(c, name, project)
            version = c.execute(
                sa.select(a.c.version).where(a.c.model_id == mid, a.c.alias == alias)
            ).scalar()
        if version is None:
            raise NotFoundError(
                f"model {name!r} has no alias @{alias}; `keel models alias {name} {alias} VERSION` sets it"
            )
        return self.get_model_version(name, version, project=project)

    def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str], *, project: str = "default"
    ) -> None:
        mv, mt = t.model_versions, t.model_version_tags
        with self._write() as c:
            mid = self._model_id(c, name, project)
            vid = c.execute(sa.select(mv.c.id).where(mv.c.model_id == mid, mv.c.version == version)).scalar()
            if vid is None:
                raise NotFoundError(f"model {name!r} has no version {version}")
            c.execute(sa.delete(mt).where(mt.c.model_version_id == vid, mt.c.key.in_(list(tags))))
            insert_tags(c, mt, {"model_version_id": vid}, tags)

    # -- changes after creation (MLflow's API offers them) ----------------------------------
    def _version_id(self, c: sa.Connection, name: str, version: int, project: str) -> int:
        mv = t.model_versions
        mid = self._model_id(c, name, project)
        vid = c.execute(sa.select(mv.c.id).where(mv.c.model_id == mid, mv.c.version == version)).scalar()
        if vid is None:
            raise NotFoundError(f"model {name!r} has no version {version}")
        return int(vid)

    def update_registered_model(
        self, name: str, *, description: str | None, project: str = "default"
    ) -> None:
        m = t.registered_models
        with self._write() as c:
            mid = self._model_id(c, name, project)
            c.execute(sa.update(m).where(m.c.id == mid).values(description=description, updated_at=now_ms()))

    def rename_registered_model(self, name: str, new_name: str, *, project: str = "default") -> None:
        check_stored_name("model", new_name)
        m = t.registered_models
        with self._write() as c:
            mid = self._model_id(c, name, project)
            if self._model_id(c, new_name, project, must=False) is not None:
                raise ConflictError(f"registered model {new_name!r} already exists")
            c.execute(sa.update(m).where(m.c.id == mid).values(name=new_name, updated_at=now_ms()))

    def delete_registered_model(self, name: str, *, project: str = "default") -> None:
        """Delete the model with its versions, their tags, its aliases and its tags."""
        mv, mvt = t.model_versions, t.model_version_tags
        with self._write() as c:
            mid = self._model_id(c, name, project)
            version_ids = sa.select(mv.c.id).where(mv.c.model_id == mid)
            c.execute(sa.delete(mvt).where(mvt.c.model_version_id.in_(version_ids)))
            c.execute(sa.delete(t.model_aliases).where(t.model_aliases.c.model_id == mid))
            c.execute(sa.delete(mv).where(mv.c.model_id == mid))
            c.execute(sa.delete(t.registered_model_tags).where(t.registered_model_tags.c.model_id == mid))
            c.execute(sa.delete(t.registered_models).where(t.registered_models.c.id == mid))

    def set_registered_model_tag(self, name: str, key: str, value: str, *, project: str = "default") -> None:
        limits.check_key(key, "tag key")
        limits.check_tag_value(key, value)
        rt = t.registered_model_tags
        with self._write() as c:
            mid = self._model_id(c, name, project)
            c.execute(sa.delete(rt).where(rt.c.model_id == mid, rt.c.key == key))
            c.execute(sa.insert(rt).values(model_id=mid, key=key, value=value))

    def delete_registered_model_tag(self, name: str, key: str, *, project: str = "default") -> None:
        rt = t.registered_model_tags
        with self._write() as c:
            mid = self._model_id(c, name, project)
            if c.execute(sa.delete(rt).where(rt.c.model_id == mid, rt.c.key == key)).rowcount == 0:
                raise NotFoundError(f"registered model {name!r} has no tag {key!r}")

    def update_model_version(
        self, name: str, version: int, *, description: str | None, project: str = "default"
    ) -> None:
        mv = t.model_versions
        with self._write() as c:
            vid = self._version_id(c, name, version, project)
            c.execute(
                sa.update(mv).where(mv.c.id == vid).values(description=description, updated_at=now_ms())
            )

    def delete_model_version(self, name: str, version: int, *, project: str = "default") -> None:
        """Delete one version with its tags and the aliases that point at it."""
        mv, a = t.model_versions, t.model_aliases
        with self._write() as c:
            vid = self._version_id(c, name, version, project)
            mid = self._model_id(c, name, project)
            c.execute(sa.delete(t.model_version_tags).where(t.model_version_tags.c.model_version_id == vid))
            c.execute(sa.delete(a).where(a.c.model_id == mid, a.c.version == version))
            c.execute(sa.delete(mv).where(mv.c.id == vid))

    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, project: str = "default"
    ) -> None:
        mvt = t.model_version_tags
        with self._write() as c:
            vid = self._version_id(c, name, version, project)
            if c.execute(sa.delete(mvt).where(mvt.c.model_version_id == vid, mvt.c.key == key)).rowcount == 0:
                raise NotFoundError(f"model {name!r} version {version} has no tag {key!r}")

    # -- comments ----------------------------------------------------------------------------
    # A model version's comments are kept under the registered model's id ("#ID:VERSION"), not its
    # name: a name is only unique inside a project, and two projects' "churn/1" are different
    # versions. Rows written before (keyed "NAME/VERSION", always checked against the project
    # "default") still belong to that project's model.
    def _comment_keys(self, target_type: str, target_id: str, project: str) -> tuple[str, ...]:
        """The stored keys of a target's comments (the first one is where new comments go)."""
        if target_type == "run":
            with self._read() as c:
                self._run_pk(c, target_id)  # raises NotFoundError for an unknown run
            return (target_id,)
        if target_type != "model_version":
            raise InvalidInputError("comments attach to a 'run' or a 'model_version'")
        name, _, version = target_id.rpartition("/")
        if not name or not version.isascii() or not version.isdigit():
            raise InvalidInputError(
                f"a model_version comment's target_id is 'MODEL/VERSION', such as 'iris/3', "
                f"not {target_id[:80]!r}"
            )
        number = limits.check_id(version, "model version")
        self.get_model_version(name, number, project=project)  # NotFoundError when missing
        with self._read() as c:
            mid = self._model_id(c, name, project)
        key = f"#{mid}:{number}"
        return (key, target_id) if project == "default" else (key,)

    def add_comment(
        self,
        target_type: str,
        target_id: str,
        body: str,
        *,
        author: str | None = None,
        project: str = "default",
    ) -> Comment:
        if target_type not in {"run", "model_version"}:
            raise InvalidInputError("comments attach to a 'run' or a 'model_version'")
        if not body.strip():
            raise InvalidInputError("a comment needs some text")
        if len(body) > limits.MAX_COMMENT_LENGTH:
            from keel.errors import LimitExceededError

            raise LimitExceededError(
                f"comment is {len(body):,} characters; the limit is {limits.MAX_COMMENT_LENGTH:,}",
                limit=limits.MAX_COMMENT_LENGTH,
                actual=len(body),
                what="comment",
            )
        key = self._comment_keys(target_type, target_id, project)[0]
        stamp = now_ms()
        author = author or current_user()
        with self._write() as c:
            cid = c.execute(
                sa.insert(t.comments).values(
                    target_type=target_type,
                    target_id=key,
                    author=author,
                    body=body,
                    created_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Comment(int(cid), target_type, target_id, author, body, stamp)

    def list_comments(self, target_type: str, target_id: str, *, project: str = "default") -> list[Comment]:
        """The comments on a run, or on version ``NAME/VERSION`` of ``project``'s model (none when
        that version does not exist)."""
        try:
            keys = self._comment_keys(target_type, target_id, project)
        except NotFoundError:
            return []
        cm = t.comments
        with self._read() as c:
            rows = c.execute(
                sa.select(cm)
                .where(cm.c.target_type == target_type, cm.c.target_id.in_(keys))
                .order_by(cm.c.id)
            ).all()
        return [Comment(row[0], row[1], target_id, *row[3:]) for row in rows]


def _like_pattern(text: str) -> LikePattern:
    """``text`` as a LIKE pattern; one ending in a lone backslash is the caller's mistake."""
    try:
        return parse_like(text)
    except LikePatternError as exc:
        raise InvalidInputError(f"name_like: {exc}") from None
