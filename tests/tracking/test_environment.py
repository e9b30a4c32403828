"""Where a run comes from: git commit and dirty flag of a real repository."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from keel.tracking import environment


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_flag(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "first")
    head = git("rev-parse", "HEAD").strip()
    environment._cache.clear()
    assert environment.git_info(tmp_path) == (head, False)
    (tmp_path / "train.py").write_text("print('v2')\n")
    assert environment.git_info(tmp_path) == (head, False)  # reused for a few seconds
    environment._cache.clear()
    assert environment.git_info(tmp_path) == (head, True)


def test_outside_git(tmp_path):
    environment._cache.clear()
    assert environment.git_info(tmp_path) == (None, None)
