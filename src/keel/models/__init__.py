"""Save and load models in safe formats, by flavor, with a sha256-checked manifest.

    >>> from keel.models import save_model, load_model
    >>> save_model(estimator, "out/model", input_example=X)
    >>> load_model("out/model").predict(X)

Importing this package imports no machine-learning library; each flavor imports its own when used.
"""

from __future__ import annotations

from keel.models.base import Flavor
from keel.models.flavors import FLAVORS, flavor_for
from keel.models.manifest import MANIFEST_NAME
from keel.models.saving import load_model, save_model
from keel.models.signature import infer_signature
from keel.models.wrappers import LightGBMModel, OnnxModel

__all__ = [
    "FLAVORS",
    "MANIFEST_NAME",
    "Flavor",
    "LightGBMModel",
    "OnnxModel",
    "flavor_for",
    "infer_signature",
    "load_model",
    "save_model",
]
