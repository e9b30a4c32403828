"""Where a run comes from: the git commit (and whether the tree was dirty) and the entry point."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["entry_point", "git_info", "git_info_soon", "take_pending_git"]


_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, tuple[str | None, bool | None]]] = {}


def git_info(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree holding ``cwd``; (None, None) outside git.

    Two ``git`` calls cost tens of milliseconds, so the answer is reused for a few seconds: runs
    started in quick succession (pipelines, sweeps) pay once.
    """
    folder = str((cwd or Path.cwd()).resolve())
    cached = _cache.get(folder)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    answer = _ask_git(cwd)
    _cache[folder] = (now, answer)
    return answer


GitInfo = tuple[str | None, bool | None]

#: run id -> the git answer a run's queued creation waits for (see :func:`git_info_soon`)
_pending: dict[str, Callable[[], GitInfo]] = {}


def git_info_soon(cwd: Path | None = None) -> Callable[[], GitInfo]:
    """:func:`git_info`, asked on keel's helper thread now (``keel.tracking.background``): the
    returned function waits for the answer.

    ``start_run`` asks at the run's start but need not wait when the run's creation is queued:
    whoever creates the run in the store takes the answer (:func:`take_pending_git`)."""
    folder = str((cwd or Path.cwd()).resolve())
    cached = _cache.get(folder)
    if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
        answer = cached[1]
        return lambda: answer
    from keel.tracking.background import later

    pending = later(lambda: git_info(cwd), "git query")

    def wait() -> GitInfo:
        try:
            answer: GitInfo = pending.wait(timeout=20)
        except (TimeoutError, OSError):
            return None, None
        return answer

    return wait


def take_pending_git(run_id: str) -> GitInfo | None:
    """The git answer this process asked for when it queued run ``run_id``'s creation, waited
    for; None when it did not (a journal adopted from a dead process)."""
    found = _pending.pop(run_id, None)
    return found() if found is not None else None


def _ask_git(cwd: Path | None) -> tuple[str | None, bool | None]:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None, None
    try:
        commit = subprocess.run(
            [git, "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip() or None, dirty


def entry_point() -> str:
    """The script or module that started this process, as the user typed it."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return f"python -m {spec.name.removesuffix('.__main__')}"
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not argv0 or argv0 == "-c":
        return "<interactive>" if not argv0 else "python -c"
    try:
        return str(Path(argv0).resolve().relative_to(Path.cwd()))
    except ValueError:
        return argv0
