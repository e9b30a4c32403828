"""``keel data profile | suggest | drift``: profiles, suite suggestions and drift, on ``keel data``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from keel.cli._output import EXIT_FAILURE, console, format_number, handle_errors, print_json, table

DATA_HELP = "Data: a Parquet/CSV path, folder or glob, or a SQL table URL (sqlite:///file.db?table=t)."


def register(app: typer.Typer) -> None:
    """Add the profile, suggest and drift commands to the ``keel data`` app."""
    app.command("profile")(profile_command)
    app.command("suggest")(suggest_command)
    app.command("drift")(drift_command)


@handle_errors
def profile_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the profile to this .kprof file."),
    columns: str | None = typer.Option(None, "--columns", help="Comma-separated columns to profile."),
    log: bool = typer.Option(False, "--log", help="Log a run with the dataset as input and the profile."),
    experiment: str = typer.Option("data-profiles", "--experiment", help="Experiment of the --log run."),
    use_ray: bool = typer.Option(False, "--ray", help="Profile each file of partitioned data as a Ray task."),
    json_output: bool = typer.Option(False, "--json", help="Print the profile summary as JSON."),
) -> None:
    """Profile DATA: counts, nulls, moments, quantile, frequent-item and distinct-count sketches.

    The profile is the reference for `keel data drift` and `keel data validate --reference`.
    """
    selected = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = _profile(data, selected, use_ray, quiet=json_output)
    if output is not None:
        result.save(output)
    logged: dict[str, Any] | None = None
    if log:
        import keel
        from keel.data.profiles import log_profile

        with keel.start_run(experiment=experiment, system_metrics=False) as run:
            logged = log_profile(result, run_id=run.run_id)
    if json_output:
        payload = result.summary()
        if logged:
            payload["logged"] = logged
        print_json(payload)
        return
    _print_profile(result)
    if output is not None:
        typer.echo(f"profile written to {output}")
    if logged:
        typer.echo(
            f"logged as run {logged['run_id']} (reference: runs:/{logged['run_id']}/{logged['artifact']})"
        )


@handle_errors
def suggest_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Write the suggested suite (YAML) here."),
    max_set_size: int = typer.Option(20, "--max-set-size", help="Largest value set suggested as in_set."),
    margin: float = typer.Option(0.1, "--margin", help="Widen numeric ranges by this share of the range."),
) -> None:
    """Suggest a suite from a profile of DATA, for review: types, nulls, ranges, sets, uniqueness."""
    from keel.data.suggest import suggest_suite
    from keel.data.suite import Suite

    result = _profile(data, None, False, quiet=False)
    suggested = suggest_suite(result, margin=margin, max_set_size=max_set_size)
    suite = Suite.from_dict(suggested)  # the suggestion must be a valid suite
    header = (
        f"# suggested by `keel data suggest` from {data} ({result.row_count:,} rows); review before use\n"
    )
    output.write_text(header + suite.to_yaml(), encoding="utf-8")
    typer.echo(f"{len(suite)} checks for {len(result)} columns written to {output}")


@handle_errors
def drift_command(
    current: str = typer.Argument(..., help="Current data (path, glob or SQL URL) or a .kprof profile."),
    reference: str = typer.Option(
        ..., "--reference", "-r", help="Reference profile: a .kprof file or runs:/RUN_ID[/ARTIFACT]."
    ),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    method: list[str] = typer.Option(
        [], "--method", help="A method for all columns (ks), or per column or kind (age=ks, numeric=psi)."
    ),
    threshold: list[str] = typer.Option(
        [], "--threshold", help="A threshold for all columns (0.2), or per column or kind (age=0.05)."
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="Comma-separated columns to compare (default: all but those that identify rows, such as ids).",
    ),
    exclude: str | None = typer.Option(None, "--exclude", help="Comma-separated columns to leave out."),
    drift_share: float = typer.Option(0.5, "--drift-share", help="Share of drifted columns that is drift."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    log: bool = typer.Option(
        True, "--log/--no-log", help="Log the comparison as a run of experiment data-drift (report included)."
    ),
) -> None:
    """Compare CURRENT with a reference profile. Exit 0: no drift; 1: drift; 2: bad input."""
    from keel.data.drift_detection import drift
    from keel.data.profiles import Profile, read_profile

    ref = read_profile(reference)
    selected = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    target: Any = read_profile(current) if current.endswith(".kprof") else current
    with _Progress(quiet=json_output or isinstance(target, Profile)) as progress:
        result = drift(
            ref,
            target,
            methods=_options(method, str),
            thresholds=_options(threshold, float),
            columns=selected,
            exclude=[c.strip() for c in exclude.split(",") if c.strip()] if exclude else (),
            drift_share=drift_share,
            progress=progress,
        )
    if report is not None:
        result.write_report(report)
    run_id = result.log() if log else None
    if json_output:
        print_json({**result.to_dict(), "run_id": run_id})
    else:
        table(
            f"drift: {result.current_name} vs {result.reference_name}",
            ["column", "kind", "method", "threshold", "statistic", "p-value", "drift", "note"],
            [
                [
                    c.column,
                    c.kind,
                    c.method + ("" if c.default else " (set)"),
                    c.threshold,
                    c.statistic,
                    c.p_value,
                    "yes" if c.drifted else "no",
                    c.note,
                ]
                for c in result.columns
            ],
        )
        verdict = "DRIFT" if result.dataset_drift else "no drift"
        typer.echo(
            f"{verdict}: {len(result.drifted_columns)} of {len(result.columns)} columns drifted "
            f"(share {result.share:.0%}, dataset drift at {result.drift_share:.0%})"
        )
        if result.excluded:
            typer.echo(f"excluded: {result.excluded_text()}; compare them anyway with --columns")
        if report is not None:
            typer.echo(f"report written to {report}")
        if run_id is not None:
            typer.echo(f"logged as run {run_id}")
    if result.dataset_drift:
        raise typer.Exit(EXIT_FAILURE)


# -- helpers ------------------------------------------------------------------------------------------------
def _profile(data: str, columns: list[str] | None, use_ray: bool, *, quiet: bool) -> Any:
    if use_ray:
        from keel.data.ray import profile_on_ray

        return profile_on_ray(data, columns=columns)
    from keel.data.profiles import profile

    with _Progress(quiet=quiet) as progress:
        return profile(data, columns=columns, progress=progress)


class _Progress:
    """A Rich progress line on stderr (rows profiled) when stderr is a terminal; a no-op otherwise."""

    def __init__(self, *, quiet: bool):
        import sys

        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("profiling: {task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("profile", total=None, rows=0)
        return lambda rows: self.bar.update(task, rows=rows)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _options(values: list[str], convert: Any) -> Any:
    """``["ks"]`` -> "ks"; ``["age=ks", "numeric=psi"]`` -> a mapping; both -> the mapping plus kinds."""
    if not values:
        return None
    from keel.errors import InvalidInputError

    overall: Any = None
    mapping: dict[str, Any] = {}
    for value in values:
        key, separator, text = value.partition("=")
        try:
            if separator:
                mapping[key.strip()] = convert(text.strip())
            else:
                overall = convert(value.strip())
        except ValueError:
            raise InvalidInputError(f"cannot read {value!r}: expected a number, or NAME=NUMBER") from None
    if not mapping:
        return overall
    if overall is not None:
        mapping.setdefault("numeric", overall)
        mapping.setdefault("categorical", overall)
    return mapping


def _print_profile(result: Any) -> None:
    rows = []
    for column in result:
        summary = column.summary()
        if column.frequent is not None and column.kind != "numeric":
            top = ", ".join(f"{v} ({c:,})" for v, c in column.top_values(3))
            spread = top
        elif column.moments.n and column.kind == "temporal":
            spread = f"p50 {column.as_value(column.quantile(0.5))}"
        elif column.moments.n:
            q = summary.get("quantiles", {})
            spread = f"p50 {format_number(q.get('p50', float('nan')))}, std {format_number(column.std)}"
        else:
            spread = ""
        rows.append(
            [
                column.name,
                column.inferred_type,
                f"{column.null_fraction:.1%}" if column.count else "",
                f"{column.distinct_count:,.0f}",
                _short(column.as_value(column.min)),
                _short(column.as_value(column.max)),
                _short(column.as_value(column.mean))
                if column.moments.n and column.kind != "boolean"
                else None,
                spread,
            ]
        )
    table(
        f"{result.name}: {result.row_count:,} rows, {len(result)} columns",
        ["column", "type", "nulls", "distinct", "min", "max", "mean", "spread / top values"],
        rows,
    )


def _short(value: Any) -> Any:
    if not isinstance(value, str | int | float) and value is not None:
        value = str(value)
    if isinstance(value, str) and len(value) > 30:
        return value[:29] + "…"
    return value
