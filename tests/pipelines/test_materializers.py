from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from keel.errors import TrustError
from keel.pipelines import (
    NoMaterializerError,
    load_output,
    register_materializer,
    save_output,
    unregister_materializer,
)
from keel.pipelines.materializers import METADATA_NAME, hash_folder, materializer_for


def roundtrip(value: Any, folder: Path, **options: Any) -> tuple[Any, dict[str, Any]]:
    metadata = save_output(value, folder)
    return load_output(folder, **options), metadata


def test_json_values_round_trip_with_nan_and_infinity(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, None, True, "x"], "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "z": -0.0}
    loaded, metadata = roundtrip(value, tmp_path / "v")
    assert metadata["materializer"] == "json"
    assert math.isnan(loaded.pop("nan"))
    value.pop("nan")
    assert loaded == value
    assert math.copysign(1, loaded["z"]) == -1
    assert roundtrip("text", tmp_path / "s")[0] == "text"
    assert roundtrip(None, tmp_path / "n")[0] is None


def test_tuples_and_non_string_keys_are_not_json(tmp_path: Path) -> None:
    assert materializer_for((1, 2)).name == "pickle"  # would come back as a list
    assert materializer_for({1: "a"}).name == "pickle"


def test_numpy_arrays_load_memory_mapped(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    loaded, metadata = roundtrip(array, tmp_path / "a")
    assert metadata["materializer"] == "numpy" and metadata["shape"] == [3, 4]
    assert isinstance(loaded, np.memmap)
    assert not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)
    assert (tmp_path / "a" / "array.npy").is_file()


def test_pandas_frames_and_arrow_tables_go_to_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None], "f": [0.5, math.nan, 2.0]})
    loaded, metadata = roundtrip(frame, tmp_path / "df")
    assert metadata["materializer"] == "table" and metadata["kind"] == "pandas"
    assert (tmp_path / "df" / "table.parquet").is_file()
    pd.testing.assert_frame_equal(loaded, frame)
    table = pa.table({"x": [1, 2]})
    loaded_table, metadata = roundtrip(table, tmp_path / "t")
    assert metadata["kind"] == "pyarrow" and loaded_table.equals(table)


def test_sklearn_models_use_the_safe_flavor(tmp_path: Path) -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(x, y)
    loaded, metadata = roundtrip(model, tmp_path / "m")
    assert metadata["materializer"] == "model" and metadata["flavor"] == "sklearn"
    assert "pickle" not in metadata
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


def test_pickle_is_the_last_resort_and_needs_trust(tmp_path: Path) -> None:
    metadata = save_output(Opaque(3), tmp_path / "p")
    assert metadata["pickle"] is True and metadata["materializer"] == "pickle"
    assert json.loads((tmp_path / "p" / METADATA_NAME).read_text())["pickle"] is True
    with pytest.raises(TrustError, match="trust=True"):
        load_output(tmp_path / "p")
    assert load_output(tmp_path / "p", trust=True).value == 3


def test_unpicklable_output_names_step_output_and_type(tmp_path: Path) -> None:
    with pytest.raises(NoMaterializerError, match="output `model` of step `train`.*_thread.lock") as info:
        save_output(threading.Lock(), tmp_path / "x", node="train", output="model")
    assert "register_materializer" in str(info.value)
    with pytest.raises(NoMaterializerError, match="Opaque"):
        save_output(Opaque(1), tmp_path / "y", allow_pickle=False)


class Vocab:
    def __init__(self, words: list[str]) -> None:
        self.words = words


class VocabMaterializer:
    name = "vocab"

    def can_handle(self, obj: Any) -> bool:
        return isinstance(obj, Vocab)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        (folder / "vocab.txt").write_text("\n".join(obj.words))
        return {"size": len(obj.words)}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        return Vocab((folder / "vocab.txt").read_text().split("\n"))


def test_user_materializers_come_first(tmp_path: Path) -> None:
    register_materializer(VocabMaterializer())
    try:
        loaded, metadata = roundtrip(Vocab(["a", "b"]), tmp_path / "v")
        assert metadata == {"materializer": "vocab", "size": 2, "type": f"{__name__}.Vocab"}
        assert loaded.words == ["a", "b"]
    finally:
        unregister_materializer("vocab")
    assert materializer_for(Vocab([])).name == "pickle"


def test_folder_hash_depends_on_content_only(tmp_path: Path) -> None:
    save_output([1, 2], tmp_path / "a")
    save_output([1, 2], tmp_path / "b")
    save_output([1, 3], tmp_path / "c")
    assert hash_folder(tmp_path / "a") == hash_folder(tmp_path / "b") != hash_folder(tmp_path / "c")
