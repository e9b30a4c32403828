"""``keel names check``: check names against the project's naming convention."""

from __future__ import annotations

from typing import Any

import typer

from keel.cli._output import console, handle_errors, print_json

app = typer.Typer(
    help="Check names against the naming convention.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("check")
@handle_errors
def check(
    names: list[str] = typer.Argument(..., help="Names to check."),
    kind: str = typer.Option(
        "model", "--kind", "-k", help="Kind of name: experiment, run, model or artifact."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check NAMES against the naming rules of KIND; exit 1 if any breaks a rule.

    Each failure shows the rule, the configured pattern and a name that passes.
    """
    from keel.config import Settings
    from keel.naming import NamingConvention

    settings = Settings.load()
    convention = NamingConvention(settings.naming, settings.project)
    rule = convention.rule(kind)
    results: list[dict[str, Any]] = []
    for name in names:
        problems = convention.check(kind, name)
        results.append(
            {
                "name": name,
                "valid": not problems,
                "problems": problems,
                "suggestion": rule.suggest(name, {"project": settings.project}) if problems else None,
            }
        )
    if json_output:
        print_json({"kind": kind, "pattern": rule.pattern, "results": results})
    else:
        from rich.markup import escape

        out = console()
        if rule.pattern:
            out.print(f"pattern for {kind} names: [bold]{escape(rule.pattern)}[/]")
        for result in results:
            if result["valid"]:
                out.print(f"[green]ok[/]      {escape(result['name'])}")
            else:
                out.print(
                    f"[red]invalid[/] {escape(result['name'])}: "
                    f"{escape('; '.join(result['problems']))} (try {escape(repr(result['suggestion']))})"
                )
    if not all(r["valid"] for r in results):
        raise typer.Exit(1)
