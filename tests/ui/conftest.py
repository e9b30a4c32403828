"""A populated store and the UI served on it by uvicorn on 127.0.0.1 (a real HTTP server)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

XSS = "<script>alert(1)</script>"
BROWSER = Path("/usr/bin/chromium")


def _png() -> bytes:
    # a 2x2 red PNG written by hand (zlib + CRCs), so no imaging library is needed
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def populate(client: Any) -> dict[str, Any]:
    """Two experiments, runs with params/metrics/system metrics/artifacts/lineage, a failed run, hostile
    names everywhere, a registered model with an alias, comments and a pipeline run."""
    from keel.entities import RunStatus, StepRun

    store = client.store
    exp = client.experiment_id("mnist")
    hostile_exp = store.create_experiment(f"exp {XSS}", description=f"desc {XSS}").experiment_id
    runs = []
    for i, (model, lr) in enumerate([("rf", 0.1), ("gbm", 0.01), ("gbm", 0.001)]):
        run = client.create_run("mnist", f"run-{i}", tags={"team": "vision", "keel.internal": "x"})
        steps = range(200)
        client.log_batch(
            run.run_id,
            [("loss", 1.0 / (s + 1) + i * 0.1, s, 1_700_000_000_000 + s * 1000) for s in steps]
            + [("acc", 0.5 + 0.1 * i + s / 1000, s, 1_700_000_000_000 + s * 1000) for s in steps]
            + [("system/cpu_percent", 10.0 + s % 7, s, 1_700_000_000_000 + s * 1000) for s in steps],
            params={"model": model, "lr": lr, "depth": 3 + i},
        )
        store.update_run(
            run.run_id,
            status=RunStatus.FINISHED,
            end_time=run.start_time + 65_000 * (i + 1),
            cost_usd=0.0123 * (i + 1),
        )
        runs.append(run.run_id)
    # a metric with NaN and infinity
    client.log_batch(runs[0], [("odd", v, s, 0) for s, v in enumerate([1.0, math.nan, 2.0, math.inf, 3.0])])
    failed = client.create_run("mnist", "broken")
    store.update_run(
        failed.run_id,
        status=RunStatus.FAILED,
        end_time=failed.start_time + 1000,
        traceback=f'Traceback (most recent call last):\n  File "train.py"\nValueError: bad {XSS}',
    )
    hostile = store.create_run(hostile_exp, f"run {XSS}", tags={"note": XSS})
    store.log_params(hostile.run_id, {"p": XSS})
    client.log_batch(hostile.run_id, [("m", 1.0, 0, 0)])
    store.add_comment("run", hostile.run_id, f"comment {XSS}", author="alice")
    # artifacts on the first run
    first = runs[0]
    client.log_bytes(first, _png(), "plots/confusion.png")
    client.log_text(
        first,
        f"<html><body><h1>Validation report</h1><script>document.title='pwned'</script>{XSS}</body></html>",
        "reports/validation.html",
    )
    client.log_dict(first, {"accuracy": 0.93, "classes": ["a", "b"], "note": XSS}, "metrics.json")
    client.log_text(first, "name,score\nalpha,1\n" + XSS + ",2\n", "table.csv")
    client.log_text(first, "hello from a log\n", "train.log")
    import pandas as pd

    client.log_input(first, pd.DataFrame({"x": [1, 2, 3]}), name="digits")
    model_artifact = client.log_bytes(first, b"model bytes", "model/model.bin")
    store.create_registered_model("classifier", description="digit classifier")
    store.create_model_version(
        "classifier",
        artifact_sha256=model_artifact.sha256,
        flavor="python",
        run_id=first,
        artifact_name="model",
        description="first version",
    )
    store.set_model_alias("classifier", "champion", 1)
    store.add_comment("model_version", "classifier/1", f"ready {XSS}", author="bob")
    # a pipeline run with one cached step and one failed step
    graph = {
        "name": "train",
        "nodes": [
            {"id": "load", "step": "load", "upstream": []},
            {"id": "featurize", "step": "featurize", "upstream": ["load"]},
            {"id": "fit", "step": "fit", "upstream": ["featurize"]},
        ],
    }
    pipe_run = client.create_run("mnist", "pipeline-train")
    pipeline_run_id = store.create_pipeline_run(pipe_run.run_id, "train", params={"n": 3}, graph=graph)
    store.record_step_runs(
        pipeline_run_id,
        [
            StepRun("load", "load", "cached", cache_key="k1", cached=True, wall_s=0.01),
            StepRun("featurize", "featurize", "done", cache_key="k2", wall_s=1.5, cpu_s=1.2),
            StepRun("fit", "fit", "failed", cache_key="k3", wall_s=0.2, error="RuntimeError: diverged"),
        ],
    )
    store.set_pipeline_run_status(pipeline_run_id, "failed")
    # a data validation that fails and a drift comparison, as keel.data logs them
    import polars as pl

    from keel.data import drift, profile
    from keel.data.history import validate_and_log

    orders = pl.DataFrame({"amount": [1.0, 2.0, 5000.0], "status": ["new", "paid", "lost"]})
    suite = {"keel_suite": 1, "checks": [{"between": {"column": "amount", "min": 0, "max": 100}}]}
    validation = validate_and_log(orders, suite, name=f"orders {XSS}", client=client)
    shifted = pl.DataFrame({"amount": [500.0, 600.0, 700.0], "status": ["lost", "lost", "lost"]})
    drift_run = drift(profile(orders), shifted).log(client=client)
    return {
        "validation": validation.run_id,
        "drift": drift_run,
        "experiment_id": exp,
        "hostile_experiment_id": hostile_exp,
        "runs": runs,
        "failed": failed.run_id,
        "hostile": hostile.run_id,
        "pipeline_run_id": pipeline_run_id,
    }


class UIServer:
    """uvicorn serving ``create_ui_app`` in a thread on a free port of 127.0.0.1."""

    def __init__(self, app: Any):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UIServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the UI server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(base URL, ids of the populated records, client) for a UI on a fresh populated store."""
    from keel.server.ui.app import create_ui_app
    from keel.store.base import forget_stores
    from keel.tracking.client import Client

    folder = tmp_path_factory.mktemp("ui")
    old = os.environ.get("KEEL_SYSTEM_METRICS")
    os.environ["KEEL_SYSTEM_METRICS"] = "false"
    client = Client(f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts"))
    ids = populate(client)
    with UIServer(create_ui_app(client.store, client._context.artifacts)) as server:
        yield server.url, ids, client
    forget_stores()
    if old is None:
        os.environ.pop("KEEL_SYSTEM_METRICS", None)


def chromium_or_skip() -> Path:
    if BROWSER.exists():
        return BROWSER
    if os.environ.get("KEEL_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KEEL_TEST_REQUIRE_BROWSER=1 but {BROWSER} is missing; `make chromium` installs it")
    pytest.skip(f"browser tests need Chromium at {BROWSER} (`make chromium` or apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    # say which element broke the Content-Security-Policy, not only that something did
    opened.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error('CSP violation', "
        "e.violatedDirective, e.sourceFile, e.lineNumber, e.columnNumber, "
        "e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 200) : ''))"
    )
    errors: list[str] = []
    opened.on(
        "console",
        lambda m: errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None,
    )
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.console_errors = errors
    yield opened
    context.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
