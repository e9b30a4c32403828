"""Schema migrations: an old store file upgrades in place; the code's schema matches the migrations."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from keel.store.schema import HEAD_REVISION, metadata
from keel.store.sql import SqlStore

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store_0001.db"
OLD_RUN = "0123456789abcdef0123456789abcdef"


def test_first_schema_store_upgrades_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    store = SqlStore(f"sqlite:///{path}", crash_check=False)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
    run = store.get_run(OLD_RUN)
    assert (run.name, run.params, run.tags, run.cost_usd) == ("old-run", {"lr": "0.01"}, {"team": "x"}, None)
    values = store.get_metric_history(OLD_RUN, "loss").values
    assert values[0] == 0.5 and math.isnan(values[1])
    assert struct.pack("<d", values[2]) == struct.pack("<d", -0.0)
    # what 0002 added works on the upgraded file
    store.create_registered_model("legacy-model")
    version = store.create_model_version(
        "legacy-model", artifact_sha256="a" * 64, flavor="sklearn", run_id=OLD_RUN
    )
    assert version.run_id == OLD_RUN
    store.update_run(OLD_RUN, cost_usd=0.25)
    assert store.get_run(OLD_RUN).cost_usd == 0.25
    store.close()


def test_concurrent_first_opens_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            SqlStore(url).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = sa.create_engine(url)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    engine.dispose()


def test_code_schema_matches_migrations(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from keel.store.engine import _upgrade, create_engine

    engine = create_engine(store_url)
    _upgrade(engine, fresh=False)  # every migration, not the schema in code
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), metadata)
    engine.dispose()
    assert diff == []


def test_a_new_store_is_created_from_the_schema_in_code_and_stamped(store_url):
    store = SqlStore(store_url)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
    # works like a migrated one
    experiment = store.create_experiment("fresh")
    assert store.get_experiment(experiment.experiment_id).name == "fresh"
    store.close()


def test_opening_a_new_store_does_not_import_alembic(tmp_path):
    code = (
        "import sys\n"
        "from keel.store.sql import SqlStore\n"
        f"SqlStore('sqlite:///{tmp_path / 'new.db'}').close()\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
