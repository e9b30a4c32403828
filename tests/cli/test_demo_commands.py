"""After ``make demo`` every command the README and the quickstart print must work.

``make demo`` installs only the ``quickstart`` extra. The development environment has every extra, so
a command that needs a package outside the demo would pass here and crash for a newcomer. These tests
run each command in a fresh interpreter in which every module whose distribution the demo extra does
not pull in (from pyproject.toml, then the installed packages' own requirements) cannot be imported,
exactly as if it were not installed. No network and no install: the demo environment is simulated.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, wait_for_http

#: makes the modules named in $DEMO_BLOCKED_MODULES (comma-separated) not importable, then runs the
#: command line (``keel ...`` as the installed script would, or ``python -c CODE``)
_RUNNER = """
import importlib.abc, os, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled(set(os.environ.pop("DEMO_BLOCKED_MODULES").split(","))))
argv = sys.argv[1:]
if argv[0] == "python":
    assert argv[1] == "-c"
    sys.argv = ["-c", *argv[3:]]
    exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})
else:
    assert argv[0] == "keel"
    sys.argv = argv
    from keel.cli import main
    main()
"""

_MISSING = re.compile(r"No module named|ModuleNotFoundError|is not installed|Traceback")


def _pyproject() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _closure(project: dict[str, object], extra: str) -> set[str]:
    """Canonical names of every distribution ``pip install 'NAME[extra]'`` brings in."""
    meta = project["project"]
    assert isinstance(meta, dict)
    own = canonicalize_name(meta["name"])
    optional: dict[str, list[str]] = meta["optional-dependencies"]
    wanted: list[tuple[str, frozenset[str]]] = [(own, frozenset({extra}))]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while wanted:
        name, extras = wanted.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        if name == own:
            texts: Iterable[str] = [*meta["dependencies"], *(t for e in extras for t in optional[e])]
            chosen = [Requirement(t) for t in texts]
        else:
            try:
                requires = importlib.metadata.distribution(name).requires or []
            except importlib.metadata.PackageNotFoundError:
                continue  # not installed here: it cannot provide a module either
            chosen = [
                r
                for r in map(Requirement, requires)
                if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in extras | {""})
            ]
        for requirement in chosen:
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return names


def _blocked_modules(extra: str) -> set[str]:
    """Top-level modules installed here whose distributions the extra does not bring in."""
    demo = _closure(_pyproject(), extra)
    blocked = set()
    for module, dists in importlib.metadata.packages_distributions().items():
        if module == "keel" or not module.isidentifier():
            continue
        if not any(canonicalize_name(d) in demo for d in dists):
            blocked.add(module)
    return blocked


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(blocked: set[str]) -> dict[str, str]:
    return {
        **os.environ,
        "DEMO_BLOCKED_MODULES": ",".join(sorted(blocked)),
        "KEEL_SYSTEM_METRICS": "false",
        "COLUMNS": "200",  # the quickstart's hints must not be wrapped
    }


def _run(
    argv: list[str], cwd: Path, blocked: set[str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, *argv],
        cwd=cwd,
        env=_env(blocked),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _serve(argv: list[str], cwd: Path, blocked: set[str]) -> tuple[int, str]:
    """Start a serving command, ask it for ``/`` once it listens; (status, stderr)."""
    port = _free_port()
    extra = ["--port", str(port)] + (["--no-browser"] if argv[1] == "ui" else [])
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, *argv, *extra],
        cwd=cwd,
        env=_env(blocked),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = wait_for_http(process, f"http://127.0.0.1:{port}/", 60, follow_redirects=True)
        status = -1 if response is None else response.status_code
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return status, process.stderr.read() if process.stderr else ""


def readme_commands() -> list[list[str]]:
    """The ``keel ...`` lines of the README's shell blocks (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("keel "):
                commands.append(shlex.split(line))
    return commands


def printed_commands(stdout: str) -> list[list[str]]:
    """The commands the quickstart suggests after ``Next:``."""
    hints = stdout.split("Next:", 1)[1]
    commands = []
    for line in hints.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith(("keel ", "python ")):
            commands.append(shlex.split(line))
    return commands


def test_the_demo_extra_serves_the_web_ui() -> None:
    demo = _closure(_pyproject(), "quickstart")
    assert {"fastapi", "uvicorn", "argon2-cffi", "jinja2"} <= demo
    assert "mlflow" not in demo and "ray" not in demo  # the simulation does block what is outside


def test_demo_extra_blocks_what_it_does_not_install() -> None:
    blocked = _blocked_modules("quickstart")
    assert {"mlflow", "pytest"} <= blocked  # dev dependencies, installed here, absent after make demo
    assert not {"fastapi", "sklearn", "polars", "sqlalchemy", "numpy"} & blocked


@pytest.mark.slow
def test_every_command_the_readme_and_the_quickstart_print_works_after_make_demo(project: Path) -> None:
    blocked = _blocked_modules("quickstart")
    quickstart = _run(["keel", "quickstart"], project, blocked, timeout=600)
    assert quickstart.returncode == 0, quickstart.stderr
    printed = printed_commands(quickstart.stdout)
    assert ["keel", "ui"] in printed and any(c[0] == "python" for c in printed)

    runs = _run(["keel", "runs", "list", "--experiment", "quickstart", "--json"], project, blocked)
    assert runs.returncode == 0, runs.stderr
    first, second = (r["run_id"] for r in json.loads(runs.stdout)[:2])
    _data_files(project)
    placeholders = {"1a2b": first, "3c4d": second}
    problems = []
    commands = [_concrete(argv, placeholders) for argv in printed + readme_commands()]
    for argv in [c for i, c in enumerate(commands) if c not in commands[:i]]:
        if argv[:2] in (["keel", "ui"], ["keel", "server"]):
            status, stderr = _serve(argv, project, blocked)
            ok = 200 <= status < 500 and not _MISSING.search(stderr)
            detail = f"HTTP {status}: {stderr[-600:]}"
        else:
            result = _run(argv, project, blocked)
            # exit 1 is a verdict some commands give on purpose (a failing check, a bad name)
            ok = result.returncode in (0, 1) and not _MISSING.search(result.stderr)
            detail = f"exit {result.returncode}: {result.stderr[-600:]}"
        if not ok:
            problems.append(f"{shlex.join(argv)} -> {detail}")
    assert not problems, "\n".join(problems)


def _concrete(argv: list[str], placeholders: dict[str, str]) -> list[str]:
    """The command with its placeholders filled and options whose value is elided (``…``) dropped
    (``keel server --store postgresql://…`` then serves the project's own store)."""
    out: list[str] = []
    for arg in argv:
        if "…" in arg:
            if out and out[-1].startswith("--"):
                out.pop()
            continue
        out.append(placeholders.get(arg, arg))
    return out


def _data_files(folder: Path) -> None:
    """The files the README's data commands name, small and made here."""
    import polars as pl

    frame = pl.DataFrame({"order_id": list(range(200)), "amount": [float(i % 37) for i in range(200)]})
    frame.write_parquet(folder / "orders.parquet")
    frame.with_columns(pl.col("amount") * 3).write_parquet(folder / "today.parquet")
    (folder / "suite.yaml").write_text(
        "keel_suite: 1\nname: orders\nchecks:\n  - not_null: {column: amount}\n"
    )
    from keel.data import profile

    profile(frame).save(folder / "last-month.kprof")


def test_keel_ui_and_server_without_the_server_extra_say_what_to_install(project: Path) -> None:
    """A core-only install (``pip install keel-mlops``): one line naming the extra, no traceback."""
    from keel.errors import DISTRIBUTION

    blocked = _blocked_modules("quickstart") | {"fastapi", "argon2", "uvicorn"}
    for argv in (["keel", "ui", "--no-browser"], ["keel", "server"], ["keel", "server", "token", "list"]):
        result = _run(argv, project, blocked, timeout=120)
        assert result.returncode == 2, (argv, result.stderr)
        assert f"pip install '{DISTRIBUTION}[server]'" in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr
    assert _pyproject()["project"]["name"] == DISTRIBUTION  # type: ignore[index]


def test_the_quickstart_says_how_to_put_its_virtualenv_on_path(tmp_path: Path) -> None:
    """``make demo`` runs ``.venv/bin/keel`` without activating ``.venv``: the hints it prints would
    answer "keel: command not found" unless the quickstart also prints the line that activates it."""
    from keel.cli.quickstart import activate_hint

    venv_bin = tmp_path / "project" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "activate").write_text(f'export PATH="{venv_bin}:$PATH"\n')
    (venv_bin / "keel").write_text("#!/bin/sh\necho keel from the demo venv\n")
    (venv_bin / "keel").chmod(0o755)
    python = str(venv_bin / "python")
    hint = activate_hint(python, "/usr/bin:/bin", tmp_path / "project")
    assert hint == "source .venv/bin/activate"
    # the printed line, run as written in a plain shell, makes the printed `keel …` commands work
    shell = subprocess.run(
        ["bash", "-c", f"{hint} && keel"],
        cwd=tmp_path / "project",
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shell.stdout == "keel from the demo venv\n", shell.stderr
    assert activate_hint(python, "/usr/bin:/bin", tmp_path).endswith("project/.venv/bin/activate")  # type: ignore[union-attr]
    # already active, or no virtualenv at all: nothing to add
    assert activate_hint(python, f"{venv_bin}{os.pathsep}/usr/bin", tmp_path / "project") is None
    assert activate_hint(str(tmp_path / "python"), "/usr/bin", tmp_path) is None


def test_the_quickstart_hints_stay_whole_on_a_narrow_terminal() -> None:
    """On an 80-column terminal the ``python -c "import keel; …"`` hint was folded in two, and the
    pasted first half is a shell syntax error; each hint is printed on one line, whatever the width."""
    import io

    from rich.console import Console

    from keel.cli.quickstart import next_steps, print_next_steps

    screen = io.StringIO()
    narrow = Console(file=screen, width=40, force_terminal=True, color_system=None, highlight=False)
    print_next_steps(narrow, "breast-cancer-classifier", ["9f0a72e8" + "0" * 24, "7369fc4e" + "0" * 24], 1)
    printed = screen.getvalue().splitlines()
    hints = next_steps("breast-cancer-classifier", ["9f0a72e8" + "0" * 24, "7369fc4e" + "0" * 24], 1)
    assert printed == hints
    assert any(
        line.startswith('  python -c "import keel; print(') and line.endswith('))"') for line in printed
    )


def test_make_demo_shows_the_install_progress() -> None:
    """The install is the slowest part of a first ``make demo`` (~20 s from a warm cache): with
    ``uv pip install -q`` a newcomer watched a silent terminal; uv's own progress must show."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.demo:", 1)[1].split("\n\n", 1)[0]
    (install,) = [line for line in recipe.splitlines() if "uv pip install" in line]
    assert not {"-q", "--quiet"} & set(shlex.split(install)), install


def _on_a_terminal(code: str, columns: int) -> str:
    """What ``python -c CODE`` prints on a pseudo-terminal ``columns`` wide (as rich sees a real one)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=follower, stderr=follower, env={**env, "NO_COLOR": "1"}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(60)
    os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r", "")


def test_the_quickstart_table_keeps_ids_and_amounts_whole_on_80_columns() -> None:
    """On an 80-column terminal the cost ``$0.0000084`` was folded into ``$0.00000`` over ``84`` (read:
    free) and run ids could fold too; only the model names may fold now."""
    result = {"accuracy": 0.979, "f1": 0.9832, "roc_auc": 0.9973, "seconds": 1.1, "cost_usd": 8.4e-06}
    results = [
        {**result, "run_id": "dd407f9e" + "0" * 24, "name": "logistic-sgd", "champion": True},
        {**result, "run_id": "2f8581ba" + "0" * 24, "name": "gradient-boosting", "champion": False},
    ]
    code = f"from keel.cli.quickstart import print_results; print_results('quickstart', {results!r})"
    screen = _on_a_terminal(code, 80)
    assert "$0.0000084" in screen and "dd407f9e" in screen and "0.9973" in screen, screen
    assert max(len(line) for line in screen.splitlines()) <= 80, screen
