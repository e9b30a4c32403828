"""docs/benchmarks.md is written by the benchmark harnesses, each owning one section of it.

    from _docs import write_section
    write_section("pipelines", "Pipelines: keel vs Hamilton, Kedro, Prefect, Metaflow, ZenML", markdown)

A section sits between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``; writing one leaves the
others as they are, so each harness can be run on its own. Standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"
ORDER = [
    "tracking",
    "startup",
    "pipelines",
    "pipelines-parallel",
    "data-validate",
    "data-drift",
    "server",
    "ui",
]
INTRO = """# Benchmarks

keel side by side with its peers on the same machine, each peer in its own virtualenv, measured in one
run per harness. Each section below is written by the command named in it; the methods are in the
harnesses' READMEs under `benchmarks/`. The machine is shared and noisy (2 cores): figures are medians
over fresh worker processes, CPU seconds are quoted beside wall time, and ratios come from the same run.

| what | command | section |
|---|---|---|
| tracking (vs MLflow) | `make bench` | [Tracking](#tracking) |
| startup: the first call in a process (vs Hamilton, Kedro) | `python benchmarks/startup/run.py` | [Startup](#startup) |
| pipelines (vs Hamilton, Kedro, Prefect, Metaflow, ZenML) | `python benchmarks/pipelines/run.py` | [Pipelines](#pipelines) |
| process-pool speed-up | `python benchmarks/pipelines/parallel.py` | [Pipelines: process pool](#pipelines-process-pool) |
| data validation (vs Great Expectations, pandera) | `python benchmarks/data/validate.py` | [Data validation](#data-validation) |
| drift (vs Evidently) | `python benchmarks/data/drift.py` | [Drift](#drift) |
| server (vs `mlflow server`) | `python benchmarks/server/run.py` | [Server](#server) |
| web UI (Chromium) | `python benchmarks/ui/bench_ui.py` | [Web UI](#web-ui) |
"""


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- section:{re.escape(name)} -->\n.*?<!-- /section:{re.escape(name)} -->\n", re.S)


def _checkouts(root: Path) -> list[Path]:
    """This checkout and, for a git worktree, the main checkout it belongs to (whose virtualenv a
    harness may have been pointed at), longest first."""
    found = [root]
    marker = root / ".git"
    if marker.is_file():  # a worktree: "gitdir: /main/.git/worktrees/NAME"
        gitdir = marker.read_text().partition("gitdir:")[2].strip()
        if "/.git/worktrees/" in gitdir:
            found.append(Path(gitdir.split("/.git/worktrees/")[0]))
    return sorted(found, key=lambda p: len(str(p)), reverse=True)


def relative_paths(text: str, root: Path = ROOT) -> str:
    """``text`` with this machine's checkout paths written relative to the repository (and the home
    folder as ``~``): the page is read by people whose clone is elsewhere."""
    for checkout in _checkouts(root):
        text = text.replace(f"{checkout}/", "")
        text = re.sub(re.escape(str(checkout)) + r"(?![\w.-])", ".", text)
    home = str(Path.home())
    if home not in ("/", ""):
        text = text.replace(f"{home}/", "~/")
    return text


def write_section(name: str, title: str, body: str, page: Path = PAGE) -> None:
    """Replace (or add) section ``name`` of the page with ``## title`` and ``body`` (Markdown whose own
    headings should start at ``###``); absolute paths into the checkout are written relative to it."""
    body = relative_paths(body)
    text = page.read_text() if page.exists() else INTRO
    if not text.startswith(INTRO):  # keep the intro current; sections follow it
        sections = "".join(
            m.group(0)
            for m in re.finditer(r"<!-- section:([\w-]+) -->\n.*?<!-- /section:\1 -->\n", text, re.S)
        )
        text = INTRO + ("\n" + sections if sections else "")
    block = f"<!-- section:{name} -->\n## {title}\n\n{body.strip()}\n<!-- /section:{name} -->\n"
    found = _pattern(name).search(text)
    if found:
        text = text[: found.start()] + block + text[found.end() :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    blocks = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<!-- section:([\w-]+) -->\n.*?<!-- /section:\1 -->\n", text, re.S)
    }
    ordered = sorted(blocks, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    page.write_text(INTRO + "\n" + "\n".join(blocks[n] for n in ordered))


def demote(markdown: str) -> str:
    """Drop a report's own title line and push its headings one level down (## → ###)."""
    lines = markdown.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("#" + line if line.startswith("#") else line for line in lines)
