"""The outbox journal (ADR 008): records survive, torn tails are cut, dead processes' journals are
adopted exactly once, live ones are left alone, and a script's own mistakes still raise offline."""

from __future__ import annotations

import json
import math
import socket

from keel.tracking.outbox import Op, Outbox, _read_ops
from tests.conftest import run_python


def test_ops_round_trip_with_nan_and_infinities(tmp_path):
    box = Outbox(tmp_path, "abc")
    ops = [
        Op("log_params", "r" * 32, {"params": {"lr": "0.1"}}),
        Op("update_run", "r" * 32, {"status": "FINISHED", "cost_detail": {"x": math.nan, "y": -math.inf}}),
    ]
    for op in ops:
        box.add(op)
    assert box.path is not None
    read = list(_read_ops(box.path))
    assert [(o.kind, o.op_id) for o in read] == [(o.kind, o.op_id) for o in ops]
    detail = read[1].args["cost_detail"]
    assert math.isnan(detail["x"]) and detail["y"] == -math.inf


def test_a_torn_record_ends_the_journal(tmp_path):
    box = Outbox(tmp_path, "abc")
    box.add(Op("set_tags", "r" * 32, {"tags": {"a": "1"}}))
    box.add(Op("set_tags", "r" * 32, {"tags": {"b": "2"}}))
    assert box.path is not None
    data = box.path.read_bytes()
    box.path.write_bytes(data[:-3])  # the process died in the middle of the second write
    assert [o.args["tags"] for o in _read_ops(box.path)] == [{"a": "1"}]


def test_journals_of_dead_processes_are_adopted_once_and_live_ones_left_alone(tmp_path):
    dead = Outbox(tmp_path, "abc")
    dead.add(Op("log_params", "d" * 32, {"params": {"k": "v"}}))
    dead.close()  # ops left: the journal stays, unlocked, as a killed process leaves it
    live = Outbox(tmp_path, "abc")
    live.add(Op("set_tags", "l" * 32, {"tags": {"k": "v"}}))
    other_store = Outbox(tmp_path, "xyz")
    other_store.add(Op("set_tags", "o" * 32, {"tags": {}}))
    other_store.close()

    heir = Outbox(tmp_path, "abc")
    assert heir.adopt() == 1
    assert [op.run_id for op in heir.ops] == ["d" * 32]
    assert dead.path is not None and not dead.path.exists()
    assert live.path is not None and live.path.exists() and len(live) == 1
    assert other_store.path is not None and other_store.path.exists()
    assert heir.path is not None and [o.run_id for o in _read_ops(heir.path)] == ["d" * 32]
    assert Outbox(tmp_path, "abc").adopt() == 0  # the heir is alive: its journal is its own


def test_mistakes_still_raise_while_the_store_is_away(project):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_python(
        "import json, keel\n"
        "from keel.errors import InvalidInputError, ParamConflictError\n"
        "errors = []\n"
        "with keel.start_run(experiment='offline') as run:\n"
        "    keel.log_param('lr', 0.1)\n"
        "    for bad in (lambda: keel.log_param('lr', 0.2), lambda: keel.log_param('', 1),\n"
        "                lambda: keel.log_text('x', '../outside.txt')):\n"
        "        try:\n"
        "            bad()\n"
        "        except (InvalidInputError, ParamConflictError) as exc:\n"
        "            errors.append(type(exc).__name__)\n"
        "    keel.log_metric('loss', float('nan'))\n"
        "    queued = len(run.client._context.writer.outbox)\n"
        "print(json.dumps({'errors': errors, 'queued': queued}))\n",
        project,
        env={"KEEL_TRACKING_URI": f"http://127.0.0.1:{port}", "KEEL_OFFLINE_WAIT": "0.5"},
    )
    report = json.loads(result.stdout)
    assert report["errors"] == ["ParamConflictError", "InvalidInputError", "UnsafePathError"]
    assert report["queued"] == 2  # the run's creation and its one good param
    assert "cannot be reached" in result.stderr and "keel sync" in result.stderr
    spool = project / ".keel" / "spool"
    assert len(list(spool.glob("*.outbox"))) == 1  # the run waits for the store, with its end
