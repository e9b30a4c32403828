"""``keel artifacts``: list and download a run's artifacts."""

from __future__ import annotations

from pathlib import Path

import typer

from keel.cli._output import handle_errors, print_json, table

app = typer.Typer(help="List and download artifacts.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
@handle_errors
def list_artifacts(
    run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
    prefix: str = typer.Argument("", help="Only artifacts under this folder name."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List a run's artifacts with their sizes and sha256."""
    from keel.cli._project import existing_client

    client = existing_client()
    found = client.list_artifacts(client.resolve_run_id(run_id), prefix)
    if json_output:
        print_json(
            [{"name": a.name, "sha256": a.sha256, "size": a.size, "media_type": a.media_type} for a in found]
        )
        return
    table(
        None,
        ["name", "size (bytes)", "media type", "sha256"],
        [[a.name, a.size, a.media_type, a.sha256] for a in found],
    )


@app.command("get")
@handle_errors
def get(
    run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
    name: str = typer.Argument("", help="Artifact name or folder; everything when omitted."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder to download into."),
) -> None:
    """Download artifacts (verified against their sha256) into a folder."""
    from keel.cli._project import existing_client

    client = existing_client()
    path = client.download_artifacts(client.resolve_run_id(run_id), name, output)
    typer.echo(str(path))
