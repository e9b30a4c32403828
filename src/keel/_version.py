"""keel's version, in a core module of its own so that any layer can read it without importing the
public namespace (``keel/__init__.py``), which sits above every layer."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
