from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from keel.errors import (
    ArtifactCorruptedError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    TrustError,
    UnsafePathError,
)
from keel.models import (
    FLAVORS,
    MANIFEST_NAME,
    LightGBMModel,
    OnnxModel,
    flavor_for,
    infer_signature,
    load_model,
    save_model,
)
from keel.models.flavors import is_trusted_skops_type


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(120, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int64)
    return features, labels


@pytest.fixture
def sklearn_model(data: tuple[np.ndarray, np.ndarray]) -> Any:
    features, labels = data
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)


class ShiftRegressor(RegressorMixin, BaseEstimator):
    """A custom estimator: its type is not on keel's skops allowlist."""

    def __init__(self, shift: float = 1.0) -> None:
        self.shift = shift

    def fit(self, features: np.ndarray, labels: np.ndarray) -> ShiftRegressor:
        self.mean_ = float(np.mean(labels))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(len(features), self.mean_ + self.shift)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- scikit-learn -----------------------------------------------------------------------------


def test_sklearn_round_trip_and_manifest(tmp_path: Path, sklearn_model: Any, data: Any) -> None:
    features, _ = data
    manifest = save_model(sklearn_model, tmp_path / "model", input_example=features)

    assert manifest["format"] == "keel-model"
    assert manifest["format_version"] == 1
    assert manifest["flavor"] == "sklearn"
    assert manifest["library"]["name"] == "scikit-learn"
    assert manifest["trusted_pickle"] is False
    assert manifest["python"] == ".".join(map(str, sys.version_info[:3]))
    assert isinstance(manifest["created_at"], int) and manifest["created_at"] > 1_600_000_000_000
    assert manifest["files"] == {"model.skops": _sha256(tmp_path / "model" / "model.skops")}
    on_disk = json.loads((tmp_path / "model" / MANIFEST_NAME).read_text())
    assert on_disk == manifest
    assert manifest["signature"] == {
        "inputs": [{"name": None, "dtype": "float64", "shape": [-1, 4]}],
        "outputs": [{"name": None, "dtype": "int64", "shape": [-1]}],
    }

    loaded = load_model(tmp_path / "model", expected_sha256=manifest["files"])
    np.testing.assert_array_equal(loaded.predict(features), sklearn_model.predict(features))
    np.testing.assert_array_equal(loaded.predict_proba(features), sklearn_model.predict_proba(features))


def test_skops_file_with_custom_type_needs_trust(tmp_path: Path, data: Any) -> None:
    features, labels = data
    model = ShiftRegressor(shift=2.0).fit(features, labels)
    save_model(model, tmp_path / "custom")

    with pytest.raises(TrustError, match=r"ShiftRegressor.*trust=True"):
        load_model(tmp_path / "custom")
    loaded = load_model(tmp_path / "custom", trust=True)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_skops_function_from_builtins_needs_trust(tmp_path: Path) -> None:
    save_model(FunctionTransformer(func=abs), tmp_path / "model")
    with pytest.raises(TrustError, match=r"builtins\.abs"):
        load_model(tmp_path / "model")
    assert load_model(tmp_path / "model", trust=True).func is abs


@pytest.mark.parametrize(
    ("type_name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("lightgbm.basic.Booster", True),
        ("collections.OrderedDict", True),
        ("numpy.testing._private.utils.runstring", False),
        ("numpy.load", False),
        ("sklearn.utils._testing.assert_run_python_script_without_output", False),
        ("builtins.eval", False),
        ("collections.namedtuple", False),
        ("os.system", False),
        ("sklearnish.Model", False),
    ],
)
def test_skops_allowlist(type_name: str, trusted: bool) -> None:
    assert is_trusted_skops_type(type_name) is trusted


# --- XGBoost ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["XGBClassifier", "XGBRegressor", "Booster"])
def test_xgboost_round_trip_keeps_the_class(tmp_path: Path, data: Any, kind: str) -> None:
    xgboost = pytest.importorskip("xgboost", reason="xgboost is not installed (keel-mlops[xgboost])")
    features, labels = data
    if kind == "Booster":
        model = xgboost.train(
            {"objective": "binary:logistic", "max_depth": 2},
            xgboost.DMatrix(features, label=labels),
            num_boost_round=4,
        )
        predict = lambda m: m.predict(xgboost.DMatrix(features))  # noqa: E731
    else:
        model = getattr(xgboost, kind)(n_estimators=4, max_depth=2).fit(features, labels)
        predict = lambda m: m.predict(features)  # noqa: E731

    manifest = save_model(model, tmp_path / "model")
    assert manifest["flavor"] == "xgboost"
    assert list(manifest["files"]) == ["model.json"]
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(predict(loaded), predict(model))


# --- LightGBM ---------------------------------------------------------------------------------


def test_lightgbm_classifier_predicts_identically(tmp_path: Path, data: Any) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    features, labels = data
    names = np.array(["no", "yes"])[labels]
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(features, names)

    manifest = save_model(model, tmp_path / "model")
    assert manifest["flavor"] == "lightgbm"
    assert manifest["flavor_options"]["lightgbm_class"] == "LGBMClassifier"
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, LightGBMModel)
    assert isinstance(loaded.booster, lightgbm.Booster)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_lightgbm_multiclass_and_regressor(tmp_path: Path, data: Any) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    features, _ = data
    classes = np.digitize(features[:, 0], [-0.5, 0.5])
    classifier = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1)
    classifier.fit(features, classes)
    regressor = lightgbm.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1)
    regressor.fit(features, features[:, 1])

    save_model(classifier, tmp_path / "classifier")
    save_model(regressor, tmp_path / "regressor")
    np.testing.assert_array_equal(
        load_model(tmp_path / "classifier").predict(features), classifier.predict(features)
    )
    np.testing.assert_array_equal(
        load_model(tmp_path / "regressor").predict(features), regressor.predict(features)
    )


def test_lightgbm_booster_comes_back_as_booster(tmp_path: Path, data: Any) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    features, labels = data
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1},
        lightgbm.Dataset(features, label=labels),
        num_boost_round=5,
    )
    save_model(booster, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, lightgbm.Booster)
    np.testing.assert_array_equal(loaded.predict(features), booster.predict(features))


# --- ONNX -------------------------------------------------------------------------------------


def _onnx_affine_model(weights: np.ndarray, bias: np.ndarray) -> Any:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for any onnxruntime that supports opset 13
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("as_bytes", [False, True])
def test_onnx_round_trip(tmp_path: Path, data: Any, as_bytes: bool) -> None:
    pytest.importorskip("onnxruntime")
    features, _ = data
    weights = np.arange(8, dtype=np.float32).reshape(4, 2) / 10
    bias = np.array([1.0, -1.0], dtype=np.float32)
    model = _onnx_affine_model(weights, bias)

    to_save = model.SerializeToString() if as_bytes else model
    manifest = save_model(to_save, tmp_path / "model", flavor="onnx" if as_bytes else None)
    assert manifest["flavor"] == "onnx"
    assert manifest["files"] == {"model.onnx": _sha256(tmp_path / "model" / "model.onnx")}

    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, OnnxModel)
    assert loaded.session.get_inputs()[0].name == "x"
    inputs = features.astype(np.float32)
    expected = inputs @ weights + bias
    np.testing.assert_allclose(loaded.predict(inputs), expected, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict({"x": features}), expected, rtol=1e-6)
    with pytest.raises(InvalidInputError, match="Unknown ONNX input"):
        loaded.predict({"z": inputs})


def test_onnx_flavor_rejects_other_objects(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    with pytest.raises(InvalidInputError, match="ModelProto"):
        save_model({"not": "onnx"}, tmp_path / "model", flavor="onnx")
    with pytest.raises(InvalidInputError, match="not an ONNX model"):
        save_model(b"", tmp_path / "model", flavor="onnx")
    assert not (tmp_path / "model").exists()  # a failed save leaves nothing behind


def test_missing_library_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _onnx_affine_model(np.ones((2, 1), np.float32), np.zeros(1, np.float32))
    save_model(model, tmp_path / "model")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(MissingDependencyError, match=r"keel-mlops\[onnx\]") as caught:
        load_model(tmp_path / "model")
    assert caught.value.extra == "onnx"


# --- PyTorch ----------------------------------------------------------------------------------


def test_pytorch_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (keel-mlops[torch])")
    pytest.importorskip("safetensors")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    model[2].weight = model[0].weight  # tied weights share memory, which safetensors refuses
    model.register_buffer("transposed", torch.randn(3, 4).T)  # not contiguous
    inputs = torch.randn(5, 4)

    manifest = save_model(model, tmp_path / "model")
    assert manifest["flavor"] == "pytorch"
    assert manifest["model_class"] == "torch.nn.modules.container.Sequential"
    assert list(manifest["files"]) == ["model.safetensors"]

    state = load_model(tmp_path / "model")
    assert set(state) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)

    fresh = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    fresh.register_buffer("transposed", torch.zeros(4, 3))
    loaded = load_model(tmp_path / "model", torch_module=fresh)
    assert loaded is fresh
    with torch.no_grad():
        assert torch.equal(loaded(inputs), model(inputs))
    with pytest.raises(InvalidInputError, match="does not fit"):
        load_model(tmp_path / "model", torch_module=torch.nn.Linear(4, 4))


def test_torch_module_only_for_pytorch(tmp_path: Path, sklearn_model: Any) -> None:
    save_model(sklearn_model, tmp_path / "model")
    with pytest.raises(InvalidInputError, match="pytorch flavor only"):
        load_model(tmp_path / "model", torch_module=object())


# --- pickle -----------------------------------------------------------------------------------


def test_pickle_needs_trust_to_save_and_to_load(tmp_path: Path) -> None:
    def scale(value: float) -> float:
        return value * 3

    with pytest.raises(TrustError, match="trust=True"):
        save_model(scale, tmp_path / "model")
    assert not (tmp_path / "model").exists()

    manifest = save_model(scale, tmp_path / "model", trust=True)
    assert manifest["flavor"] == "python_function"
    assert manifest["trusted_pickle"] is True
    with pytest.raises(TrustError, match="trust=True"):
        load_model(tmp_path / "model")
    assert load_model(tmp_path / "model", trust=True)(2) == 6


def test_pickle_alias_forces_the_flavor(tmp_path: Path, sklearn_model: Any, data: Any) -> None:
    manifest = save_model(sklearn_model, tmp_path / "model", flavor="pickle", trust=True)
    assert manifest["flavor"] == "python_function"
    loaded = load_model(tmp_path / "model", trust=True)
    np.testing.assert_array_equal(loaded.predict(data[0]), sklearn_model.predict(data[0]))


# --- integrity --------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["sklearn", "python_function"])
def test_tampered_file_is_refused(tmp_path: Path, sklearn_model: Any, flavor: str) -> None:
    manifest = save_model(sklearn_model, tmp_path / "model", flavor=flavor, trust=True)
    (name,) = manifest["files"]
    path = tmp_path / "model" / name
    path.write_bytes(path.read_bytes() + b"\0")

    with pytest.raises(ArtifactCorruptedError, match=name) as caught:
        load_model(tmp_path / "model", trust=True)
    assert caught.value.expected == manifest["files"][name]
    assert caught.value.actual == _sha256(path)


def test_missing_file_is_refused(tmp_path: Path, sklearn_model: Any) -> None:
    save_model(sklearn_model, tmp_path / "model")
    (tmp_path / "model" / "model.skops").unlink()
    with pytest.raises(ArtifactCorruptedError, match="model.skops"):
        load_model(tmp_path / "model")


def test_rewritten_manifest_is_caught_by_expected_hashes(tmp_path: Path, sklearn_model: Any) -> None:
    registered = save_model(sklearn_model, tmp_path / "model")["files"]
    save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "other")
    for name in ("model.skops", MANIFEST_NAME):  # swap in another model, manifest and all
        (tmp_path / "model" / name).write_bytes((tmp_path / "other" / name).read_bytes())

    load_model(tmp_path / "model")  # self-consistent, so only the registered hashes can tell
    with pytest.raises(ArtifactCorruptedError, match="model.skops"):
        load_model(tmp_path / "model", expected_sha256=registered)


def test_manifest_path_outside_the_folder_is_refused(tmp_path: Path, sklearn_model: Any) -> None:
    save_model(sklearn_model, tmp_path / "model")
    manifest_path = tmp_path / "model" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../secret"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(UnsafePathError, match="outside"):
        load_model(tmp_path / "model")


def test_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_model(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=MANIFEST_NAME):
        load_model(tmp_path / "empty")


# --- choosing a flavor and a folder -----------------------------------------------------------


def test_non_empty_folder_is_refused(tmp_path: Path, sklearn_model: Any) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match="not empty"):
        save_model(sklearn_model, tmp_path / "model")
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["notes.txt"]


def test_empty_existing_folder_is_used(tmp_path: Path, sklearn_model: Any) -> None:
    save_model(sklearn_model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME, "model.skops"]


def test_unknown_flavor_lists_the_known_ones(tmp_path: Path, sklearn_model: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"known flavors: .*onnx.*sklearn"):
        save_model(sklearn_model, tmp_path / "model", flavor="h5")


def test_flavor_for(sklearn_model: Any) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    assert flavor_for(sklearn_model) == "sklearn"
    assert flavor_for(ShiftRegressor()) == "sklearn"
    assert flavor_for(lightgbm.LGBMRegressor()) == "lightgbm"
    assert flavor_for(_onnx_affine_model(np.ones((1, 1), np.float32), np.ones(1, np.float32))) == ("onnx")
    assert flavor_for(len) == "python_function"
    assert flavor_for(b"bytes") == "python_function"
    assert set(FLAVORS) == {"sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "python_function"}


def test_import_is_light() -> None:
    code = (
        "import sys, keel.models\n"
        "heavy = ['sklearn', 'skops', 'torch', 'xgboost', 'lightgbm', 'onnx', 'onnxruntime',"
        " 'pandas', 'scipy', 'safetensors', 'cloudpickle']\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


# --- signatures -------------------------------------------------------------------------------


def test_signature_of_arrays() -> None:
    signature = infer_signature(np.zeros((8, 3), dtype=np.float32), np.zeros(8, dtype=np.int64))
    assert signature == {
        "inputs": [{"name": None, "dtype": "float32", "shape": [-1, 3]}],
        "outputs": [{"name": None, "dtype": "int64", "shape": [-1]}],
    }
    assert infer_signature([[1, 2], [3, 4]])["inputs"] == [{"name": None, "dtype": "int64", "shape": [-1, 2]}]
    assert infer_signature(np.array(["a", "b"]))["inputs"][0]["dtype"] == "str"
    assert infer_signature({"ids": np.arange(4), "image": np.zeros((4, 2, 2))})["inputs"] == [
        {"name": "ids", "dtype": "int64", "shape": [-1]},
        {"name": "image", "dtype": "float64", "shape": [-1, 2, 2]},
    ]


def test_signature_of_dataframes() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"age": [31, 42], "income": [1.5, 2.5], "member": [True, False]})
    signature = infer_signature(frame, pandas.Series([0.1, 0.2], name="score"))
    assert signature == {
        "inputs": [
            {"name": "age", "dtype": "int64", "shape": [-1]},
            {"name": "income", "dtype": "float64", "shape": [-1]},
            {"name": "member", "dtype": "bool", "shape": [-1]},
        ],
        "outputs": [{"name": "score", "dtype": "float64", "shape": [-1]}],
    }


def test_signature_errors_and_explicit_signature(tmp_path: Path, sklearn_model: Any) -> None:
    with pytest.raises(InvalidInputError, match="Cannot infer"):
        infer_signature(object())
    with pytest.raises(InvalidInputError, match="Cannot infer"):
        infer_signature([[1, 2], [3]])
    with pytest.raises(InvalidInputError, match="inputs"):
        save_model(sklearn_model, tmp_path / "bad", signature={"outputs": []})
    assert not (tmp_path / "bad").exists()

    given = {"inputs": [{"name": "x", "dtype": "float64", "shape": [-1, 4]}], "outputs": None}
    assert save_model(sklearn_model, tmp_path / "good", signature=given)["signature"] == given


def test_failing_predict_leaves_outputs_empty(tmp_path: Path, sklearn_model: Any) -> None:
    manifest = save_model(sklearn_model, tmp_path / "model", input_example=np.zeros((3, 2)))
    assert manifest["signature"]["inputs"] == [{"name": None, "dtype": "float64", "shape": [-1, 2]}]
    assert manifest["signature"]["outputs"] is None


def _onnx_reading(location: str, *, as_attribute: bool = False) -> Any:
    """A model whose output is 16 bytes of the file ``location`` (an external-data tensor)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weights = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[16])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        weights.external_data.add(key=key, value=value)
    if as_attribute:  # a Constant node's tensor, inside an If branch
        branch = helper.make_graph(
            [helper.make_node("Constant", [], ["y"], value=weights)],
            "branch",
            [],
            [helper.make_tensor_value_info("y", TensorProto.UINT8, [16])],
        )
        nodes = [
            helper.make_node(
                "Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
            ),
            helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch),
        ]
        initializers = []
    else:
        nodes, initializers = [helper.make_node("Identity", ["w"], ["y"])], [weights]
    graph = helper.make_graph(
        nodes,
        "leak",
        [],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [16])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("as_attribute", [False, True])
def test_an_onnx_model_reading_external_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_attribute: bool
) -> None:
    """onnxruntime reads an external-data tensor of a model loaded from bytes from the current
    folder: a registered model could return a file of the loading process (a key, ``.env``) in its
    predictions. Neither saving nor loading such a model is allowed."""
    pytest.importorskip("onnxruntime")
    from keel.models.manifest import MANIFEST_NAME

    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_bytes(b"PASSWORD=hunter2")
    monkeypatch.chdir(work)
    crafted = _onnx_reading(".env", as_attribute=as_attribute)
    with pytest.raises(InvalidInputError, match="external data"):
        save_model(crafted, tmp_path / "refused")
    # a bundle written by someone else: a benign save, then its file and manifest swapped
    folder = tmp_path / "model"
    save_model(_onnx_affine_model(np.ones((2, 1), np.float32), np.zeros(1, np.float32)), folder)
    (folder / "model.onnx").write_bytes(crafted.SerializeToString())
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"]["model.onnx"] = _sha256(folder / "model.onnx")
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    for trust in (False, True):  # a keel bundle never holds external data files
        with pytest.raises(InvalidInputError, match="external data"):
            load_model(folder, trust=trust)
