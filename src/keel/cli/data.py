"""``keel data``: validate data against a suite (and profile, suggest, drift: see ``data_profiles``).

Exit codes of ``keel data validate``: 0 every check passed (warnings allowed), 1 a check of severity error
failed, 2 bad input or usage (a missing file, a malformed CSV line, an invalid suite, a check that could not
be evaluated).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from keel.cli import data_profiles
from keel.cli._output import console, handle_errors, table

app = typer.Typer(
    help="Validate, profile and compare data: suites, reports, drift.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
data_profiles.register(app)

#: above this many checks the terminal table lists only failures (every check is in --report/--json)
MAX_TABLE_ROWS = 60


@app.command("validate")
def validate_command(
    data: str = typer.Argument(..., help="Data: a Parquet/CSV path, folder or glob, or a SQL table URL."),
    suite: Path = typer.Option(..., "--suite", "-s", help="The suite YAML file."),
    reference: str | None = typer.Option(
        None, "--reference", "-r", help="Reference profile for drift checks (.kprof path or runs:/RUN_ID)."
    ),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    junit: Path | None = typer.Option(
        None, "--junit", help="Write JUnit XML here (one test case per check)."
    ),
    markdown: str | None = typer.Option(
        None, "--markdown", help="Write a Markdown summary here ('-': stdout)."
    ),
    github_annotations: bool = typer.Option(
        False, "--github-annotations", help="Print ::error/::warning annotations for GitHub Actions."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
    name: str | None = typer.Option(None, "--name", help="Dataset name (default: the file or table name)."),
    tables: list[str] = typer.Option(
        [], "--table", help="NAME=DATA for row_count_equals / values_in_table checks (repeatable)."
    ),
    samples: int | None = typer.Option(None, "--samples", min=0, help="Failing rows kept per failed check."),
    experiment: str = typer.Option(
        "data-validation", "--experiment", help="Experiment the run is logged in."
    ),
    log: bool = typer.Option(True, "--log/--no-log", help="Log the validation as a keel run (default: yes)."),
    ray: bool = typer.Option(
        False, "--ray", help="Scan each file of a folder or glob as a Ray task (keel-mlops[ray])."
    ),
) -> None:
    """Validate DATA against a suite. Exit 0 passed, 1 checks failed, 2 bad input or usage."""
    handle_errors(_validate)(
        data=data, suite=suite, reference=reference, report=report, junit=junit, markdown=markdown,
        github_annotations=github_annotations, json_output=json_output, name=name, tables=tables,
        samples=samples, experiment=experiment, log=log, ray=ray,
    )  # fmt: skip


def _validate(
    *,
    data: str,
    suite: Path,
    reference: str | None,
    report: Path | None,
    junit: Path | None,
    markdown: str | None,
    github_annotations: bool,
    json_output: bool,
    name: str | None,
    tables: list[str],
    samples: int | None,
    experiment: str,
    log: bool,
    ray: bool,
) -> None:
    from keel.data.suite import Suite
    from keel.errors import InvalidInputError

    loaded = Suite.load(suite)
    named: dict[str, Any] = {}
    for pair in tables:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise InvalidInputError(f"--table takes NAME=DATA (a path or URL), not {pair!r}")
        named[key] = value
    targets = [report, junit, Path(markdown) if markdown not in (None, "-") else None]
    for target in targets:
        if target is not None and not target.parent.exists():
            raise InvalidInputError(f"cannot write {target}: folder {target.parent} does not exist")
    options: dict[str, Any] = {
        "reference": reference, "tables": named, "samples": samples, "histograms": report is not None,
        "ray": ray,
    }  # fmt: skip
    with _Progress(not json_output) as progress:
        options["progress"] = progress
        if log:
            from keel.data.history import validate_and_log

            result = validate_and_log(data, loaded, experiment=experiment, name=name, **options)
        else:
            from keel.data.engine import validate

            result = validate(data, loaded, name=name, **options)

    if report is not None:
        from keel.data.report import write_html

        write_html(result, report)
    if junit is not None:
        result.write(junit, "junit")
    if markdown is not None:
        if markdown == "-":
            sys.stdout.write(result.to_markdown())
        else:
            result.write(markdown, "markdown")
    if github_annotations:
        sys.stdout.write(result.github_annotations())
    if json_output:
        sys.stdout.write(result.to_json() + "\n")
    else:
        _print_summary(result)
    if result.status == "error":
        from rich.markup import escape

        out = console(stderr=True)
        for failure in result.failures():
            if failure.status == "error":
                text = escape(f"{failure.name}: {failure.message}")
                out.print(f"[bold red]error:[/] {text}", markup=True, highlight=False)
    raise typer.Exit(result.exit_code)


def _print_summary(result: Any) -> None:
    from rich.text import Text

    colours = {"passed": "green", "failed": "red", "error": "magenta", "skipped": "dim", "warned": "yellow"}
    shown = result.results if len(result.results) <= MAX_TABLE_ROWS else result.failures()[:MAX_TABLE_ROWS]
    rows = []
    for check in shown:
        status = "warned" if check.status == "failed" and check.severity == "warn" else check.status
        rows.append([Text(status, style=colours[status]), check.name, check.column or "", check.describe()])
    counts = result.counts()
    title = (
        f"{result.dataset}: {result.row_count if result.row_count is not None else '?':,} rows, "
        f"{len(result.results)} checks: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['warned']} warnings, {counts['error']} errors, {counts['skipped']} skipped"
    )
    if rows:
        table(title, ["status", "check", "column", "details"], rows)
    out = console()
    hidden = len(result.results) - len(shown)
    if hidden:
        out.print(f"({hidden:,} more checks not listed; see --report, --json or --junit)", highlight=False)
    verdict = {"passed": "[green]PASSED[/]", "failed": "[red]FAILED[/]", "error": "[magenta]ERROR[/]"}
    tail = f" · run {result.run_id}" if result.run_id else ""
    out.print(f"{verdict[result.status]} in {result.duration_s:.2f} s{tail}", markup=True, highlight=False)


class _Progress:
    """A spinner on stderr with the engine's progress messages, only on a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.status: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        self.status = console(stderr=True).status("validating…")
        self.status.__enter__()
        return self.update

    def update(self, message: str) -> None:
        if self.status is not None:
            self.status.update(message)

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)
