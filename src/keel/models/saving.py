"""``save_model`` and ``load_model``: a model folder with its manifest, written and read safely."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from keel.errors import ArtifactCorruptedError, InvalidInputError
from keel.models.flavors import FLAVORS, flavor_for, get_flavor
from keel.models.manifest import (
    build_manifest,
    hash_folder,
    read_manifest,
    read_verified_files,
    write_manifest,
)
from keel.models.signature import head, infer_signature, validate_signature

__all__ = ["load_model", "save_model"]

_EXAMPLE_ROWS = 5


def _prepare_folder(folder: Path) -> bool:
    """Make sure ``folder`` is a new or empty directory; return whether it was created."""
    if folder.exists():
        if not folder.is_dir():
            raise InvalidInputError(f"{str(folder)!r} exists and is not a folder.")
        if any(folder.iterdir()):
            raise InvalidInputError(
                f"{str(folder)!r} is not empty. save_model writes into a new or empty folder, so "
                "that nothing unlisted sits beside the model; choose another path."
            )
        return False
    folder.mkdir(parents=True)
    return True


def _clean(folder: Path, created: bool) -> None:
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for child in folder.iterdir():  # the folder was empty before: everything in it is ours
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _signature_for(model: Any, input_example: Any, signature: Any) -> dict[str, Any] | None:
    if signature is not None:
        return validate_signature(signature)
    if input_example is None:
        return None
    inferred = infer_signature(input_example)
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            inferred["outputs"] = infer_signature(predict(head(input_example, _EXAMPLE_ROWS)))["inputs"]
        except Exception:  # an example the model cannot score still gives the input signature
            inferred["outputs"] = None
    return inferred


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: dict[str, Any] | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Write ``model`` into the empty or non-existing folder ``path`` and return its manifest.

    The flavor is ``flavor`` if given, else :func:`flavor_for` picks it from the model's type. The
    folder gets the flavor's file and ``keel-model.json``, which records the flavor, each file's
    sha256, the signature, the library and Python versions and the time. Without ``signature``, an
    ``input_example`` gives one: inputs from the example, outputs from ``model.predict`` on its
    first five rows when the model has ``predict`` (``None`` if that fails). The example itself is
    not stored. Objects without a safe flavor are pickled, which needs ``trust=True``. On failure
    the folder is left as it was found.

    Example::

        >>> manifest = save_model(LogisticRegression().fit(X, y), "out/model", input_example=X)
        >>> manifest["flavor"], sorted(manifest["files"])
        ('sklearn', ['model.skops'])
    """
    chosen = get_flavor(flavor) if flavor is not None else FLAVORS[flavor_for(model)]
    chosen.check_save(model, trust=trust)
    model_signature = _signature_for(model, input_example, signature)
    folder = Path(path)
    created = _prepare_folder(folder)
    try:
        saved = chosen.save(model, folder / chosen.filename)
        manifest = build_manifest(
            flavor=chosen.name,
            files=hash_folder(folder),
            signature=model_signature,
            library_name=saved.library_name,
            library_version=saved.library_version,
            model_class=_class_name(model),
            flavor_options=saved.options,
            trusted_pickle=chosen.uses_pickle,
        )
        write_manifest(folder, manifest)
    except BaseException:
        _clean(folder, created)
        raise
    return manifest


def load_model(
    path: str | os.PathLike[str],
    *,
    trust: bool = False,
    expected_sha256: dict[str, str] | None = None,
    torch_module: Any = None,
) -> Any:
    """Load the model saved in folder ``path``, after checking the sha256 of every file it lists.

    Each file named in the manifest is read once and must match its recorded sha256
    (:class:`~keel.errors.ArtifactCorruptedError` names the file otherwise); with
    ``expected_sha256`` (the mapping recorded at registration) the manifest's mapping must also
    equal it. Only then are the verified bytes deserialized. A pickled model, or a skops file using
    types outside keel's allowlist, needs ``trust=True``. What comes back depends on the flavor: the
    estimator (sklearn), the same XGBoost class, a ``lightgbm.Booster`` or a
    :class:`~keel.models.LightGBMModel` for the scikit-learn wrappers, an
    :class:`~keel.models.OnnxModel`, the state dict of a PyTorch model (or ``torch_module`` with it
    loaded), or the unpickled object.

    Example::

        >>> model = load_model("out/model", expected_sha256=version.files)
        >>> model.predict(X[:3])
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    flavor = get_flavor(manifest.get("flavor"))
    if torch_module is not None and flavor.name != "pytorch":
        raise InvalidInputError(
            f"torch_module applies to the pytorch flavor only; this model is {flavor.name!r}."
        )
    flavor.check_load(manifest, trust=trust)
    contents = read_verified_files(folder, manifest, expected_sha256)
    if flavor.filename not in contents:
        raise ArtifactCorruptedError(
            f"The manifest of {str(folder)!r} does not list the {flavor.name} model file "
            f"{flavor.filename!r}; the folder is damaged or was tampered with.",
            expected=flavor.filename,
            actual="<absent>",
        )
    return flavor.load(contents[flavor.filename], manifest, trust=trust, torch_module=torch_module)
