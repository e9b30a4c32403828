"""Model flavors: how each kind of model becomes a file in a safe format and comes back.

=================  ====================  ===========================================================
flavor             file                  format
=================  ====================  ===========================================================
sklearn            model.skops           skops (no pickle; types outside an allowlist need trust)
xgboost            model.json            XGBoost's native JSON
lightgbm           model.txt             LightGBM's native text model
onnx               model.onnx            the ONNX protobuf
pytorch            model.safetensors     the module's state_dict in safetensors
python_function    model.pkl             cloudpickle (or pickle): needs ``trust=True`` both ways
=================  ====================  ===========================================================

Libraries are imported inside the functions that need them, so ``import keel.models`` stays light;
choosing a flavor for an object reads only the module names of its class hierarchy.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from keel.errors import InvalidInputError, TrustError
from keel.models.base import (
    Flavor,
    SavedFlavor,
    class_keys,
    distribution_version,
    nearest_class,
    require,
)
from keel.models.skops_trust import check_skops_types, is_trusted_skops_type
from keel.models.wrappers import LightGBMModel, OnnxModel

__all__ = ["FLAVORS", "flavor_for", "get_flavor", "is_trusted_skops_type"]


class SklearnFlavor(Flavor):
    name = "sklearn"
    filename = "model.skops"
    package = "skops"
    extra = "sklearn"

    def matches(self, keys: set[tuple[str, str]]) -> bool:
        return any(package == "sklearn" for package, _ in keys)

    def save(self, model: Any, file: Path) -> SavedFlavor:
        skops_io = require("skops.io", package="skops", extra="sklearn", purpose="Saving with skops")
        skops_io.dump(model, file)
        return SavedFlavor(
            "scikit-learn",
            distribution_version("scikit-learn"),
            {"skops_version": distribution_version("skops")},
        )

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        skops_io = require("skops.io", package="skops", extra="sklearn", purpose="Loading with skops")
        trusted = check_skops_types(skops_io.get_untrusted_types(data=data), trust=trust)
        return skops_io.loads(data, trusted=trusted)


class XGBoostFlavor(Flavor):
    name = "xgboost"
    filename = "model.json"
    package = "xgboost-cpu"
    extra = "xgboost"
    markers = frozenset({("xgboost", "Booster"), ("xgboost", "XGBModel")})

    def save(self, model: Any, file: Path) -> SavedFlavor:
        xgboost = require("xgboost", package=self.package, extra=self.extra, purpose="Saving XGBoost")
        cls = nearest_class(model, "xgboost")
        if not (cls is xgboost.Booster or issubclass(cls, xgboost.XGBModel)):
            raise InvalidInputError(f"xgboost.{cls.__name__} is not a Booster or an XGBModel.")
        if getattr(xgboost, cls.__name__, None) is not cls:
            raise InvalidInputError(f"{cls.__qualname__} is not public in the xgboost package.")
        model.save_model(str(file))
        return SavedFlavor("xgboost", xgboost.__version__, {"xgboost_class": cls.__name__})

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        xgboost = require("xgboost", package=self.package, extra=self.extra, purpose="Loading XGBoost")
        class_name = str(manifest.get("flavor_options", {}).get("xgboost_class", "Booster"))
        cls = getattr(xgboost, class_name, None)
        if not (cls is xgboost.Booster or (isinstance(cls, type) and issubclass(cls, xgboost.XGBModel))):
            raise InvalidInputError(f"The manifest names an unknown XGBoost class {class_name!r}.")
        model = cls()
        model.load_model(bytearray(data))
        return model


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    filename = "model.txt"
    package = "lightgbm"
    extra = "lightgbm"
    markers = frozenset({("lightgbm", "Booster"), ("lightgbm", "LGBMModel")})

    def save(self, model: Any, file: Path) -> SavedFlavor:
        lightgbm = require("lightgbm", package="lightgbm", extra="lightgbm", purpose="Saving LightGBM")
        options: dict[str, Any] = {"lightgbm_class": nearest_class(model, "lightgbm").__name__}
        if isinstance(model, lightgbm.Booster):
            booster = model
        elif isinstance(model, lightgbm.LGBMModel):
            if not getattr(model, "fitted_", False):
                raise InvalidInputError("Fit the LightGBM model before saving it.")
            booster = model.booster_
            if isinstance(model, lightgbm.LGBMClassifier):
                options["classes"] = model.classes_.tolist()
                options["classes_dtype"] = model.classes_.dtype.str
                try:
                    json.dumps(options["classes"])
                except TypeError as exc:
                    raise InvalidInputError(
                        f"The classifier's labels cannot be written as JSON ({exc}); save it "
                        "with flavor='sklearn' instead."
                    ) from exc
        else:
            raise InvalidInputError(f"A {type(model).__qualname__} is not a LightGBM model.")
        booster.save_model(file)
        return SavedFlavor("lightgbm", lightgbm.__version__, options)

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        """Return a ``lightgbm.Booster`` for a saved Booster, else a :class:`LightGBMModel`."""
        lightgbm = require("lightgbm", package="lightgbm", extra="lightgbm", purpose="Loading LightGBM")
        booster = lightgbm.Booster(model_str=data.decode("utf-8"))
        options = manifest.get("flavor_options", {})
        class_name = str(options.get("lightgbm_class", "Booster"))
        if class_name == "Booster":
            return booster
        classes = None
        if options.get("classes") is not None:
            import numpy as np

            classes = np.asarray(options["classes"], dtype=np.dtype(options["classes_dtype"]))
        return LightGBMModel(booster, classes=classes, model_class=f"lightgbm.{class_name}")


class OnnxFlavor(Flavor):
    name = "onnx"
    filename = "model.onnx"
    package = "onnx"
    extra = "onnx"
    markers = frozenset({("onnx", "ModelProto")})

    def save(self, model: Any, file: Path) -> SavedFlavor:
        onnx = require("onnx", package="onnx", extra="onnx", purpose="Saving an ONNX model")
        if isinstance(model, bytes | bytearray | memoryview):
            proto = onnx.ModelProto()
            try:
                proto.ParseFromString(bytes(model))
            except Exception as exc:  # protobuf's DecodeError has no stable import path
                raise InvalidInputError(f"The bytes given are not an ONNX model ({exc}).") from exc
            if not proto.ir_version:  # protobuf parses many byte strings into an empty message
                raise InvalidInputError("The bytes given are not an ONNX model (no ir_version).")
        elif isinstance(model, onnx.ModelProto):
            proto = model
        else:
            raise InvalidInputError(
                f"The onnx flavor takes an onnx.ModelProto or its bytes, not a {type(model).__qualname__}."
            )
        _refuse_external_data(proto, "save")
        file.write_bytes(proto.SerializeToString())
        opsets = {item.domain or "ai.onnx": item.version for item in proto.opset_import}
        return SavedFlavor("onnx", onnx.__version__, {"ir_version": proto.ir_version, "opset_import": opsets})

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        """Return an :class:`OnnxModel` on CUDA where onnxruntime offers it, else on the CPU."""
        onnx = require("onnx", package="onnx", extra="onnx", purpose="Loading an ONNX model")
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(data)
        except Exception as exc:  # protobuf's DecodeError has no stable import path
            raise InvalidInputError(f"The model file is not an ONNX model ({exc}).") from exc
        _refuse_external_data(proto, "load")
        ort = require("onnxruntime", package="onnxruntime", extra="onnx", purpose="Running ONNX")
        available = ort.get_available_providers()
        providers = [name for name in ("CUDAExecutionProvider", "CPUExecutionProvider") if name in available]
        return OnnxModel(ort.InferenceSession(data, providers=providers or available))


def _external_tensors(proto: Any) -> list[str]:
    """Names of the tensors of an ONNX model whose bytes live in files beside it (initializers,
    sparse initializers and node attributes, in every subgraph and function)."""
    found: list[str] = []

    def tensor(item: Any) -> None:
        if item.data_location == 1 or len(item.external_data):  # TensorProto.EXTERNAL
            found.append(item.name or "<unnamed>")

    graphs, nodes = [proto.graph], [node for function in proto.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            for item in graph.initializer:
                tensor(item)
            for sparse in graph.sparse_initializer:
                tensor(sparse.values)
                tensor(sparse.indices)
            nodes.extend(graph.node)
            continue
        for attribute in nodes.pop().attribute:
            for item in [attribute.t, *attribute.tensors]:
                tensor(item)
            for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
                tensor(sparse.values)
                tensor(sparse.indices)
            graphs.extend([attribute.g, *attribute.graphs])
    return found


def _refuse_external_data(proto: Any, action: str) -> None:
    """A keel model file holds its weights inline. A tensor stored "externally" names a file that
    onnxruntime reads, for a model loaded from bytes, from the current folder: a crafted model could
    carry any file there (``.env``, a key) into its predictions."""
    external = _external_tensors(proto)
    if external:
        raise InvalidInputError(
            f"Refusing to {action} an ONNX model whose tensors {', '.join(sorted(external)[:5])} refer "
            "to external data files: onnxruntime would read those files from the current folder. "
            "Load the model with its data inline (onnx.load(path, load_external_data=True)) and save "
            "that."
        )


class PyTorchFlavor(Flavor):
    name = "pytorch"
    filename = "model.safetensors"
    package = "torch"
    extra = "torch"
    markers = frozenset({("torch", "Module")})

    def _libraries(self, purpose: str) -> tuple[Any, Any]:
        torch = require("torch", package="torch", extra="torch", purpose=purpose)
        safetensors_torch = require(
            "safetensors.torch", package="safetensors", extra="torch", purpose=purpose
        )
        return torch, safetensors_torch

    def save(self, model: Any, file: Path) -> SavedFlavor:
        torch, safetensors_torch = self._libraries("Saving a PyTorch model")
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(f"A {type(model).__qualname__} is not a torch.nn.Module.")
        tensors: dict[str, Any] = {}
        storages: set[int] = set()
        for key, value in model.state_dict().items():
            if not isinstance(value, torch.Tensor):
                raise InvalidInputError(
                    f"state_dict entry {key!r} is a {type(value).__qualname__}, not a tensor; "
                    "safetensors stores tensors only."
                )
            tensor = value.detach().cpu().contiguous()
            storage = tensor.untyped_storage().data_ptr()
            if storage in storages:  # tied weights: safetensors refuses shared memory, so copy
                tensor = tensor.clone()
            storages.add(tensor.untyped_storage().data_ptr())
            tensors[key] = tensor
        safetensors_torch.save_file(tensors, str(file))
        return SavedFlavor(
            "torch",
            torch.__version__,
            {"safetensors_version": distribution_version("safetensors")},
        )

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        """Return the state dict, or ``torch_module`` with the state dict loaded into it."""
        torch, safetensors_torch = self._libraries("Loading a PyTorch model")
        state = safetensors_torch.load(data)
        if torch_module is None:
            return state
        if not isinstance(torch_module, torch.nn.Module):
            raise InvalidInputError("torch_module must be a torch.nn.Module instance.")
        try:
            torch_module.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"The saved state does not fit the {type(torch_module).__qualname__} given (saved "
                f"from {manifest.get('model_class')}): {exc}"
            ) from exc
        return torch_module


class PythonFunctionFlavor(Flavor):
    name = "python_function"
    filename = "model.pkl"
    package = "cloudpickle"
    extra = "pickle"
    uses_pickle = True

    def matches(self, keys: set[tuple[str, str]]) -> bool:
        return True

    def check_save(self, model: Any, *, trust: bool) -> None:
        if not trust:
            raise TrustError(
                f"A {type(model).__qualname__} has no safe flavor, so it would be pickled, and "
                "unpickling runs code when the model is loaded. Pass trust=True to pickle it "
                "anyway, or save a model of a safe flavor (sklearn, xgboost, lightgbm, onnx, "
                "pytorch) or pass flavor= to choose one."
            )

    def check_load(self, manifest: Mapping[str, Any], *, trust: bool) -> None:
        if not trust:
            raise TrustError(
                "This model is a pickle; unpickling runs whatever code the file holds. Pass "
                "trust=True only for a model from a trusted source (its sha256 is checked first)."
            )

    def save(self, model: Any, file: Path) -> SavedFlavor:
        try:
            import cloudpickle as serializer  # pickles lambdas and classes defined in __main__
        except ImportError:
            serializer = pickle
        name = serializer.__name__
        try:
            data = serializer.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInputError(f"Cannot pickle the {type(model).__qualname__}: {exc}") from exc
        file.write_bytes(data)
        version = distribution_version("cloudpickle") if name == "cloudpickle" else None
        return SavedFlavor(
            name,
            version or sys.version.split()[0],
            {"serializer": name, "protocol": pickle.DEFAULT_PROTOCOL},
        )

    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        self.check_load(manifest, trust=trust)
        if manifest.get("flavor_options", {}).get("serializer") == "cloudpickle":
            require("cloudpickle", package="cloudpickle", extra="pickle", purpose="Unpickling")
        return pickle.loads(data)


_ALIASES = MappingProxyType({"pickle": "python_function"})

#: every flavor by name, in the order flavor_for tries them
FLAVORS: Mapping[str, Flavor] = MappingProxyType(
    {
        flavor.name: flavor
        for flavor in (
            XGBoostFlavor(),
            LightGBMFlavor(),
            OnnxFlavor(),
            PyTorchFlavor(),
            SklearnFlavor(),
            PythonFunctionFlavor(),
        )
    }
)


def get_flavor(name: Any) -> Flavor:
    """Return the flavor called ``name`` (``"pickle"`` is another name for ``python_function``)."""
    canonical = _ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(canonical, str) or canonical not in FLAVORS:
        known = ", ".join(sorted([*FLAVORS, *_ALIASES]))
        raise InvalidInputError(f"Unknown model flavor {name!r}; known flavors: {known}.")
    return FLAVORS[canonical]


def flavor_for(model: Any) -> str:
    """Pick the flavor name for a model from its class hierarchy, importing nothing.

    XGBoost and LightGBM models (Booster or scikit-learn API) get their native flavors, an
    ``onnx.ModelProto`` gets ``onnx``, a ``torch.nn.Module`` gets ``pytorch``, anything else built
    on scikit-learn classes gets ``sklearn``, and every other object ``python_function`` (a pickle,
    which needs ``trust=True``). Serialized ONNX bytes are not recognised: pass ``flavor="onnx"``.

    Example::

        >>> flavor_for(LogisticRegression())
        'sklearn'
    """
    keys = class_keys(model)
    return next(flavor.name for flavor in FLAVORS.values() if flavor.matches(keys))
