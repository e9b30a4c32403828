"""Metadata persistence: the ``Store`` protocol and its SQL implementation."""

from __future__ import annotations

from keel.store.base import Store, open_store

__all__ = ["Store", "open_store"]
