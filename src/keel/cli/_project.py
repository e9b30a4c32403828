"""The store a reading command works on: an existing one, never a new one.

Opening a ``Client`` creates the store where none exists (``.keel/keel.db`` beside the nearest
project marker), which is right for a training script and wrong for ``keel runs list``: run in a
folder without a project, or in the home folder, it would leave a ``.keel`` there that every
project below without its own then silently uses. Commands that only read, or that change what
must already exist (delete a run, move an alias), go through :func:`existing_client`, which
refuses with exit code 2 and says how to make or find a project instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.tracking.client import Client

__all__ = ["existing_client"]


def existing_client() -> Client:
    """A ``Client`` of the store found from the working directory, which must exist already."""
    from keel.config import require_project
    from keel.tracking.client import Client

    require_project()
    return Client()
