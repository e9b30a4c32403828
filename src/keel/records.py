"""A frozen record without ``dataclasses``: for the records every ``start_run`` builds.

``dataclasses`` costs a process's first ``start_run`` ~10 ms to import (it brings ``inspect``,
``ast`` and ``dis``), more than the call itself (issue 11, ADR 013). Settings and naming rules are
frozen records; this base class gives them what they used from it: frozen fields, equality, a
repr that leaves secrets out, and the field names in order (``dataclasses.fields``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Frozen"]


class Frozen:
    """A frozen record: its fields are its class annotations (not starting with ``_``), in order;
    equality and repr over them. A subclass's ``__init__`` sets them with :meth:`_set`."""

    __slots__ = ()
    #: fields left out of repr (secrets)
    _hidden: frozenset[str] = frozenset()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields, in declaration order (``dataclasses.fields`` for these records)."""
        return tuple(name for name in cls.__annotations__ if not name.startswith("_"))

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.field_names())

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside: unhashable, as before

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.field_names() if name not in self._hidden
        )
        return f"{type(self).__name__}({shown})"
