"""``keel lineage``: what produced an artifact and what used it; what used a dataset, down to models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from keel.cli._output import format_time, handle_errors, print_json, table

if TYPE_CHECKING:
    from keel.tracking.client import Client

app = typer.Typer(
    help="Follow lineage: artifacts to the runs and pipeline steps around them, datasets to models.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _sha(client: Client, reference: str) -> str:
    """A full sha256, or RUN:NAME (run id or unique prefix, artifact name) resolved to one."""
    if ":" in reference:
        run, _, name = reference.partition(":")
        return client.get_artifact(client.resolve_run_id(run), name).sha256
    return reference


@app.command("artifact")
@handle_errors
def artifact(
    reference: str = typer.Argument(
        ..., help="The artifact's sha256, or RUN:NAME (e.g. 3f9a:model/model.skops)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Which runs and pipeline steps produced an artifact, which read it, and the model versions
    registered from the runs that produced it."""
    from keel.cli._project import existing_client
    from keel.tracking.lineage import artifact_lineage

    client = existing_client()
    found = artifact_lineage(client, _sha(client, reference))
    if json_output:
        print_json(found.to_dict())
        return
    rows = [[e.direction, "run", e.run_id, e.name, format_time(e.created_at)] for e in found.produced_by]
    rows += [
        [u.direction, f"step {u.pipeline}/{u.node}", u.run_id, u.name, format_time(u.started_at)]
        for u in found.steps
    ]
    rows += [[e.direction, "run", e.run_id, e.name, format_time(e.created_at)] for e in found.used_by]
    rows += [
        ["model", f"{v.name} v{v.version}", v.run_id or "", ", ".join(v.aliases), ""]
        for v in found.model_versions
    ]
    if not rows:
        typer.echo(f"nothing recorded for artifact {found.sha256}")
        return
    table(f"lineage of {found.sha256[:12]}", ["role", "what", "run", "name", "when"], rows)


@app.command("dataset")
@handle_errors
def dataset(
    name: str = typer.Argument(..., help="Dataset name as logged (keel.log_input(..., name=...))."),
    version: str = typer.Option(None, "--version", help="Only this version: its fingerprint or a prefix."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """The runs that used a dataset, what they produced and the model versions registered from them."""
    from keel.cli._project import existing_client
    from keel.tracking.lineage import dataset_lineage

    found = dataset_lineage(existing_client(), name, version)
    if json_output:
        print_json(found.to_dict())
        return
    if not found.uses:
        typer.echo(f"no run used dataset {name!r}" + (f" version {version}" if version else ""))
        raise typer.Exit(1)
    table(
        f"runs that used {name}",
        ["run", "version", "context", "rows", "source"],
        [
            [u.run_id, u.dataset.fingerprint[:12], u.dataset.context, u.dataset.row_count, u.dataset.source]
            for u in found.uses
        ],
    )
    if found.outputs:
        table(
            "what those runs produced",
            ["run", "artifact", "sha256"],
            [[e.run_id, e.name, e.sha256[:12]] for e in found.outputs],
        )
    if found.model_versions:
        table(
            "model versions registered from them",
            ["model", "version", "aliases", "run"],
            [[v.name, v.version, ", ".join(v.aliases), v.run_id] for v in found.model_versions],
        )
