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


SHELL_BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.S | re.M)


def _shell_commands() -> list[tuple[str, str]]:
    """(doc, line) for every ``keel …`` command of the docs' shell blocks: continuations joined,
    comments dropped, ``a && b`` split."""
    found = []
    for path in DOCS:
        for block in SHELL_BLOCK.findall(path.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"\s+(?:&&|\|\||;|\|)\s+", line.split("  #", 1)[0].strip()):
                    if part.startswith("keel "):
                        found.append((str(path.relative_to(ROOT)), part))
    return found


def test_every_keel_command_in_the_docs_names_real_commands_and_options(tmp_path, monkeypatch):
    """A command copied from the docs must not fail on a renamed command or option. Each is parsed
    with ``--help`` added, which checks the command path and every option without running it (in a
    folder of its own all the same, should a doc's option without its value swallow ``--help``)."""
    import shlex

    from typer.testing import CliRunner

    from keel.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "keel.toml").write_text("")
    commands = _shell_commands()
    assert len(commands) > 20 and ("README.md", "keel ui") in commands
    runner = CliRunner()
    problems = []
    for doc, line in commands:
        if re.search(r"<[^>]*>", line):  # pasted into a shell, `<run id>` redirects from a file `run`
            problems.append(f"{doc}: {line}\n    write placeholders as RUN_ID, not in angle brackets")
            continue
        result = runner.invoke(app, [*shlex.split(line)[1:], "--help"], prog_name="keel")
        if result.exit_code != 0 or "Usage: keel" not in result.output:
            problems.append(f"{doc}: {line}\n    {' '.join(result.output.split())[-300:]}")
    assert not problems, "\n".join(problems)


def test_python_examples_use_only_public_names():
    """A reader copies what the docs show: an example reaching into ``client._context`` teaches an
    API that may change without notice (docs/ui.md did, where ``client.artifacts`` says the same)."""
    private = re.compile(r"(?<![\w.])[A-Za-z_][\w.]*\._[a-z]\w*|(?:from|import) keel[\w.]*\._")
    found = [
        f"{name}: {line.strip()}"
        for name, code in _examples()
        for line in code.splitlines()
        if private.search(line)
    ]
    assert not found, "\n".join(found)


def _bench_docs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_docs", ROOT / "benchmarks" / "_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_page_names_no_machine_paths():
    """docs/benchmarks.md is read by people whose clone is elsewhere: paths are the repository's."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert not re.findall(r"/work/|/home/\w+/|/root/", text)


def test_benchmark_harnesses_write_paths_relative_to_the_checkout(tmp_path):
    docs = _bench_docs()
    page = tmp_path / "benchmarks.md"
    root = docs.ROOT
    body = f"imported from `{root}/src/keel/__init__.py`; run in `{root}`; `{root}2/x`"
    docs.write_section("startup", "Startup", body, page=page)
    text = page.read_text()
    assert "imported from `src/keel/__init__.py`; run in `.`" in text
    assert f"`{root}2/x`" in text  # another folder that merely starts alike is left alone
