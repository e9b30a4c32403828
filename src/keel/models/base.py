"""The extension point for model flavors, and helpers the built-in flavors share.

A flavor writes one file into a model folder and reads it back from bytes whose sha256 was already
checked; ``keel.models.saving`` does the folder, the manifest and the hashing around it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from keel.errors import InvalidInputError, MissingDependencyError

__all__ = [
    "Flavor",
    "SavedFlavor",
    "class_keys",
    "distribution_version",
    "nearest_class",
    "require",
]


@dataclass(frozen=True)
class SavedFlavor:
    """What a flavor reports after writing its file: the model's library, and load options."""

    library_name: str
    library_version: str | None
    options: dict[str, Any] = field(default_factory=dict)


def require(module: str, *, package: str, extra: str, purpose: str) -> Any:
    """Import ``module``, or raise MissingDependencyError naming the pip package and keel extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, purpose) from exc


def distribution_version(*names: str) -> str | None:
    """The installed version of the first of these distributions that is installed, else None."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def class_keys(model: Any) -> set[tuple[str, str]]:
    """``(top-level package, class name)`` for every class in the model's type hierarchy."""
    return {(cls.__module__.partition(".")[0], cls.__name__) for cls in type(model).__mro__}


def nearest_class(model: Any, package: str) -> type:
    """The first class in the model's hierarchy that the library ``package`` itself defines."""
    for cls in type(model).__mro__:
        if cls.__module__.partition(".")[0] == package:
            return cls
    raise InvalidInputError(f"A {type(model).__qualname__} is not a {package} model.")


class Flavor(ABC):
    """One way of writing a kind of model to a single file in a model folder and reading it back."""

    name: ClassVar[str]
    filename: ClassVar[str]
    #: pip package and keel extra that provide the library, for MissingDependencyError
    package: ClassVar[str]
    extra: ClassVar[str]
    #: (top-level package, class name) pairs; a model with any of them in its MRO gets this flavor
    markers: ClassVar[frozenset[tuple[str, str]]] = frozenset()
    uses_pickle: ClassVar[bool] = False

    def matches(self, keys: set[tuple[str, str]]) -> bool:
        """Whether a model whose class hierarchy has these :func:`class_keys` gets this flavor."""
        return bool(self.markers & keys)

    def check_save(self, model: Any, *, trust: bool) -> None:
        """Refuse before anything is written (the default accepts)."""
        return None

    def check_load(self, manifest: Mapping[str, Any], *, trust: bool) -> None:
        """Refuse before any file is read (the default accepts)."""
        return None

    @abstractmethod
    def save(self, model: Any, file: Path) -> SavedFlavor:
        """Write ``model`` to ``file``."""

    @abstractmethod
    def load(self, data: bytes, manifest: Mapping[str, Any], *, trust: bool, torch_module: Any) -> Any:
        """Rebuild the model from the verified bytes of its file."""
