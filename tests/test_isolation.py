"""The test suite never touches the developer's own files (tests/conftest.py sets this up)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_each_test_runs_in_a_temporary_home_and_an_empty_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path.home().is_relative_to(base)
    assert Path.cwd().is_relative_to(base) and not Path.cwd().is_relative_to(ROOT)
    assert list(Path.cwd().iterdir()) == []


def test_the_default_store_outside_a_project_lands_in_the_temporary_folder() -> None:
    from keel.config import Settings
    from keel.store.base import default_locations

    tracking, artifacts, folder = default_locations(Settings.load())
    assert folder == Path.cwd() / ".keel" and str(Path.cwd()) in tracking
