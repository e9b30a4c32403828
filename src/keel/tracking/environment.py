"""Where a run comes from: the git commit (and whether the tree was dirty) and the entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["entry_point", "git_info"]


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


def _ask_git(cwd: Path | None) -> tuple[str | None, bool | None]:
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
