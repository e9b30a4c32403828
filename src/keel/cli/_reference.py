"""Writes the CLI reference (docs/cli.md) from the commands' own ``--help``.

    python -m keel.cli._reference > docs/cli.md

A test regenerates it and fails when docs/cli.md is stale, so the reference cannot rot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import typer.main
from typer.testing import CliRunner

from keel.cli import app


def command_paths() -> Iterator[list[str]]:
    """Every command and group, as the words typed after ``keel``."""
    root = typer.main.get_command(app)

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        children = getattr(command, "commands", None) or {}
        for name in sorted(children):
            yield from walk(children[name], [*path, name])

    yield from walk(root, [])


def help_text(path: list[str]) -> str:
    runner = CliRunner()
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    result = runner.invoke(app, [*path, "--help"], env=env, prog_name="keel")
    if result.exit_code != 0:
        raise RuntimeError(f"keel {' '.join(path)} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip().splitlines())


def render() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated from each command's `--help` by `make docs` (`python -m keel.cli._reference`);",
        "a test fails when this file is out of date. Exit codes: 0 ok, 1 failure (for example a check",
        "failed or the store could not be written), 2 bad usage or input.",
        "",
    ]
    for path in command_paths():
        title = " ".join(["keel", *path])
        parts += [f"## `{title}`", "", "```text", help_text(path), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "100")
    print(render(), end="")
