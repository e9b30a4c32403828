"""A batch the store refuses as invalid is dropped (with an error in the log) instead of being
retried forever in front of every later batch."""

from __future__ import annotations

import logging

from keel.limits import MAX_KEY_LENGTH
from keel.store.sql import SqlStore
from keel.tracking.writer import MetricWriter


def test_a_refused_batch_does_not_block_later_ones(tmp_path, caplog):
    store = SqlStore(f"sqlite:///{tmp_path / 'keel.db'}")
    run = store.create_run(store.create_experiment("e").experiment_id, "r").run_id
    writer = MetricWriter(
        store, tmp_path / "spool", flush_interval=0.05, commit_interval=0.0, heartbeat_interval=60.0
    )
    writer.attach(run)
    # a key over the store's limit, put straight into the point log (log_metric would refuse it earlier)
    writer.log(run, "k" * (MAX_KEY_LENGTH + 1), 1.0, 0, 0)
    writer.flush()
    writer.log(run, "loss", 0.5, 1, 0)
    with caplog.at_level(logging.ERROR, logger="keel"):
        assert writer.flush(timeout=10)
    assert list(store.get_metric_history(run, "loss").values) == [0.5]
    assert store.list_metric_keys(run) == ["loss"]
    assert any("dropped 1 points" in record.getMessage() for record in caplog.records)
    writer.close()
    store.close()
