"""The ``keel`` command line. Each command parses its input, calls one library function and renders
the result; the work lives in the library so it is usable from Python too."""

from __future__ import annotations

import typer

from keel.cli import artifacts, data, experiments, lineage, models, names, pipeline, runs, server
from keel.cli.ui import ui

app = typer.Typer(
    name="keel",
    help="keel: experiment tracking, a model registry, data validation, pipelines, a server and a web UI; "
    "local-first.\n\n"
    "Data lives in .keel/ (found by walking up from the current folder, like .git) unless "
    "KEEL_TRACKING_URI points elsewhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help: Rich's help renderer costs ~150 ms of imports on every `--help`
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from keel import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print keel's version and exit."
    ),
) -> None:
    # `keel --version` is the first thing many people type; `keel version` says the same
    pass


app.add_typer(runs.app, name="runs")
app.add_typer(experiments.app, name="experiments")
app.add_typer(models.app, name="models")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(names.app, name="names")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(data.app, name="data")
app.add_typer(lineage.app, name="lineage")
app.add_typer(server.app, name="server")
app.add_typer(server.audit_app, name="audit")
app.command("ui")(ui)


@app.command()
def quickstart(
    experiment: str = typer.Option("quickstart", help="Experiment to log the runs in."),
    model_name: str = typer.Option(
        "breast-cancer-classifier",
        "--model-name",
        help="Registered model that receives the best run.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Train four scikit-learn models on the breast-cancer data, track them, register the best.

    Logs params, per-iteration metrics, the data set, models, plots, system metrics and cost, then
    registers the best model as @champion and prints a comparison. Safe to run again.
    """
    from keel.cli._output import handle_errors
    from keel.cli.quickstart import run_quickstart

    handle_errors(run_quickstart)(experiment=experiment, model_name=model_name, json_output=json_output)


@app.command()
def sync(
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to keep trying while the store is away."),
) -> None:
    """Send what runs logged while their store was away, now.

    Training scripts never stop for a tracking server that is down: their run changes and metric
    points wait in the spool folder (.keel/spool) and are sent once it is back, by the script itself
    or by the next keel process that opens the same store. This command is that next process: it
    takes over what ended scripts left and sends it in order. Exit code 1 while the store is still away.
    """
    from keel.cli._output import handle_errors

    handle_errors(_sync)(timeout)


def _sync(timeout: float) -> None:
    from keel.cli._project import existing_client

    client = existing_client()  # opening the client takes over what ended processes left and tries once
    writer = client._context.writer
    changes, points = writer.backlog()
    writer.offline_wait = timeout
    if (changes or points) and not writer.flush(timeout=timeout):
        changes, points = writer.backlog()
        typer.echo(
            f"the store {client.store.url} is still away: {changes} run changes and {points} metric "
            f"points wait in {writer.spool_dir}; run `keel sync` again once it is back",
            err=True,
        )
        raise typer.Exit(1)
    writer.close()
    taken, spooled = writer.adopted
    if taken or spooled:
        typer.echo(f"sent {taken} run changes and {spooled} metric points to {client.store.url}")
    else:
        typer.echo(f"nothing was waiting: everything logged is in {client.store.url}")


@app.command()
def version() -> None:
    """Print keel's version."""
    from keel import __version__

    typer.echo(__version__)


def main() -> None:
    app()
