"""The layer contracts of pyproject.toml ([tool.importlinter]) hold, so `make test` guards them as
`make check` does: entry points → capabilities → tracking → persistence → core, imports down only."""

from __future__ import annotations

import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
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


def test_every_top_level_module_has_a_layer():
    """A module or package the layers contract does not list is unconstrained: place each new one."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    listed = {name.strip("() ") for layer in layers["layers"] for name in re.split(r"[|:]", layer)}
    present = {module.name for module in pkgutil.iter_modules([str(PACKAGE)])}
    assert present - listed == set(), "add these to a layer in pyproject.toml [tool.importlinter]"
