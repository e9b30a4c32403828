"""Identifiers: 32 lowercase hex characters, the shape MLflow uses for run ids."""

from __future__ import annotations

import os
import re

from keel.errors import InvalidInputError

__all__ = ["check_run_id", "new_id"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A random (version 4) UUID as hex; made here because importing ``uuid`` costs milliseconds
    (it imports ``platform``) on the path of a process's first ``start_run``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidInputError(
            f"{run_id!r} is not a run id (32 lowercase hex characters, e.g. from `keel runs list`)"
        )
    return run_id
