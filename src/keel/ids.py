"""Identifiers: 32 lowercase hex characters, the shape MLflow uses for run ids."""

from __future__ import annotations

import re
import uuid

from keel.errors import InvalidInputError

__all__ = ["check_run_id", "new_id"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    return uuid.uuid4().hex


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidInputError(
            f"{run_id!r} is not a run id (32 lowercase hex characters, e.g. from `keel runs list`)"
        )
    return run_id
