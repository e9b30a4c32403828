"""``keel runs``: list, show, compare and delete runs."""

from __future__ import annotations

from typing import Any

import typer

from keel.cli._output import (
    console,
    format_duration,
    format_number,
    format_time,
    handle_errors,
    print_json,
    status_text,
    table,
)

app = typer.Typer(help="List, show, compare and delete runs.", no_args_is_help=True, rich_markup_mode=None)


def run_json(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "status": run.status.value,
        "lifecycle_stage": run.lifecycle_stage,
        "user": run.user,
        "host": run.host,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_ms": run.duration_ms,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "entry_point": run.entry_point,
        "parent_run_id": run.parent_run_id,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {k: m.value for k, m in run.metrics.items()},
        "cost_usd": run.cost_usd,
        "cost_detail": run.cost_detail,
        "traceback": run.traceback,
    }


@app.command("list")
@handle_errors
def list_runs(
    experiment: list[str] = typer.Option(
        [], "--experiment", "-e", help="Experiment name or id (repeatable); all when omitted."
    ),
    filter_string: str = typer.Option(
        "", "--filter", "-f", help="Filter such as \"metrics.acc > 0.9 and params.lr = '0.01'\"."
    ),
    order_by: list[str] = typer.Option(
        [], "--order-by", "-o", help="Order such as 'metrics.acc DESC' (repeatable)."
    ),
    max_results: int = typer.Option(50, "--max", "-n", help="How many runs to show."),
    all_: bool = typer.Option(False, "--all", help="Include deleted runs."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List runs, newest first, with their metrics, duration and cost."""
    from keel.cli._project import existing_client

    client = existing_client()
    found = client.search_runs(experiment or None, filter_string, order_by, max_results, include_deleted=all_)
    if json_output:
        print_json([run_json(run) for run in found])
        return
    from keel.tracking.cost import format_usd

    metric_keys = sorted({k for run in found for k in run.user_metrics})[:6]
    table(
        None,
        ["run", "name", "status", "started", "duration", "cost", *metric_keys],
        [
            [
                run.run_id[:8],
                run.name,
                status_text(run.status.value),
                format_time(run.start_time),
                format_duration(run.duration_ms),
                format_usd(run.cost_usd) if run.cost_usd is not None else "",
                *[run.user_metrics.get(k) for k in metric_keys],
            ]
            for run in found
        ],
    )
    if getattr(found, "token", None):
        console().print(f"[dim]more runs: use --max {max_results * 2} or --json with paging[/]")


@app.command("show")
@handle_errors
def show(
    run_id: str = typer.Argument(..., help="Run id, or a unique prefix of one."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show one run: params, metrics, system metrics, cost, artifacts, inputs, lineage, comments."""
    from keel.cli._project import existing_client

    client = existing_client()
    run = client.get_run(client.resolve_run_id(run_id))
    artifacts = client.list_artifacts(run.run_id)
    inputs = client.list_inputs(run.run_id)
    comments = client.list_comments(run.run_id)
    if json_output:
        data = run_json(run)
        data["artifacts"] = [
            {"name": a.name, "sha256": a.sha256, "size": a.size, "media_type": a.media_type}
            for a in artifacts
        ]
        data["inputs"] = [
            {
                "name": d.name,
                "fingerprint": d.fingerprint,
                "rows": d.row_count,
                "context": d.context,
            }
            for d in inputs
        ]
        data["comments"] = [
            {"author": c.author, "body": c.body, "created_at": c.created_at} for c in comments
        ]
        print_json(data)
        return
    from rich.markup import escape

    from keel.tracking.cost import format_usd

    out = console()
    out.print(f"[bold]{escape(run.name)}[/]  {run.run_id}")
    out.print(status_text(run.status.value))
    out.print(
        f"experiment {run.experiment_id} · started {format_time(run.start_time)} · "
        f"duration {format_duration(run.duration_ms) or 'running'} · {escape(run.user)}@"
        f"{escape(run.host)}"
    )
    if run.git_commit:
        out.print(
            f"git {run.git_commit[:12]}{' (dirty)' if run.git_dirty else ''} · "
            f"{escape(run.entry_point or '')}"
        )
    if run.cost_usd is not None:
        detail = run.cost_detail or {}
        out.print(
            f"estimated cost {format_usd(run.cost_usd)} (cpu {detail.get('cpu_core_hours', 0):.4f} "
            f"core-h, memory {detail.get('memory_gb_hours', 0):.4f} GB-h)"
        )
    if run.params:
        table("params", ["key", "value"], sorted(run.params.items()))
    if run.user_metrics:
        table(
            "metrics (latest)",
            ["key", "value", "step"],
            [[k, m.value, m.step] for k, m in sorted(run.metrics.items()) if k in run.user_metrics],
        )
    if run.system_metrics:
        table("system metrics (latest sample)", ["key", "value"], sorted(run.system_metrics.items()))
    if run.tags:
        table("tags", ["key", "value"], sorted(run.tags.items()))
    if artifacts:
        table(
            "artifacts",
            ["name", "size", "sha256"],
            [[a.name, _size(a.size), a.sha256[:16]] for a in artifacts],
        )
    if inputs:
        table(
            "inputs",
            ["dataset", "rows", "fingerprint", "context"],
            [[d.name, d.row_count, d.fingerprint[:16], d.context] for d in inputs],
        )
    for comment in comments:
        out.print(
            f"[dim]{format_time(comment.created_at)} {escape(comment.author)}:[/] {escape(comment.body)}"
        )
    if run.traceback:
        out.print("[red]traceback[/]")
        out.print(escape(run.traceback))


@app.command("compare")
@handle_errors
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes)."),
    only_diff: bool = typer.Option(False, "--diff", help="Show only rows whose values differ."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Compare runs side by side: params and metrics, differing rows highlighted."""
    from rich.text import Text

    from keel.cli._project import existing_client

    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two runs to compare")
    client = existing_client()
    found = [client.get_run(client.resolve_run_id(r)) for r in run_ids]
    rows: list[tuple[str, list[Any]]] = []
    for key in sorted({k for run in found for k in run.params}):
        rows.append((f"params.{key}", [run.params.get(key) for run in found]))
    for key in sorted({k for run in found for k in run.user_metrics}):
        rows.append((f"metrics.{key}", [run.user_metrics.get(key) for run in found]))
    rows.append(("cost_usd", [run.cost_usd for run in found]))
    rows.append(("duration_s", [None if r.duration_ms is None else r.duration_ms / 1000 for r in found]))
    if json_output:
        print_json(
            {
                "runs": [r.run_id for r in found],
                "rows": [
                    {"key": key, "values": values, "differs": len({repr(v) for v in values}) > 1}
                    for key, values in rows
                ],
            }
        )
        return
    shown = []
    for key, values in rows:
        differs = len({repr(v) for v in values}) > 1
        if only_diff and not differs:
            continue
        style = "bold yellow" if differs else ""
        shown.append(
            [
                Text(key, style=style),
                *[
                    Text(
                        "" if v is None else (format_number(v) if isinstance(v, float) else str(v)),
                        style=style,
                    )
                    for v in values
                ],
            ]
        )
    table(
        "comparison (differences in yellow)",
        ["", *[f"{r.name} ({r.run_id[:8]})" for r in found]],
        shown,
    )


@app.command("delete")
@handle_errors
def delete(
    run_ids: list[str] = typer.Argument(..., help="Run ids (or unique prefixes) to delete."),
    permanent: bool = typer.Option(
        False, "--permanent", help="Remove the records for good (artifact blobs stay)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete runs (soft by default: `keel runs list --all` still shows them)."""
    from keel.cli._project import existing_client

    client = existing_client()
    resolved = [client.resolve_run_id(r) for r in run_ids]
    if permanent and not yes:
        typer.confirm(f"Permanently delete {len(resolved)} run(s)?", abort=True)
    for run_id in resolved:
        client.delete_run(run_id, permanently=permanent)
        console().print(f"deleted {run_id}{' permanently' if permanent else ''}")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)
