"""Small objects that ``load_model`` returns where the library has no loadable object of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keel.errors import InvalidInputError

__all__ = ["LightGBMModel", "OnnxModel"]

# ONNX element types as onnxruntime names them -> the numpy dtype a caller's array is cast to
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


class OnnxModel:
    """An ONNX model ready to run: ``.session`` is its ``onnxruntime.InferenceSession``.

    ``predict`` takes one array (for a model with a single input) or a dict of arrays by input name,
    casts each array to the declared element type where numpy calls that cast same-kind (float64 to
    float32, say), and returns the single output array, or the list of outputs when there are
    several.

    Example::

        >>> model = load_model("model-dir")
        >>> model.predict(np.ones((2, 3)))
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_names: list[str] = [item.name for item in session.get_inputs()]
        self.output_names: list[str] = [item.name for item in session.get_outputs()]
        self._input_types = {item.name: item.type for item in session.get_inputs()}

    def _feed(self, inputs: Any) -> dict[str, Any]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.input_names))
            if unknown:
                raise InvalidInputError(
                    f"Unknown ONNX input name(s) {unknown}; the model takes {self.input_names}."
                )
            named = dict(inputs)
        elif len(self.input_names) == 1:
            named = {self.input_names[0]: inputs}
        else:
            raise InvalidInputError(
                f"This ONNX model takes {len(self.input_names)} inputs {self.input_names}; "
                "pass a dict of arrays keyed by input name."
            )
        feed = {}
        for name, value in named.items():
            array = np.asarray(value)
            target = _ONNX_DTYPES.get(self._input_types[name])
            if target is not None and array.dtype != target:
                if not np.can_cast(array.dtype, target, casting="same_kind"):
                    raise InvalidInputError(
                        f"ONNX input {name!r} expects {self._input_types[name]}; cannot cast an "
                        f"array of {array.dtype} to it."
                    )
                array = array.astype(target)
            feed[name] = array
        return feed

    def predict(self, inputs: Any) -> Any:
        """Run the model; return the single output, or a list of outputs in the model's order."""
        outputs: list[Any] = self.session.run(None, self._feed(inputs))
        return outputs[0] if len(outputs) == 1 else outputs

    def __repr__(self) -> str:
        return f"OnnxModel(inputs={self.input_names}, outputs={self.output_names})"


class LightGBMModel:
    """A LightGBM model saved from ``LGBMClassifier``, ``LGBMRegressor`` or another ``LGBMModel``.

    LightGBM has no public way to rebuild its scikit-learn wrappers from a model file, so keel
    returns this object instead: ``.booster`` is the ``lightgbm.Booster`` loaded from the native
    text format, ``.classes_`` the classifier's labels (``None`` for a regressor). ``predict`` gives
    the same values as the original wrapper (labels for a classifier, following its argmax rule),
    and ``predict_proba`` the class probabilities.
    """

    def __init__(self, booster: Any, *, classes: Sequence[Any] | np.ndarray | None, model_class: str) -> None:
        self.booster = booster
        self.classes_ = None if classes is None else np.asarray(classes)
        self.model_class = model_class
        self.n_features_in_: int = int(booster.num_feature())

    @property
    def is_classifier(self) -> bool:
        """Whether the saved wrapper was a classifier."""
        return self.classes_ is not None

    def predict_proba(self, data: Any, **kwargs: Any) -> Any:
        """Class probabilities, shape ``(n_rows, n_classes)``, like ``LGBMClassifier``'s."""
        if self.classes_ is None:
            raise InvalidInputError(f"{self.model_class} is a regressor; it has no predict_proba.")
        result = np.asarray(self.booster.predict(data, **kwargs))
        if result.ndim == 1:  # binary objectives give the positive class only
            result = np.vstack((1.0 - result, result)).T
        return result

    def predict(self, data: Any, **kwargs: Any) -> Any:
        """Predicted labels for a classifier, predicted values for a regressor."""
        if self.classes_ is None or any(
            kwargs.get(flag) for flag in ("raw_score", "pred_leaf", "pred_contrib")
        ):
            return self.booster.predict(data, **kwargs)
        return self.classes_[np.argmax(self.predict_proba(data, **kwargs), axis=1)]

    def __repr__(self) -> str:
        return f"LightGBMModel(model_class={self.model_class!r}, classes={self.classes_!r})"
