"""The audit log's group commit: concurrent appends share transactions, every caller gets its own
sequence number back once it is committed, and the chain stays verifiable."""

from __future__ import annotations

import threading

import pytest

from keel.errors import StoreError
from keel.server.audit import AuditLog
from keel.store.sql import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def audit(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'a.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = SqlStore(url, crash_check=False)
    yield AuditLog(store.engine, url)
    store.close()


def test_concurrent_appends_each_get_their_own_committed_entry(audit):
    before = len(audit.entries(limit=100_000))
    got: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(40):
            seq = audit.append(f"user{n}", "POST /x", f"/x/{n}/{i}", "ok", {"i": i})
            with lock:
                got.append(seq)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 320 and len(set(got)) == 320  # no entry lost or numbered twice
    entries = audit.entries(limit=100_000)[before:]
    assert sorted(got) == [e["seq"] for e in entries]
    by_seq = {e["seq"]: e for e in entries}
    assert all(by_seq[s]["actor"].startswith("user") for s in got)
    checked, problems = audit.verify()
    assert problems == [] and checked >= 320


def test_a_failed_write_raises_and_the_log_goes_on(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'a.db'}", crash_check=False)
    audit = AuditLog(store.engine, store.url)
    first = audit.append("a", "POST /x", "/x")
    with store.engine.begin() as c:  # the table disappears under the log for a moment
        c.exec_driver_sql("ALTER TABLE audit_log RENAME TO audit_log_away")
    with pytest.raises(StoreError):
        audit.append("a", "POST /x", "/y")
    with store.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert audit.append("a", "POST /x", "/z") == first + 1  # nothing half-written, nothing stuck
    assert audit.verify()[1] == []
    store.close()
