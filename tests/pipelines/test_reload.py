"""Outputs a pipeline stored come back on the next run without ceremony.

Containers of supported values are stored element by element (no pickle); an output that had to be
pickled reloads without trust on the machine whose run wrote it, and needs ``trust=True`` only when
the pickle came from elsewhere (another machine sharing the store).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from keel.pipelines import pipeline, step
from keel.pipelines.steps import Pipeline

CALLS: list[str] = []


class Opaque:
    """No materializer handles this: it is pickled."""

    def __init__(self, value: float) -> None:
        self.value = value


@step
def split(n: int) -> dict:
    CALLS.append("split")
    frame = pd.DataFrame({"x": range(n)})
    return {"train": frame.iloc[: n // 2], "test": frame.iloc[n // 2 :]}


@step
def fit(frames: dict, scale: float) -> float:
    CALLS.append("fit")
    return float(frames["train"]["x"].sum() * scale + frames["test"]["x"].sum())


@pipeline
def frames(n: int = 6, scale: float = 1.0):
    return fit(split(n), scale)


@step
def make(n: int) -> Opaque:
    CALLS.append("make")
    return Opaque(float(n))


@step
def use(thing: Opaque, scale: float) -> float:
    CALLS.append("use")
    return thing.value * scale


@pipeline
def opaque(n: int = 3, scale: float = 1.0):
    return use(make(n), scale)


def _rerun(target: Pipeline, params: dict[str, object], **options: object) -> object:
    CALLS.clear()
    return target.run(params, **options)


def test_dict_of_frames_reloads_after_another_step_changes(project: Path) -> None:
    first = _rerun(frames, {"scale": 1.0})
    assert first.ok and first.outputs == 15.0
    second = _rerun(frames, {"scale": 2.0})
    assert second.ok, second.failed
    assert CALLS == ["fit"] and second.nodes["split"].cache_hit
    assert second.outputs == 18.0


def test_own_pickle_reloads_without_trust_and_a_foreign_one_needs_it(project: Path) -> None:
    assert _rerun(opaque, {"scale": 1.0}).outputs == 3.0
    second = _rerun(opaque, {"scale": 2.0})
    assert second.ok, second.failed
    assert CALLS == ["use"] and second.outputs == 6.0

    # another machine sharing the store: it has the cache entry and the blobs, not the record of
    # having written the pickle itself
    cache = project / ".keel" / "cache"
    assert (cache / "own-pickles").is_dir()
    shutil.rmtree(cache)
    refused = _rerun(opaque, {"scale": 3.0})
    assert not refused.ok and CALLS == []
    message = refused.failed["use"]
    assert "pickle this machine did not write" in message
    assert "cache=False" in message and "trust=True" in message and "--" not in message
    trusted = _rerun(opaque, {"scale": 4.0}, trust=True)
    assert trusted.ok and trusted.outputs == 12.0 and CALLS == ["use"]
