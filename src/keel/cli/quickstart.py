"""``keel quickstart``: a complete, tracked training pipeline in under a minute.

A keel pipeline: load the breast-cancer data set that ships with scikit-learn → split → train four
classifiers (``train.map``), each in its own tracked run with params, per-iteration validation
metrics, the data set as an input, the model (skops), a confusion-matrix plot, system metrics and
cost → register the best as ``@champion``. Every step is cached: a second run with nothing changed is
served from the cache and registers nothing new.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from keel.cli._output import console, format_duration, print_json, table
from keel.errors import KeelError, MissingDependencyError
from keel.pipelines import pipeline, step


def _candidates() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "logistic-sgd",
            {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-3, "epochs": 40},
        ),
        (
            "gradient-boosting",
            {
                "model": "GradientBoostingClassifier",
                "n_estimators": 120,
                "learning_rate": 0.1,
                "max_depth": 2,
            },
        ),
        (
            "random-forest",
            {"model": "RandomForestClassifier", "n_estimators": 120, "max_depth": 6, "step": 10},
        ),
        (
            "mlp",
            {
                "model": "MLPClassifier",
                "hidden_layer_sizes": 32,
                "learning_rate_init": 0.01,
                "epochs": 60,
            },
        ),
    ]


def _train(kind: str, params: dict[str, Any], data: dict[str, Any], log_metrics: Any) -> Any:
    """Fit one candidate, logging validation loss and accuracy at every iteration."""
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_val, y_train, y_val = data["x_train"], data["x_val"], data["y_train"], data["y_val"]

    def record(step: int, proba: Any) -> None:
        log_metrics(
            {
                "val_loss": float(log_loss(y_val, proba, labels=[0, 1])),
                "val_accuracy": float(accuracy_score(y_val, (proba[:, 1] > 0.5).astype(int))),
            },
            step=step,
        )

    if kind == "logistic-sgd":
        scaler = StandardScaler().fit(x_train)
        model = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=0)
        xs_train, xs_val = scaler.transform(x_train), scaler.transform(x_val)
        rng = np.random.default_rng(0)
        for epoch in range(params["epochs"]):
            order = rng.permutation(len(xs_train))
            model.partial_fit(xs_train[order], y_train[order], classes=[0, 1])
            record(epoch, model.predict_proba(xs_val))
        return make_pipeline(scaler, model)
    if kind == "gradient-boosting":
        model = GradientBoostingClassifier(
            n_estimators=params["n_estimators"],
            learning_rate=params["learning_rate"],
            max_depth=params["max_depth"],
            random_state=0,
        )
        model.fit(x_train, y_train)
        for stage, proba in enumerate(model.staged_predict_proba(x_val)):
            record(stage, proba)
        return model
    if kind == "random-forest":
        model = RandomForestClassifier(
            n_estimators=params["step"],
            max_depth=params["max_depth"],
            warm_start=True,
            random_state=0,
            n_jobs=1,
        )
        for trees in range(params["step"], params["n_estimators"] + 1, params["step"]):
            model.set_params(n_estimators=trees)
            model.fit(x_train, y_train)
            record(trees, model.predict_proba(x_val))
        return model
    scaler = StandardScaler().fit(x_train)
    xs_train, xs_val = scaler.transform(x_train), scaler.transform(x_val)
    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden_layer_sizes"],),
        learning_rate_init=params["learning_rate_init"],
        random_state=0,
    )
    for epoch in range(params["epochs"]):
        model.partial_fit(xs_train, y_train, classes=[0, 1])
        record(epoch, model.predict_proba(xs_val))
    return make_pipeline(scaler, model)


def _confusion_figure(matrix: Any, title: str) -> Any:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(3.6, 3.2))
    axes.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        axes.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
        )
    axes.set_xticks([0, 1], labels=["malignant", "benign"])
    axes.set_yticks([0, 1], labels=["malignant", "benign"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def _require() -> None:
    try:
        import matplotlib  # noqa: F401
        import polars  # noqa: F401
        import pyarrow  # noqa: F401
        import sklearn  # noqa: F401
        import skops  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "scikit-learn", "quickstart", "keel quickstart") from None


@step
def load_data() -> Any:
    """The breast-cancer data set as a DataFrame (features and a ``target`` column)."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


#: what the breast-cancer data must look like before anything trains on it
DATA_SUITE: dict[str, Any] = {
    "keel_suite": 1,
    "name": "breast-cancer",
    "checks": [
        {"row_count_between": {"min": 500}},
        {"column_count_between": {"min": 31, "max": 31}},
        {"in_set": {"column": "target", "values": [0, 1]}},
        {"not_null": {"column": "mean radius"}},
        {"between": {"column": "mean radius", "min": 0, "max": 100}},
        {"between": {"column": "mean area", "min": 0, "max": 10_000}},
        {"mean_between": {"column": "target", "min": 0.3, "max": 0.8}},
    ],
}


@step
def validate_data(frame: Any, suite: dict[str, Any]) -> Any:
    """Validate the data (logged as a run of experiment ``data-validation``); a failed check stops
    every step after it. Returns the frame, so the steps that use it run after the validation."""
    from keel.data.history import validate_and_log

    result = validate_and_log(frame, suite, name="sklearn/breast_cancer")
    if not result.passed:
        failed = ", ".join(check.name for check in result.failures())
        raise ValueError(
            f"the breast-cancer data failed validation ({failed}); see `keel runs show {result.run_id}`"
        )
    return frame


@step(outputs=("x_train", "x_val", "y_train", "y_val"))
def split(frame: Any, test_size: float = 0.25, seed: int = 42) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    target = frame["target"].to_numpy()
    return tuple(
        train_test_split(
            frame.drop(columns="target").to_numpy(),
            target,
            test_size=test_size,
            random_state=seed,
            stratify=target,
        )
    )


@step
def train(
    candidate: dict[str, Any], frame: Any, x_train: Any, x_val: Any, y_train: Any, y_val: Any, experiment: str
) -> dict[str, Any]:
    """Train one candidate in its own tracked run; return its run id and validation scores."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

    import keel

    kind = candidate["name"]
    params = {k: v for k, v in candidate.items() if k != "name"}
    data = {"x_train": x_train, "x_val": x_val, "y_train": y_train, "y_val": y_val}
    started = time.perf_counter()
    with keel.start_run(
        experiment=experiment,
        name=kind,
        nested=keel.active_run() is not None,
        system_metrics=keel.Settings.load().system_metrics,
        tags={"source": "keel quickstart", "dataset": "breast_cancer"},
    ) as run:
        keel.log_params({**params, "train_rows": len(x_train), "val_rows": len(x_val)})
        keel.log_input(frame, name="sklearn/breast_cancer", source="sklearn.datasets")
        model = _train(kind, params, data, keel.log_metrics)
        proba = model.predict_proba(x_val)[:, 1]
        predicted = (proba > 0.5).astype(int)
        scores = {
            "accuracy": float(accuracy_score(y_val, predicted)),
            "f1": float(f1_score(y_val, predicted)),
            "roc_auc": float(roc_auc_score(y_val, proba)),
        }
        keel.log_metrics(scores)
        matrix = confusion_matrix(y_val, predicted)
        figure = _confusion_figure(matrix, f"{kind}: accuracy {scores['accuracy']:.3f}")
        keel.log_figure(figure, "plots/confusion_matrix.png")
        plt.close(figure)
        keel.log_dict({"confusion_matrix": matrix.tolist(), **scores}, "evaluation.json")
        keel.log_model(model, "model", input_example=x_val[:5])
    return {"run_id": run.run_id, "name": kind, **scores, "seconds": round(time.perf_counter() - started, 2)}


@step
def register_best(results: list[dict[str, Any]], model_name: str) -> dict[str, Any]:
    """Register the best candidate (by ROC AUC, then accuracy) and point ``@champion`` at it."""
    import keel

    best = max(results, key=lambda r: (r["roc_auc"], r["accuracy"]))
    client = keel.Client()
    version = client.register_model(
        f"runs:/{best['run_id']}/model", model_name, description=f"best of keel quickstart: {best['name']}"
    )
    client.set_model_alias(model_name, "champion", version.version)
    return {
        "model": model_name,
        "version": version.version,
        "champion_run_id": best["run_id"],
        "champion": best["name"],
    }


@pipeline(name="quickstart")
def quickstart_pipeline(
    experiment: str = "quickstart", model_name: str = "breast-cancer-classifier"
) -> dict[str, Any]:
    frame = validate_data(load_data(), DATA_SUITE)
    x_train, x_val, y_train, y_val = split(frame)
    candidates = [{"name": kind, **params} for kind, params in _candidates()]
    results = train.map(
        candidates,
        frame=frame,
        x_train=x_train,
        x_val=x_val,
        y_train=y_train,
        y_val=y_val,
        experiment=experiment,
    )
    return {"results": results, "registered": register_best(results, model_name)}


def activate_hint(executable: str, path: str, cwd: Path) -> str | None:
    """``source .venv/bin/activate`` when the virtualenv keel runs from is not on ``PATH``, else None.

    ``make demo`` installs keel in ``.venv`` and runs ``.venv/bin/keel`` without activating it, so
    the ``keel …`` and ``python -c …`` lines printed after the table would answer "command not found"
    (or run another Python) in the newcomer's shell. Not a virtualenv (no ``activate`` beside the
    interpreter): nothing to say.
    """
    bin_dir = Path(executable).parent  # not resolved: a venv's python is a link to the base one
    if not (bin_dir / "activate").is_file():
        return None
    on_path = {Path(entry).resolve() for entry in path.split(os.pathsep) if entry}
    if bin_dir.resolve() in on_path:
        return None
    try:
        shown = str(bin_dir.resolve().relative_to(cwd.resolve()))
    except ValueError:
        shown = str(bin_dir.resolve())
    return f"source {shlex.quote(shown + '/activate')}"


def next_steps(model_name: str, run_ids: list[str], pipeline_run_id: int) -> list[str]:
    """The commands printed after the table (``keel runs compare …``), each a line to paste."""
    lines = []
    activate = activate_hint(sys.executable, os.environ.get("PATH", ""), Path.cwd())
    if activate:
        lines.append(f"  {activate}    # keel is installed in this virtualenv, not yet on your PATH")
    return [
        *lines,
        f"  keel runs compare {' '.join(run_id[:8] for run_id in run_ids[:2])}",
        f"  keel models show {model_name}",
        f"  keel pipeline show {pipeline_run_id}",
        "  keel ui                      # look at the runs, charts, data validation and pipeline",
        f"  python -c \"import keel; print(keel.load_model('models:/{model_name}@champion'))\"",
    ]


def print_next_steps(out: Any, model_name: str, run_ids: list[str], pipeline_run_id: int) -> None:
    """Print :func:`next_steps` on a rich console, each on one line whatever the terminal's width:
    a command folded in two (``python -c "import keel;`` / ``print(…)"``) cannot be pasted."""
    for line in next_steps(model_name, run_ids, pipeline_run_id):
        out.print(line, soft_wrap=True, markup=False)


def print_results(experiment: str, results: list[dict[str, Any]]) -> None:
    """The candidates side by side; ids and numbers stay whole on a narrow terminal (model names fold)."""
    from keel.tracking.cost import format_usd

    table(
        f"keel quickstart: experiment {experiment!r}",
        ["run", "model", "accuracy", "f1", "roc_auc", "time", "cost", ""],
        [
            [
                r["run_id"][:8],
                r["name"],
                f"{r['accuracy']:.4f}",
                f"{r['f1']:.4f}",
                f"{r['roc_auc']:.4f}",
                format_duration(int(r["seconds"] * 1000)),
                format_usd(r["cost_usd"]) if r["cost_usd"] is not None else "",
                "@champion" if r["champion"] else "",
            ]
            for r in results
        ],
        whole=["run", "accuracy", "f1", "roc_auc", "time", "cost"],
    )


def run_quickstart(
    experiment: str = "quickstart", model_name: str = "breast-cancer-classifier", json_output: bool = False
) -> list[dict[str, Any]]:
    _require()
    import keel

    outcome = quickstart_pipeline.run(
        {"experiment": experiment, "model_name": model_name}, progress=None if not json_output else False
    )
    if not outcome.ok:
        failed = "; ".join(
            f"{node}: {error.strip().splitlines()[-1]}" for node, error in outcome.failed.items()
        )
        raise KeelError(f"keel quickstart failed: {failed}")
    registered = outcome.outputs["registered"]
    client = keel.Client()
    results = [dict(r) for r in outcome.outputs["results"]]
    for result in results:
        result["cost_usd"] = client.get_run(result["run_id"]).cost_usd
        result["champion"] = result["run_id"] == registered["champion_run_id"]
    cached = sum(record.cache_hit for record in outcome.nodes.values())
    if json_output:
        print_json(
            {
                "experiment": experiment,
                "model": model_name,
                "version": registered["version"],
                "champion_run_id": registered["champion_run_id"],
                "runs": results,
                "pipeline_run_id": outcome.pipeline_run_id,
                "cached_steps": cached,
            }
        )
        return results
    print_results(experiment, results)
    out = console()
    if cached == len(outcome.nodes):
        out.print(
            f"nothing changed: all {cached} steps came from the cache "
            f"(pipeline run {outcome.pipeline_run_id})."
        )
    out.print(f"{model_name} version {registered['version']} is @champion ({registered['champion']}). Next:")
    print_next_steps(out, model_name, [r["run_id"] for r in results], outcome.pipeline_run_id)
    return results
