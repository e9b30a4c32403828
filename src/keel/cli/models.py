"""``keel models``: the registry from the command line."""

from __future__ import annotations

import typer

from keel.cli._output import format_time, handle_errors, print_json, table

app = typer.Typer(
    help="List registered models, show versions, set aliases.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("list")
@handle_errors
def list_models(
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List registered models with their latest version and aliases."""
    from keel.cli._project import existing_client

    found = existing_client().list_registered_models()
    if json_output:
        print_json(
            [
                {
                    "name": m.name,
                    "latest_version": m.latest_version,
                    "aliases": dict(m.aliases),
                    "description": m.description,
                    "tags": dict(m.tags),
                    "updated_at": m.updated_at,
                }
                for m in found
            ]
        )
        return
    table(
        "registered models",
        ["name", "latest", "aliases", "updated"],
        [
            [
                m.name,
                m.latest_version,
                " ".join(f"@{a}→v{v}" for a, v in sorted(m.aliases.items())),
                format_time(m.updated_at),
            ]
            for m in found
        ],
    )


@app.command("show")
@handle_errors
def show(
    name: str = typer.Argument(..., help="Registered model name."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a model's versions: source run, flavor, aliases, signature."""
    from keel.cli._project import existing_client

    versions = existing_client().list_model_versions(name)
    if json_output:
        print_json(
            [
                {
                    "version": v.version,
                    "uri": v.uri,
                    "run_id": v.run_id,
                    "flavor": v.flavor,
                    "aliases": list(v.aliases),
                    "artifact_sha256": v.artifact_sha256,
                    "signature": v.signature,
                    "tags": dict(v.tags),
                    "created_at": v.created_at,
                }
                for v in versions
            ]
        )
        return
    table(
        f"versions of {name}",
        ["version", "aliases", "flavor", "run", "created", "inputs"],
        [
            [
                v.version,
                " ".join(f"@{a}" for a in v.aliases),
                v.flavor,
                (v.run_id or "")[:8],
                format_time(v.created_at),
                _inputs(v.signature),
            ]
            for v in versions
        ],
    )


@app.command("alias")
@handle_errors
def alias(
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="Alias such as champion."),
    version: int = typer.Argument(None, help="Version to point the alias at (omit with --delete)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
) -> None:
    """Point ALIAS (such as champion) at VERSION of model NAME, or remove it with --delete."""
    from keel.cli._project import existing_client

    client = existing_client()
    if delete:
        client.delete_model_alias(name, alias_name)
        typer.echo(f"removed @{alias_name} from {name}")
        return
    if version is None:
        raise typer.BadParameter("give the VERSION the alias should point at, or --delete")
    client.set_model_alias(name, alias_name, version)
    typer.echo(f"{name}@{alias_name} -> version {version}")


def _inputs(signature: object) -> str:
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return ""
    inputs = signature["inputs"]
    return f"{len(inputs)} column(s)" if len(inputs) > 1 else str(inputs[0].get("shape"))
