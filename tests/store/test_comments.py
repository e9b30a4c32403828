"""Model-version comments are keyed by the registered model, not by its name, which is unique only
inside a project."""

from __future__ import annotations

import sqlalchemy as sa

from keel.store import schema as t
from keel.store.sql import SqlStore

SHA = "a" * 64


def test_model_version_comments_are_per_project_and_old_rows_stay_with_default(store_url: str) -> None:
    store = SqlStore(store_url)
    try:
        for project in ("default", "other"):
            store.create_registered_model("churn", project=project)
            store.create_model_version("churn", artifact_sha256=SHA, flavor="sklearn", project=project)
        store.add_comment("model_version", "churn/1", "for other", project="other")
        store.add_comment("model_version", "churn/1", "for default")
        with store.engine.begin() as c:  # a comment written before comments were keyed by model id
            c.execute(
                sa.insert(t.comments).values(
                    target_type="model_version", target_id="churn/1", author="a", body="old", created_at=1
                )
            )
        assert [c.body for c in store.list_comments("model_version", "churn/1")] == ["for default", "old"]
        found = store.list_comments("model_version", "churn/1", project="other")
        assert [(c.body, c.target_id) for c in found] == [("for other", "churn/1")]
        assert store.list_comments("model_version", "churn/2", project="other") == []
        renamed = "UPDATE registered_models SET name = 'renamed' WHERE name = 'churn'"
        with store.engine.begin() as c:
            c.exec_driver_sql(renamed)
        assert [c.body for c in store.list_comments("model_version", "renamed/1", project="other")] == [
            "for other"
        ]
    finally:
        store.close()
