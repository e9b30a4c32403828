"""Docs that cannot rot: their Python examples run, and the CLI reference matches --help."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, run_python

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        blocks = BLOCK.findall(path.read_text())
        if blocks:
            found.append((str(path.relative_to(ROOT)), "\n".join(blocks)))
    return found


def test_docs_have_examples():
    names = {name for name, _ in _examples()}
    assert {"README.md", "docs/getting-started.md", "docs/python-api.md"} <= names


@pytest.mark.parametrize(("name", "code"), _examples(), ids=[n for n, _ in _examples()])
def test_python_examples_run(name, code, tmp_path):
    (tmp_path / "keel.toml").write_text("")
    run_python(code, tmp_path, timeout=240)


def test_cli_reference_is_current():
    from keel.cli._reference import render

    assert (ROOT / "docs" / "cli.md").read_text() == render(), "docs/cli.md is stale: run `make docs`"


def test_every_command_has_help_and_is_documented():
    from keel.cli._reference import command_paths, help_text

    reference = (ROOT / "docs" / "cli.md").read_text()
    for path in command_paths():
        text = help_text(path)
        assert "Usage:" in text
        assert f"## `{' '.join(['keel', *path])}`" in reference


def test_settings_in_concepts_match_the_code():
    from keel.config import Settings

    concepts = (ROOT / "docs" / "concepts.md").read_text()
    for name in Settings.field_names():
        if name != "sources":
            assert f"`{name}`" in concepts or f"`[{name}]`" in concepts, name
