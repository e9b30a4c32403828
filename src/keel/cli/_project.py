"""The store a reading command works on: an existing one, never a new one.

Opening a ``Client`` creates the store where none exists (``.keel/keel.db`` beside the nearest
project marker), which is right for a training script and wrong for ``keel runs list``: run in a
folder without a project, or in the home folder, it would leave a ``.keel`` there that every
project below without its own then silently uses. Commands that only read, or that change what
must already exist (delete a run, move an alias), go through :func:`existing_client`, which
refuses with exit code 2 and says how to make or find a project instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.tracking.client import Client

__all__ = ["existing_client", "require_project"]


def require_project(start: Path | None = None) -> None:
    """Raise ``ConfigError`` unless a tracking URI is configured or a ``.keel/keel.db`` exists at
    or above ``start`` (the working directory by default)."""
    from keel.config import Settings, find_keel_dir
    from keel.errors import ConfigError

    if Settings.load().tracking_uri:
        return  # KEEL_TRACKING_URI or keel.toml names the store: the user chose it
    keel_dir = find_keel_dir(start)
    if keel_dir is not None and (keel_dir / "keel.db").is_file():
        return
    here = (start or Path.cwd()).resolve()
    raise ConfigError(
        f"no keel project found from {here} upwards (looked for .keel/keel.db); run a training "
        "script or `keel quickstart` here first, or set KEEL_TRACKING_URI"
    )


def existing_client() -> Client:
    """A ``Client`` of the store found from the working directory, which must exist already."""
    from keel.tracking.client import Client

    require_project()
    return Client()
