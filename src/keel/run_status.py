"""A run's status, in a module of its own: the fluent API needs it on the path of a process's first
``start_run``, where importing every record of :mod:`keel.entities` (a dozen dataclasses, each
compiled when the module loads) would cost more than the rest of ``start_run``."""

from __future__ import annotations

import enum

__all__ = ["RunStatus"]


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CRASHED = "CRASHED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING
