"""``keel quickstart``: a complete, tracked training session in under a minute.

Trains four scikit-learn classifiers on the breast-cancer data set that ships with scikit-learn,
logging params, per-iteration validation metrics, the data set as an input, the model (skops), a
confusion-matrix plot, system metrics and cost; registers the best as ``@champion``.
"""

from __future__ import annotations

import time
from typing import Any

from keel.cli._output import console, format_duration, print_json, table
from keel.errors import MissingDependencyError


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

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(3.6, 3.2))
    axes.imshow(matrix, cmap="Blues")
    for (i, j), value in __import__("numpy").ndenumerate(matrix):
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


def run_quickstart(
    experiment: str = "quickstart",
    model_name: str = "breast-cancer-classifier",
    json_output: bool = False,
) -> list[dict[str, Any]]:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import skops  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "scikit-learn", "quickstart", "keel quickstart") from None
    import matplotlib.pyplot as plt
    from rich.progress import Progress
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import keel

    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns="target")
    x_train, x_val, y_train, y_val = train_test_split(
        features.to_numpy(),
        frame["target"].to_numpy(),
        test_size=0.25,
        random_state=42,
        stratify=frame["target"].to_numpy(),
    )
    data = {"x_train": x_train, "x_val": x_val, "y_train": y_train, "y_val": y_val}
    results: list[dict[str, Any]] = []
    out = console(stderr=True)
    with Progress(console=out, transient=True, disable=json_output) as progress:
        task = progress.add_task("training", total=len(_candidates()))
        for kind, params in _candidates():
            progress.update(task, description=f"training {kind}")
            started = time.perf_counter()
            with keel.start_run(
                experiment=experiment,
                name=kind,
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
                info = keel.log_model(model, "model", input_example=x_val[:5])
            results.append(
                {
                    "run_id": run.run_id,
                    "name": kind,
                    **scores,
                    "seconds": round(time.perf_counter() - started, 2),
                    "model": info,
                }
            )
            progress.advance(task)

    best = max(results, key=lambda r: (r["roc_auc"], r["accuracy"]))
    client = keel.Client()
    version = client.register_model(
        f"runs:/{best['run_id']}/model",
        model_name,
        description=f"best of keel quickstart: {best['name']}",
    )
    client.set_model_alias(model_name, "champion", version.version)
    for result in results:
        result["cost_usd"] = client.get_run(result["run_id"]).cost_usd
        result["champion"] = result is best
        result.pop("model")
    if json_output:
        print_json(
            {
                "experiment": experiment,
                "model": model_name,
                "version": version.version,
                "champion_run_id": best["run_id"],
                "runs": results,
            }
        )
        return results
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
    )
    out = console()
    out.print(
        f"registered [bold]{model_name}[/] version {version.version} as @champion ({best['name']}). Next:"
    )
    out.print(f"  keel runs compare {' '.join(r['run_id'][:8] for r in results[:2])}")
    out.print(f"  keel models show {model_name}")
    out.print(f"  python -c \"import keel; print(keel.load_model('models:/{model_name}@champion'))\"")
    return results
