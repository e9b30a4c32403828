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


def test_tuples_and_non_string_keys_are_containers_not_json(tmp_path: Path) -> None:
    # JSON would bring a tuple back as a list and int keys as strings; a container keeps both
    assert materializer_for((1, 2)).name == "container"
    assert materializer_for({1: "a"}).name == "container"
    assert roundtrip((1, "a"), tmp_path / "t")[0] == (1, "a")
    assert roundtrip({1: "a", "b": [2]}, tmp_path / "d")[0] == {1: "a", "b": [2]}


def test_dict_of_frames_is_stored_structurally_and_loads_without_trust(tmp_path: Path) -> None:
    frames = {"train": pd.DataFrame({"x": [1, 2]}), "test": pd.DataFrame({"x": [3.5]})}
    loaded, metadata = roundtrip(frames, tmp_path / "c")
    assert metadata["materializer"] == "container" and metadata["kind"] == "dict"
    assert [(i["key"], i["materializer"]) for i in metadata["items"]] == [
        ("train", "table"),
        ("test", "table"),
    ]
    assert not list((tmp_path / "c").rglob("*.pkl"))
    assert list(loaded) == ["train", "test"]
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(loaded[name], frame)


def test_nested_containers_keep_types_keys_and_order(tmp_path: Path) -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, np.array([0, 0, 1, 1]))
    value = {
        "splits": [(np.arange(3), pd.DataFrame({"a": ["p"]})), (np.arange(2), pd.DataFrame({"a": ["q"]}))],
        7: {"model": model, "scores": {"f1": 0.5}},
        "empty": (),
    }
    loaded, metadata = roundtrip(value, tmp_path / "n")
    assert metadata["materializer"] == "container"
    assert not list((tmp_path / "n").rglob("*.pkl"))
    assert list(loaded) == ["splits", 7, "empty"] and loaded["empty"] == ()
    first = loaded["splits"][0]
    assert isinstance(loaded["splits"], list) and isinstance(first, tuple)
    np.testing.assert_array_equal(first[0], np.arange(3))
    pd.testing.assert_frame_equal(loaded["splits"][1][1], pd.DataFrame({"a": ["q"]}))
    np.testing.assert_array_equal(loaded[7]["model"].predict(x), model.predict(x))
    assert loaded[7]["scores"] == {"f1": 0.5}


def test_containers_with_unknown_elements_or_keys_are_pickled_whole(tmp_path: Path) -> None:
    assert materializer_for({"a": pd.DataFrame(), "b": Opaque(1)}).name == "pickle"
    assert materializer_for({(1, 2): pd.DataFrame()}).name == "pickle"  # keys are str or int
    assert materializer_for({True: pd.DataFrame()}).name == "pickle"  # bool would come back as int
    looped: list[Any] = [np.arange(2)]
    looped.append(looped)
    assert materializer_for(looped).name == "pickle"


def test_a_container_element_that_claims_to_be_a_pickle_needs_trust(tmp_path: Path) -> None:
    save_output({"a": pd.DataFrame({"x": [1]}), "b": np.arange(2)}, tmp_path / "c")
    element = tmp_path / "c" / "items" / "1"
    for file in element.iterdir():
        file.unlink()
    save_output(Opaque(2), element)  # swapped in by someone who can write the folder
    with pytest.raises(TrustError):
        load_output(tmp_path / "c")


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
