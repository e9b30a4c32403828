"""Changes after creation (renames, tags, descriptions, deletes) as ``Store`` methods: the SQL
store does them with keel's errors; ``RestStore`` refuses each one by name."""

from __future__ import annotations

import inspect

import pytest

from keel.errors import ConflictError, InvalidInputError, NotFoundError, StoreError
from keel.store.base import Store

CHANGES = [
    "rename_experiment",
    "set_experiment_tag",
    "delete_experiment_tag",
    "update_registered_model",
    "rename_registered_model",
    "delete_registered_model",
    "set_registered_model_tag",
    "delete_registered_model_tag",
    "update_model_version",
    "delete_model_version",
    "delete_model_version_tag",
]


@pytest.fixture
def sql_store(store_url):
    from keel.store.sql import SqlStore

    opened = SqlStore(store_url)
    yield opened
    opened.close()


def _version(store, name="churn", sha="a" * 64):
    if not store.list_registered_models(name_like=name):
        store.create_registered_model(name)
    return store.create_model_version(name, artifact_sha256=sha, flavor="sklearn")


def test_experiment_rename_and_tags(sql_store):
    first = sql_store.create_experiment("first")
    sql_store.create_experiment("taken")
    sql_store.rename_experiment(first.experiment_id, "renamed")
    assert sql_store.get_experiment(first.experiment_id).name == "renamed"
    with pytest.raises(ConflictError, match="'taken' already exists"):
        sql_store.rename_experiment(first.experiment_id, "taken")
    sql_store.set_experiment_tag(first.experiment_id, "team", "risk")
    sql_store.set_experiment_tag(first.experiment_id, "team", "growth")
    assert sql_store.get_experiment(first.experiment_id).tags == {"team": "growth"}
    sql_store.delete_experiment_tag(first.experiment_id, "team")
    assert sql_store.get_experiment(first.experiment_id).tags == {}
    with pytest.raises(NotFoundError, match="has no tag 'team'"):
        sql_store.delete_experiment_tag(first.experiment_id, "team")
    for missing in ("999", "not-a-number"):
        with pytest.raises(NotFoundError, match="no experiment with id"):
            sql_store.rename_experiment(missing, "x")
    with pytest.raises(InvalidInputError, match="percent-escape"):
        sql_store.rename_experiment(first.experiment_id, "prod%20exp")


def test_registered_model_changes(sql_store):
    sql_store.create_registered_model("churn")
    sql_store.create_registered_model("other")
    sql_store.update_registered_model("churn", description="predicts churn")
    assert sql_store.get_registered_model("churn").description == "predicts churn"
    sql_store.set_registered_model_tag("churn", "owner", "ada")
    assert sql_store.get_registered_model("churn").tags == {"owner": "ada"}
    sql_store.delete_registered_model_tag("churn", "owner")
    with pytest.raises(NotFoundError, match="has no tag 'owner'"):
        sql_store.delete_registered_model_tag("churn", "owner")
    with pytest.raises(ConflictError, match="'other' already exists"):
        sql_store.rename_registered_model("churn", "other")
    with pytest.raises(InvalidInputError, match="limit is 256"):
        sql_store.rename_registered_model("churn", "m" * 300)
    sql_store.rename_registered_model("churn", "attrition")
    assert [m.name for m in sql_store.list_registered_models()] == ["attrition", "other"]
    with pytest.raises(NotFoundError):
        sql_store.update_registered_model("churn", description=None)


def test_model_version_changes_and_deletes(sql_store):
    _version(sql_store)
    _version(sql_store, sha="b" * 64)
    sql_store.set_model_alias("churn", "champion", 2)
    sql_store.set_model_version_tags("churn", 2, {"stage": "x"})
    sql_store.update_model_version("churn", 1, description="first")
    assert sql_store.get_model_version("churn", 1).description == "first"
    sql_store.delete_model_version_tag("churn", 2, "stage")
    with pytest.raises(NotFoundError, match="version 2 has no tag 'stage'"):
        sql_store.delete_model_version_tag("churn", 2, "stage")
    sql_store.delete_model_version("churn", 2)
    assert [v.version for v in sql_store.list_model_versions("churn")] == [1]
    with pytest.raises(NotFoundError, match="no alias @champion"):
        sql_store.get_model_version_by_alias("churn", "champion")
    with pytest.raises(NotFoundError, match="has no version 2"):
        sql_store.delete_model_version("churn", 2)
    sql_store.delete_registered_model("churn")
    with pytest.raises(NotFoundError):
        sql_store.get_registered_model("churn")
    sql_store.create_registered_model("churn")  # the name is free again, with no old versions
    assert sql_store.list_model_versions("churn") == []


def test_rest_store_refuses_each_change_by_name(store):
    from keel.store.rest import RestStore

    if not isinstance(store, RestStore):
        pytest.skip("the SQL store is covered above")
    for name in CHANGES:
        method = getattr(store, name)
        params = inspect.signature(getattr(Store, name)).parameters
        args = {p: ("1" if p != "version" else 1) for p in params if p != "self"}
        with pytest.raises(StoreError, match=f"Store.{name} is not offered"):
            method(**args)


def test_the_changes_are_part_of_the_protocol():
    assert set(CHANGES) <= {n for n, _ in inspect.getmembers(Store, inspect.isfunction)}
