"""keel's skops allow-list: regenerated from the estimator families keel supports, and nothing more.

Each family is fitted, saved with ``save_model`` and asked which types skops does not trust by
default; the union must be exactly :data:`SKOPS_TRUSTED_TYPES` (so a library upgrade that needs a
new class, or a name no family uses any more, shows up here), every family must load without
``trust=True``, and every listed name must be a class. A crafted file that names a function from a
trusted package must be refused without running it.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from keel.errors import TrustError
from keel.models import MANIFEST_NAME, load_model, save_model
from keel.models.skops_trust import SKOPS_TRUSTED_TYPES

skops_io = pytest.importorskip("skops.io")

_RNG = np.random.default_rng(3)
_X = _RNG.normal(size=(60, 4))
_Y = (_X[:, 0] > 0).astype(np.int64)
_Y3 = _RNG.integers(0, 3, 60)
_YR = _X[:, 1] * 2.0
_FRAME = pd.DataFrame({"a": _X[:, 0], "b": _X[:, 1], "c": _RNG.choice(["x", "y", "z"], 60)})
_FRAME.loc[3, "a"] = np.nan


def _members() -> list[tuple[str, Any]]:
    return [("a", LogisticRegression()), ("b", GaussianNB())]


def _column_pipeline() -> Any:
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    columns = ColumnTransformer(
        [("num", numeric, ["a", "b"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])]
    )
    return make_pipeline(columns, LogisticRegression()).fit(_FRAME, _Y)


def _sklearn_families() -> dict[str, Callable[[], Any]]:
    knn: dict[str, Callable[[], Any]] = {
        f"knn-{algorithm}-{metric}": (
            lambda a=algorithm, m=metric: KNeighborsClassifier(algorithm=a, metric=m).fit(_X, _Y)
        )
        for algorithm in ("ball_tree", "kd_tree", "brute")
        for metric in ("euclidean", "manhattan", "chebyshev")
    }
    return {
        "logistic": lambda: LogisticRegression().fit(_X, _Y3),
        "random-forest-classifier": lambda: RandomForestClassifier(n_estimators=3).fit(_X, _Y),
        "random-forest-regressor": lambda: RandomForestRegressor(n_estimators=3).fit(_X, _YR),
        "gradient-boosting-classifier": lambda: GradientBoostingClassifier(n_estimators=3).fit(_X, _Y3),
        "gradient-boosting-regressor": lambda: GradientBoostingRegressor(n_estimators=3).fit(_X, _YR),
        "hist-gradient-boosting-classifier": lambda: HistGradientBoostingClassifier(max_iter=3).fit(_X, _Y),
        "hist-gradient-boosting-regressor": lambda: HistGradientBoostingRegressor(max_iter=3).fit(_X, _YR),
        "column-pipeline": _column_pipeline,
        "svc": lambda: SVC(probability=True).fit(_X, _Y),
        "knn-minkowski-p3": lambda: KNeighborsClassifier(algorithm="kd_tree", p=3).fit(_X, _Y),
        "knn-regressor": lambda: KNeighborsRegressor().fit(_X, _YR),
        "ridge": lambda: Ridge().fit(_X, _YR),
        "lasso": lambda: Lasso().fit(_X, _YR),
        "kmeans": lambda: KMeans(n_clusters=2, n_init=1).fit(_X),
        "pca": lambda: PCA(2).fit(_X),
        "decision-tree-classifier": lambda: DecisionTreeClassifier().fit(_X, _Y),
        "decision-tree-regressor": lambda: DecisionTreeRegressor().fit(_X, _YR),
        "mlp-adam": lambda: MLPClassifier(max_iter=5).fit(_X, _Y),
        "mlp-sgd": lambda: MLPRegressor(solver="sgd", max_iter=5).fit(_X, _YR),
        "label-encoder": lambda: LabelEncoder().fit(["a", "b"]),
        "voting": lambda: VotingClassifier(_members()).fit(_X, _Y),
        "stacking": lambda: StackingClassifier(_members()).fit(_X, _Y),
        "grid-search": lambda: GridSearchCV(LogisticRegression(), {"C": [1, 2]}, cv=2).fit(_X, _Y),
        "grid-search-kfold": lambda: GridSearchCV(Ridge(), {"alpha": [1, 2]}, cv=KFold(2)).fit(_X, _YR),
        **knn,
    }


def _wrapper_families() -> dict[str, Callable[[], Any]]:
    """XGBoost/LightGBM scikit-learn wrappers inside a Pipeline: the Pipeline goes through skops."""
    families: dict[str, Callable[[], Any]] = {}
    try:
        import xgboost
    except ImportError:
        pass
    else:
        families["pipeline-xgb-classifier"] = lambda: make_pipeline(
            StandardScaler(), xgboost.XGBClassifier(n_estimators=2)
        ).fit(_X, _Y)
        families["pipeline-xgb-regressor"] = lambda: make_pipeline(
            StandardScaler(), xgboost.XGBRegressor(n_estimators=2)
        ).fit(_X, _YR)
    try:
        import lightgbm
    except ImportError:
        pass
    else:
        families["pipeline-lgbm-classifier"] = lambda: make_pipeline(
            StandardScaler(), lightgbm.LGBMClassifier(n_estimators=2, verbose=-1)
        ).fit(_X, _Y)
        families["pipeline-lgbm-regressor"] = lambda: make_pipeline(
            StandardScaler(), lightgbm.LGBMRegressor(n_estimators=2, verbose=-1)
        ).fit(_X, _YR)
    return families


def _installed(type_name: str) -> bool:
    top = type_name.partition(".")[0]
    return importlib.util.find_spec(top) is not None


@pytest.mark.filterwarnings("ignore")  # tiny fits warn about convergence; not under test
def test_allowlist_is_what_the_supported_families_need(tmp_path: Path) -> None:
    needed: dict[str, set[str]] = {}
    for name, build in {**_sklearn_families(), **_wrapper_families()}.items():
        model = build()
        folder = tmp_path / name
        manifest = save_model(model, folder)
        assert manifest["flavor"] == "sklearn", name
        for type_name in skops_io.get_untrusted_types(file=folder / "model.skops"):
            needed.setdefault(type_name, set()).add(name)
        loaded = load_model(folder)  # without trust
        assert type(loaded) is type(model), name

    expected = {name for name in SKOPS_TRUSTED_TYPES if _installed(name)}
    assert set(needed) == expected, (
        "update SKOPS_TRUSTED_TYPES in src/keel/models/skops_trust.py; the supported families now "
        f"need {json.dumps(sorted(needed), indent=1)}"
    )


def test_allowlist_holds_classes_only() -> None:
    for type_name in SKOPS_TRUSTED_TYPES:
        if not _installed(type_name):
            continue
        module_name, _, attribute = type_name.rpartition(".")
        target = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(target, type), type_name


def _crafted_skops_file(code: str) -> bytes:
    """A skops file whose root node calls ``numpy.testing._private.utils.runstring(code, {})``.

    ``ConstructorFromReduceNode`` calls the named attribute with the arguments the file holds; a
    package-wide trust of ``numpy`` let this run the attacker's code on load.
    """
    arguments = json.loads(zipfile.ZipFile(io.BytesIO(skops_io.dumps((code, {})))).read("schema.json"))
    root = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": {k: v for k, v in arguments.items() if k not in ("protocol", "_skops_version")},
        "__id__": 1,
        "protocol": arguments["protocol"],
        "_skops_version": arguments["_skops_version"],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(root))
    return buffer.getvalue()


def test_crafted_file_calling_a_numpy_function_is_refused_and_not_run(tmp_path: Path) -> None:
    proof = tmp_path / "ran.txt"
    model = LogisticRegression().fit(_X, _Y)
    save_model(model, tmp_path / "model")
    # swap the skops file for the crafted one and record its hash, as an attacker who controls
    # the upload would: the manifest check passes, so only the type check stands in the way
    crafted = _crafted_skops_file(f"import pathlib; pathlib.Path({str(proof)!r}).write_text('ran')")
    (tmp_path / "model" / "model.skops").write_bytes(crafted)
    manifest_file = tmp_path / "model" / MANIFEST_NAME
    manifest = json.loads(manifest_file.read_text())
    manifest["files"]["model.skops"] = hashlib.sha256(crafted).hexdigest()
    manifest_file.write_text(json.dumps(manifest))

    with pytest.raises(TrustError, match=r"numpy\.testing\._private\.utils\.runstring.*trust=True"):
        load_model(tmp_path / "model")
    assert not proof.exists()
