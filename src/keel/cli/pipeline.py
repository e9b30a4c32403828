"""``keel pipeline``: run pipelines, list and show their runs, draw their graphs, explain cache misses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from keel.cli._output import console, format_time, handle_errors, print_json, table

app = typer.Typer(
    help="Run pipelines, show their runs and graphs, explain cache misses.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


#: how step errors name the options that would help, when the CLI runs the pipeline
CLI_OPTIONS = {"cache": "--no-cache", "trust": "--trust-pickle"}
_TRUST_PICKLE = typer.Option(
    False,
    "--trust-pickle",
    help="Also load cached outputs that other machines pickled into a shared store "
    "(unpickling runs their code); outputs this machine pickled load without it.",
)


def _parse_params(pairs: list[str], config: Path | None) -> dict[str, Any]:
    from keel.errors import InvalidInputError

    params: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            raise InvalidInputError(f"config file {config} does not exist")
        text = config.read_text()
        if config.suffix in {".yaml", ".yml"}:
            import yaml

            loaded = yaml.safe_load(text) or {}
        elif config.suffix == ".toml":
            import tomllib

            loaded = tomllib.loads(text)
        elif config.suffix == ".json":
            loaded = json.loads(text)
        else:
            raise InvalidInputError(f"config {config} must be .yaml, .yml, .toml or .json")
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"config {config} must hold a mapping of parameter names to values")
        params.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--param takes NAME=VALUE, not {pair!r}")
        try:
            params[key] = json.loads(raw)  # numbers, booleans, lists; anything else stays a string
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _resolve(reference: str) -> Any:
    from keel.cli._project import existing_client

    client = existing_client()
    store = client.store
    if reference.isdigit():
        return client, store.get_pipeline_run(int(reference))
    return client, store.get_pipeline_run_by_run_id(client.resolve_run_id(reference))


@app.command("run")
@handle_errors
def run(
    target: str = typer.Argument(..., help="The pipeline as module:function, e.g. train:training."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (JSON values; repeatable)."),
    config: Path = typer.Option(None, "--config", "-c", help="Params from a YAML, TOML or JSON file."),
    executor: str = typer.Option("inline", "--executor", "-x", help="inline, process or ray."),
    workers: int = typer.Option(None, "--workers", help="Processes for --executor process."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, reuse nothing."),
    trust_pickle: bool = _TRUST_PICKLE,
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Run a pipeline, tracked; steps whose inputs did not change come from the cache."""
    from keel.errors import InvalidInputError
    from keel.pipelines.tracking import load_pipeline, run_pipeline

    if executor not in {"inline", "process", "ray"}:
        raise InvalidInputError("--executor is inline, process or ray")
    target_pipeline = load_pipeline(target)
    result = run_pipeline(
        target_pipeline,
        _parse_params(param, config),
        executor=executor,  # type: ignore[arg-type]
        max_workers=workers,
        cache=not no_cache,
        trust=trust_pickle,
        options=CLI_OPTIONS,
    )
    _report(result.pipeline_run_id, json_output)  # type: ignore[attr-defined]
    if not result.ok:
        raise typer.Exit(1)


@app.command("resume")
@handle_errors
def resume(
    reference: str = typer.Argument(..., help="Pipeline run id, or the id (prefix) of its tracking run."),
    trust_pickle: bool = _TRUST_PICKLE,
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Run a pipeline again with the same params: completed steps come from the cache."""
    from keel.errors import InvalidInputError
    from keel.pipelines.tracking import load_pipeline, run_pipeline

    _, record = _resolve(reference)
    entry = record.graph.get("entry")
    if not entry or "<locals>" in entry:
        raise InvalidInputError("this pipeline run does not name an importable pipeline to resume")
    result = run_pipeline(load_pipeline(entry), record.params, trust=trust_pickle, options=CLI_OPTIONS)
    _report(result.pipeline_run_id, json_output)  # type: ignore[attr-defined]
    if not result.ok:
        raise typer.Exit(1)


def _report(pipeline_run_id: int, json_output: bool) -> None:
    from keel.cli._project import existing_client

    record = existing_client().store.get_pipeline_run(pipeline_run_id)
    if json_output:
        print_json(_record_json(record))
        return
    _show(record)


def _record_json(record: Any) -> dict[str, Any]:
    return {
        "pipeline_run_id": record.pipeline_run_id,
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "status": record.status,
        "params": dict(record.params),
        "created_at": record.created_at,
        "steps": [
            {
                "node": s.node,
                "step": s.step,
                "status": s.status,
                "cached": s.cached,
                "cache_key": s.cache_key,
                "wall_s": s.wall_s,
                "cpu_s": s.cpu_s,
                "peak_rss_mb": s.peak_rss_mb,
                "error": s.error,
                "inputs": dict(s.inputs),
                "outputs": dict(s.outputs),
            }
            for s in record.steps
        ],
    }


def _rounded(value: float | None, digits: int) -> float | None:
    """Milliseconds and whole megabytes: ``0.0741861`` s of CPU is noise past the third decimal."""
    return None if value is None else round(value, digits)


def _show(record: Any) -> None:
    from keel.pipelines.tracking import stored_graph

    out = console()
    status = {s.node: s.status for s in record.steps}
    out.print(stored_graph(record.graph).render_text(status), markup=False, highlight=False)
    table(
        f"pipeline run {record.pipeline_run_id} ({record.status}), tracking run {record.run_id[:8]}",
        ["step", "status", "wall s", "cpu s", "peak MB", "cache key"],
        [
            [
                s.node,
                s.status,
                _rounded(s.wall_s, 3),
                _rounded(s.cpu_s, 3),
                _rounded(s.peak_rss_mb, 0),
                (s.cache_key or "")[:12],
            ]
            for s in record.steps
        ],
    )
    for step in record.steps:
        if step.error:
            out.print(f"[red]{step.node} failed[/]")
            out.print(step.error, markup=False, highlight=False)


@app.command("list")
@handle_errors
def list_runs(
    pipeline_name: str = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    max_results: int = typer.Option(20, "--max", "-n", help="How many runs to show."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List pipeline runs, newest first, with how many steps ran and how many came from the cache."""
    from keel.cli._project import existing_client

    found = existing_client().store.list_pipeline_runs(pipeline_name, max_results)
    if json_output:
        print_json([_record_json(r) for r in found])
        return
    table(
        "pipeline runs",
        ["id", "pipeline", "status", "started", "steps", "cached", "failed", "run"],
        [
            [
                r.pipeline_run_id,
                r.pipeline,
                r.status,
                format_time(r.created_at),
                len(r.steps),
                sum(s.cached for s in r.steps),
                sum(s.status == "failed" for s in r.steps),
                r.run_id[:8],
            ]
            for r in found
        ],
    )


@app.command("show")
@handle_errors
def show(
    reference: str = typer.Argument(..., help="Pipeline run id, or the id (prefix) of its tracking run."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a pipeline run: its graph with step status, timings, memory and errors."""
    _, record = _resolve(reference)
    if json_output:
        print_json(_record_json(record))
    else:
        _show(record)


@app.command("graph")
@handle_errors
def graph(
    reference: str = typer.Argument(..., help="Pipeline run id, or the id (prefix) of its tracking run."),
    svg: Path = typer.Option(None, "--svg", help="Write the graph as SVG to this file."),
) -> None:
    """Draw a pipeline run's DAG with step status and cache hits (text, or SVG with --svg)."""
    from keel.pipelines.tracking import stored_graph

    _, record = _resolve(reference)
    status = {s.node: s.status for s in record.steps}
    drawn = stored_graph(record.graph)
    if svg is not None:
        svg.write_text(drawn.render_svg(status))
        typer.echo(str(svg))
    else:
        typer.echo(drawn.render_text(status))


@app.command("explain")
@handle_errors
def explain(
    reference: str = typer.Argument(..., help="Pipeline run id, or the id (prefix) of its tracking run."),
    node: str = typer.Argument(..., help="The step (node id) to explain, e.g. train or train[2]."),
) -> None:
    """Say why a step ran instead of coming from the cache (or that it was a cache hit)."""
    from keel.errors import NotFoundError
    from keel.pipelines.cache import explain as explain_difference

    client, record = _resolve(reference)
    steps = {s.node: s for s in record.steps}
    if node not in steps:
        raise NotFoundError(
            f"pipeline run {record.pipeline_run_id} has no step {node!r}; steps: {', '.join(steps)}"
        )
    current = steps[node]
    if current.cached:
        typer.echo(f"{node}: cache hit (key {current.cache_key})")
        return
    if not current.components:
        typer.echo(f"{node}: caching was off or the step did not get far enough to have a cache key")
        return
    previous = None
    for earlier in client.store.list_pipeline_runs(record.pipeline, 200):
        if earlier.pipeline_run_id >= record.pipeline_run_id:
            continue
        match = next((s for s in earlier.steps if s.node == node and s.components), None)
        if match is not None:
            previous = (earlier, match)
            break
    if previous is None:
        typer.echo(
            f"{node}: first run of this step (no earlier run of pipeline {record.pipeline!r} to reuse)"
        )
        return
    reasons = explain_difference(previous[1].components, current.components)
    typer.echo(f"{node} missed the cache; compared with pipeline run {previous[0].pipeline_run_id}:")
    for reason in reasons or ["the key matches an earlier run whose outputs were not reusable"]:
        typer.echo(f"  - {reason}")
