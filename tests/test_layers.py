"""The layer contracts of pyproject.toml ([tool.importlinter]) hold, so `make test` guards them as
`make check` does: entry points → capabilities → tracking → persistence → core, imports down only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keel

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(keel.__file__).resolve().parent


def _lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under ``source_root`` with this repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_layer_contracts_hold(tmp_path):
    result = _lint_imports(PACKAGE.parent, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """The contract is not vacuous: a lazy import of the tracking layer from the store (persistence)
    inside a function is reported with the module that made it."""
    copy = tmp_path / "src" / "keel"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "store" / "base.py").open("a") as handle:
        handle.write("\n\ndef _upward() -> None:\n    from keel.tracking import client  # noqa: F401\n")
    result = _lint_imports(copy.parent, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "keel.store is not allowed to import keel.tracking" in result.stdout
    assert "keel.store.base -> keel.tracking.client" in result.stdout
