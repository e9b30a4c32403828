"""``keel experiments``: list the experiments of the current project."""

from __future__ import annotations

import typer

from keel.cli._output import format_time, handle_errors, print_json, table

app = typer.Typer(help="List experiments.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
@handle_errors
def list_experiments(
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List experiments with their run counts."""
    from keel.cli._project import existing_client

    client = existing_client()
    found = client.list_experiments(include_deleted=all_)
    counts = {e.experiment_id: len(client.search_runs([e.experiment_id], max_results=50_000)) for e in found}
    if json_output:
        print_json(
            [
                {
                    "experiment_id": e.experiment_id,
                    "name": e.name,
                    "project": e.project,
                    "lifecycle_stage": e.lifecycle_stage,
                    "created_at": e.created_at,
                    "runs": counts[e.experiment_id],
                    "tags": dict(e.tags),
                }
                for e in found
            ]
        )
        return
    table(
        f"experiments in project {client.project!r}",
        ["id", "name", "runs", "created", "state"],
        [
            [
                e.experiment_id,
                e.name,
                counts[e.experiment_id],
                format_time(e.created_at),
                e.lifecycle_stage,
            ]
            for e in found
        ],
    )
