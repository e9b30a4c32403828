"""The UI's routes: each parses the URL, asks :mod:`keel.server.ui.views` or the store, renders a page.

Every view state (filter, sort, columns, page, selected runs, chart settings) is in the query
string, so a URL shows the same view to whoever opens it. Pages are plain HTML that work without
JavaScript; htmx swaps parts in place and uPlot draws the series.
"""

from __future__ import annotations

import functools
import mimetypes
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from keel.errors import InvalidInputError, KeelError, NotFoundError
from keel.server.downloads import download_headers, served_media_type
from keel.server.policy import (
    checked_project,
    project_of_experiment,
    project_of_run,
    project_param,
    public,
    require,
)
from keel.server.ui import series as series_module
from keel.server.ui import svg, views
from keel.server.ui.previews import kind_of, preview

__all__ = ["PAGE_CSP", "PREFIX", "SECURITY_HEADERS", "home_router", "login_redirect", "router"]

PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
THEMES = ("auto", "light", "dark")
THEME_COOKIE = "keel_theme"
#: charts whose data a page asks the browser to fetch early (<link rel="preload">)
PRELOADED_CHARTS = 4
#: the policy of the pages a sandboxed artifact (an HTML report, an SVG) is served with
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "frame-ancestors 'self'"
)

#: the policy of every UI page: scripts and styles only from the UI's own static files
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)
#: ``/``, on ``keel ui`` and ``keel server`` alike: the address people type and the one MLflow's
#: clients print ("View run at http://host:port/#/experiments/1/runs/<id>")
home_router = APIRouter(include_in_schema=False)


@home_router.get("/", dependencies=[public()])
def home() -> Response:
    """Redirect to the UI. The browser keeps the URL's fragment across the redirect (RFC 9110
    §10.2.2), and the fragment never reaches a server, so MLflow's ``#/experiments/…/runs/<id>`` is
    turned into keel's run page by ``static/keel.js`` on the UI's home page."""
    return RedirectResponse(PREFIX + "/", status_code=307)


F = TypeVar("F", bound=Callable[..., Any])

_env: Any = None


def templates() -> Any:
    global _env
    if _env is None:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("keel.server.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals.update(
            fmt=views.format_value,
            fmt_time=views.format_time,
            fmt_duration=views.format_duration,
            fmt_usd=views.format_usd,
            prefix=PREFIX,
            quote=lambda s: urllib.parse.quote(str(s), safe=""),
            quote_path=lambda s: urllib.parse.quote(str(s), safe="/"),
            static_version=_static_version(),
        )
        _env = env
    return _env


@functools.cache
def _static_files() -> dict[str, Path]:
    return {
        str(p.relative_to(STATIC)): p
        for p in STATIC.rglob("*")
        if p.is_file() and p.suffix in {".js", ".css", ".txt", ".svg"}
    }


@functools.cache
def _static_version() -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, path in sorted(_static_files().items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters replaced (``None`` removes one; a list repeats it)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs += [(key, str(v)) for v in value]
        else:
            pairs.append((key, str(value)))
    query = urllib.parse.urlencode(pairs)
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    theme = request.cookies.get(THEME_COOKIE, "auto")
    page = (
        templates()
        .get_template(template)
        .render(
            request=request,
            theme=theme if theme in THEMES else "auto",
            url_with=functools.partial(url_with, request),
            **context,
        )
    )
    return HTMLResponse(
        page, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP, **SECURITY_HEADERS}
    )


def error_page(request: Request, exc: Exception) -> Response:
    """keel's error as a page with the message (404 for unknown records, 400 for bad input); apps
    serving the UI answer with it too when a route's policy refuses a record (a 404)."""
    status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, InvalidInputError) else 500
    return render(request, "error.html", status_code=status, message=str(exc), status=status, title="Error")


def pages(function: F) -> F:
    """Show keel's errors as a page with the message (see :func:`error_page`)."""

    @functools.wraps(function)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(request, *args, **kwargs)
        except KeelError as exc:
            return error_page(request, exc)

    return wrapper  # type: ignore[return-value]


def _store(request: Request) -> Any:
    return request.app.state.store


def _allowed(request: Request, project: str | None) -> bool:
    principal = request.scope.get("keel.principal")
    return principal is None or bool(principal.allows("read", project))


def _sees_everything(request: Request) -> bool:
    principal = request.scope.get("keel.principal")
    return principal is None or (
        bool(getattr(principal, "is_admin", False)) and getattr(principal, "token_project", None) == "*"
    )


def _check_runs(request: Request, run_ids: Sequence[str]) -> None:
    """Every run must belong to a project the caller may read (a 404 otherwise, as for a missing run)."""
    if _sees_everything(request):
        return
    projects = request.app.state.projects
    for run_id in run_ids:
        project = projects.of_run(run_id)
        if project is None or not _allowed(request, project):
            raise NotFoundError(f"no run {run_id!r}; `keel runs list` shows the runs you can see")


def _int(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a whole number; got {value!r}") from None


def _float(value: str | None, name: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a number; got {value!r}") from None


def _chart_settings(request: Request) -> dict[str, Any]:
    query = request.query_params
    axis = series_module.check_axis(query.get("axis") or "step")
    smoothing = _float(query.get("smooth"), "smooth", 0.0)
    if not 0 <= smoothing < 1:
        raise InvalidInputError(f"smooth must be in [0, 1); got {smoothing}")
    return {"axis": axis, "smooth": smoothing, "log": query.get("log") == "1"}


# -- static files and theme ------------------------------------------------------------------
@router.get("/static/{name:path}", dependencies=[public()])
def static(name: str) -> Response:
    path = _static_files().get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media.endswith("javascript"):
        media += "; charset=utf-8"
    return Response(
        path.read_bytes(), media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


@router.get("/theme", dependencies=[public()])
def theme(request: Request, set: str = "auto", next: str = PREFIX + "/") -> Response:
    if set not in THEMES:
        set = "auto"
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(THEME_COOKIE, set, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.get("/login", dependencies=[public()])
def login(request: Request, next: str = PREFIX + "/") -> Response:
    """The sign-in form of ``keel server`` (keel.js posts it to ``/api/v1/auth/login``)."""
    return render(request, "login.html", next=_local(next), title="Sign in")


def _local(target: str) -> str:
    parsed = urllib.parse.urlsplit(target)
    # only back to a page of this UI: never an open redirect
    local = not parsed.scheme and not parsed.netloc and target.startswith(PREFIX)
    return target if local else PREFIX + "/"


def login_redirect(request: Request, status_code: int) -> Response | None:
    """For ``keel server``'s error handler: send a browser that lacks a session on a UI page to the
    sign-in form (``None`` for anything else, which keeps its JSON error)."""
    path = request.url.path
    wants_page = "text/html" in request.headers.get("accept", "")
    if status_code != 401 or request.method != "GET" or not wants_page or not path.startswith(PREFIX):
        return None
    here = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={urllib.parse.quote(here, safe='')}", status_code=303)


# -- experiments and runs --------------------------------------------------------------------
@router.get("", dependencies=[require("read")])
@router.get("/", dependencies=[require("read")])
@pages
def experiments(request: Request) -> Response:
    store = _store(request)
    query = request.query_params.get("q", "").strip()
    found = [
        e
        for e in store.list_experiments(project=None)
        if _allowed(request, e.project) and (not query or query.lower() in e.name.lower())
    ]
    rows = [(e, store.count_runs(e.experiment_id)) for e in found]
    return render(request, "experiments.html", rows=rows, query=query, title="Experiments")


@router.get("/experiments/{experiment_id}", dependencies=[require("read", project_of_experiment())])
@pages
def runs(request: Request, experiment_id: str) -> Response:
    store = _store(request)
    experiment = store.get_experiment(experiment_id)
    query = request.query_params
    per = _int(query.get("per"), "per", 50)
    table = views.runs_table(
        store,
        experiment.experiment_id,
        filter_string=query.get("filter", ""),
        order=query.get("order", "-start_time"),
        columns=query.getlist("col"),
        per_page=per,
        page_token=query.get("page"),
    )
    return render(
        request,
        "runs.html",
        experiment=experiment,
        table=table,
        filter=query.get("filter", ""),
        total=store.count_runs(experiment.experiment_id),
        page_number=max(1, _int(query.get("n"), "n", 1)),
        per=per,
        title=experiment.name,
    )


@router.get("/runs/{run_id}", dependencies=[require("read", project_of_run())])
@pages
def run_page(request: Request, run_id: str) -> Response:
    from keel.entities import SYSTEM_METRIC_PREFIX

    store = _store(request)
    run = store.get_run(run_id)
    keys = store.list_metric_keys(run_id)
    try:
        pipeline_run = store.get_pipeline_run_by_run_id(run_id)
    except NotFoundError:
        pipeline_run = None
    lineage = store.run_lineage(run_id)
    chart = _chart_settings(request)
    user_keys = [k for k in keys if not k.startswith(SYSTEM_METRIC_PREFIX)]
    return render(
        request,
        "run.html",
        # the browser starts fetching the first charts' data while it loads the scripts
        preload=[
            f"{PREFIX}/runs/{run_id}/series?key={urllib.parse.quote(k, safe='')}&axis={chart['axis']}"
            for k in user_keys[:PRELOADED_CHARTS]
        ],
        run=run,
        experiment=store.get_experiment(run.experiment_id),
        metric_keys=user_keys,
        system_keys=[k for k in keys if k.startswith(SYSTEM_METRIC_PREFIX)],
        artifacts=store.list_artifacts(run_id),
        kind_of=kind_of,
        inputs=[e for e in lineage if e.direction == "input"],
        outputs=[e for e in lineage if e.direction == "output"],
        datasets=store.list_run_inputs(run_id),
        versions=[v for v in store.model_versions_from_runs([run_id]) if _allowed(request, v.project)],
        pipeline_run=pipeline_run,
        comments=store.list_comments("run", run_id),
        chart=chart,
        comment_url=f"{PREFIX}/runs/{run_id}/comments",
        title=run.name or run.run_id,
    )


@router.get("/runs/{run_id}/series", dependencies=[require("read", project_of_run())])
def run_series(request: Request, run_id: str, key: str, axis: str = "step", points: int = 2000) -> Response:
    try:
        run = _store(request).get_run(run_id)
        data = series_module.run_series(_store(request), run, key, axis=axis, points=points)
    except KeelError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)
    return JSONResponse(data)


def _form(body: bytes) -> dict[str, str]:
    fields = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


async def _comment(
    request: Request, target_type: str, target_id: str, back: str, project: str = "default"
) -> Response:
    from starlette.concurrency import run_in_threadpool

    fields = _form(await request.body())
    store = _store(request)
    principal = request.scope.get("keel.principal")
    # with authentication the comment is signed by the caller; without it (a local UI) by the OS user
    name = getattr(principal, "name", None)
    author = name if name and name != "anonymous" else None
    error = ""
    try:
        await run_in_threadpool(
            functools.partial(store.add_comment, author=author, project=project),
            target_type,
            target_id,
            fields.get("body", ""),
        )
    except InvalidInputError as exc:
        error = str(exc)
    if request.headers.get("hx-request") == "true":
        comments = await run_in_threadpool(
            functools.partial(store.list_comments, project=project), target_type, target_id
        )
        return render(
            request,
            "_comments.html",
            status_code=400 if error else 200,
            comments=comments,
            comment_url=request.url.path,
            comment_error=error,
        )
    if error:
        return render(request, "error.html", status_code=400, message=error, status=400, title="Error")
    return RedirectResponse(back + "#comments", status_code=303)


@router.post("/runs/{run_id}/comments", dependencies=[require("write", project_of_run())])
async def run_comment(request: Request, run_id: str) -> Response:
    return await _comment(request, "run", run_id, f"{PREFIX}/runs/{run_id}")


def _artifact(store: Any, run_id: str, name: str) -> Any:
    for artifact in store.list_artifacts(run_id, prefix=name):
        if artifact.name == name:
            return artifact
    raise NotFoundError(f"run {run_id} has no artifact {name!r}; the run page lists its artifacts")


@router.get("/runs/{run_id}/artifacts/{name:path}", dependencies=[require("read", project_of_run())])
@pages
def artifact_page(request: Request, run_id: str, name: str) -> Response:
    store = _store(request)
    run = store.get_run(run_id)
    artifact = _artifact(store, run_id, name)
    shown = preview(artifact, lambda limit: request.app.state.artifacts.read_bytes(artifact.sha256)[:limit])
    return render(
        request,
        "artifact.html",
        run=run,
        artifact=artifact,
        preview=shown,
        raw_url=f"{PREFIX}/runs/{run_id}/raw/{urllib.parse.quote(name)}",
        title=name,
    )


@router.get("/runs/{run_id}/raw/{name:path}", dependencies=[require("read", project_of_run())])
def artifact_raw(request: Request, run_id: str, name: str, download: bool = False) -> Response:
    store = _store(request)
    try:
        artifact = _artifact(store, run_id, name)
    except NotFoundError as exc:
        return Response(str(exc), status_code=404, media_type="text/plain")
    data = request.app.state.artifacts.read_bytes(artifact.sha256)
    inline = not download and kind_of(artifact) in {"image", "html", "text", "json", "csv"}
    return Response(
        data,
        media_type=served_media_type(artifact.media_type),
        headers={
            # a report is someone's HTML: it runs in an opaque origin with no scripts, no requests out
            **download_headers(name, inline=inline, csp=ARTIFACT_CSP),
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/artifacts/{sha256}", dependencies=[require("read")])
@pages
def artifact_lineage(request: Request, sha256: str) -> Response:
    from keel.tracking.lineage import artifact_lineage as lineage_of

    store = _store(request)
    found = lineage_of(SimpleNamespace(store=store), sha256)
    projects = request.app.state.projects

    def visible(run_id: str) -> bool:
        return _allowed(request, projects.of_run(run_id))

    return render(
        request,
        "artifact_lineage.html",
        lineage=found,
        produced=[e for e in found.produced_by if visible(e.run_id)],
        used=[e for e in found.used_by if visible(e.run_id)],
        steps=[s for s in found.steps if visible(s.run_id)],
        versions=[
            v
            for v in found.model_versions
            if _allowed(request, v.project) and (v.run_id is None or visible(v.run_id))
        ],
        title=f"artifact {sha256[:12]}",
    )


# a path parameter: data set names hold slashes (`sklearn/breast_cancer`), which a plain
# parameter would not match even when the link encodes them (the server decodes %2F before routing)
@router.get("/datasets/{name:path}", dependencies=[require("read")])
@pages
def dataset_page(request: Request, name: str) -> Response:
    from keel.tracking.lineage import dataset_lineage

    found = dataset_lineage(SimpleNamespace(store=_store(request)), name)
    projects = request.app.state.projects
    uses = [u for u in found.uses if _allowed(request, projects.of_run(u.run_id))]
    outputs = [e for e in found.outputs if _allowed(request, projects.of_run(e.run_id))]
    # only versions of models the viewer may read, registered from runs the viewer may read
    versions = [
        v
        for v in found.model_versions
        if _allowed(request, v.project)
        and v.run_id
        and (project := projects.of_run(v.run_id)) is not None
        and _allowed(request, project)
    ]
    return render(
        request,
        "dataset.html",
        name=name,
        uses=uses,
        outputs=outputs,
        versions=versions,
        title=f"dataset {name}",
    )


# -- compare ---------------------------------------------------------------------------------
@router.get("/compare", dependencies=[require("read")])
@pages
def compare(request: Request) -> Response:
    query = request.query_params
    run_ids = query.getlist("runs")
    _check_runs(request, run_ids)
    view = views.compare_view(_store(request), run_ids)
    chosen_metrics = [k for k in query.getlist("metric") if k in view.metric_keys] or view.metric_keys[:6]
    x_param = query.get("x") or (view.param_keys[0] if view.param_keys else "")
    y_metric = query.get("y") or (view.metric_keys[0] if view.metric_keys else "")
    columns = [f"params.{k}" for k in view.param_keys[:8]] + [f"metrics.{k}" for k in chosen_metrics]
    rows = views.table_values(view.runs, columns)
    parallel = (
        svg.parallel_coordinates(columns, rows, title="parallel coordinates of params and metrics")
        if len(view.runs) >= 2 and columns
        else ""
    )
    scatter = ""
    if x_param and y_metric:
        pairs = views.table_values(view.runs, [f"params.{x_param}", f"metrics.{y_metric}"])
        scatter = svg.scatter(
            [(label, values[f"params.{x_param}"], values[f"metrics.{y_metric}"]) for label, values in pairs],
            x_label=x_param,
            y_label=y_metric,
            title=f"{y_metric} against {x_param}",
        )
    histogram = ""
    if y_metric:
        histogram = svg.histogram(
            [run.metrics[y_metric].value for run in view.runs if y_metric in run.metrics], label=y_metric
        )
    return render(
        request,
        "compare.html",
        view=view,
        chosen_metrics=chosen_metrics,
        x_param=x_param,
        y_metric=y_metric,
        parallel=parallel,
        scatter=scatter,
        histogram=histogram,
        chart=_chart_settings(request),
        runs_query=urllib.parse.urlencode([("runs", r.run_id) for r in view.runs]),
        title=f"Compare {len(view.runs)} runs",
    )


@router.get("/compare/series", dependencies=[require("read")])
def compare_series(request: Request, key: str, axis: str = "step", points: int = 2000) -> Response:
    run_ids = list(dict.fromkeys(request.query_params.getlist("runs")))
    try:
        if len(run_ids) > views.MAX_COMPARE:
            raise InvalidInputError(f"compare takes at most {views.MAX_COMPARE} runs")
        _check_runs(request, run_ids)
        store = _store(request)
        data = series_module.compare_series(
            store, views.get_runs(store, run_ids), key, axis=axis, points=points
        )
    except KeelError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404 if isinstance(exc, NotFoundError) else 400)
    return JSONResponse(data)


# -- registry --------------------------------------------------------------------------------
@router.get("/models", dependencies=[require("read")])
@pages
def models(request: Request) -> Response:
    found = [m for m in _store(request).list_registered_models(project=None) if _allowed(request, m.project)]
    return render(request, "models.html", models=found, title="Models")


@router.get("/models/{name}", dependencies=[require("read", project_param())])
@pages
def model_page(request: Request, name: str, project: str = "default") -> Response:
    store = _store(request)
    project = checked_project(request)
    model = store.get_registered_model(name, project=project)
    versions = store.list_model_versions(name, project=project)
    return render(request, "model.html", model=model, versions=versions, project=project, title=name)


@router.get("/models/{name}/versions/{version}", dependencies=[require("read", project_param())])
@pages
def model_version_page(request: Request, name: str, version: int, project: str = "default") -> Response:
    store = _store(request)
    project = checked_project(request)
    found = store.get_model_version(name, version, project=project)
    run = datasets = reports = None
    if found.run_id is not None:
        try:
            run = store.get_run(found.run_id)
        except NotFoundError:
            run = None
        if run is not None:
            datasets = store.list_run_inputs(run.run_id)
            reports = [a for a in store.list_artifacts(run.run_id) if kind_of(a) in {"html", "json"}]
    return render(
        request,
        "model_version.html",
        version=found,
        project=project,
        run=run,
        datasets=datasets or [],
        reports=reports or [],
        comments=store.list_comments("model_version", f"{name}/{version}", project=project),
        comment_url=f"{PREFIX}/models/{urllib.parse.quote(name, safe='')}/versions/{version}/comments"
        + (f"?project={urllib.parse.quote(project)}" if project != "default" else ""),
        title=f"{name} v{version}",
    )


@router.post("/models/{name}/versions/{version}/comments", dependencies=[require("write", project_param())])
async def model_version_comment(
    request: Request, name: str, version: int, project: str = "default"
) -> Response:
    project = checked_project(request)  # the policy also reads a form's project field
    back = f"{PREFIX}/models/{urllib.parse.quote(name, safe='')}/versions/{version}"
    if project != "default":
        back += f"?project={urllib.parse.quote(project)}"
    return await _comment(request, "model_version", f"{name}/{version}", back, project)


# -- pipelines -------------------------------------------------------------------------------
#: what the data page lists: runs logged by keel.data (validations, drift comparisons)
DATA_KINDS = {"validation": "validation/report.html", "drift": "drift/report.html"}


@router.get("/data", dependencies=[require("read")])
@pages
def data(request: Request) -> Response:
    """Data validations and drift comparisons, newest first, with their verdicts and reports."""
    store = _store(request)
    kind = request.query_params.get("kind", "")
    dataset = request.query_params.get("dataset", "").strip()
    kinds = [kind] if kind in DATA_KINDS else list(DATA_KINDS)
    clauses = [" or ".join(f"tags.`keel.data.kind` = '{k}'" for k in kinds)]
    if dataset:
        quoted = dataset.replace("'", "")
        clauses.append(f"tags.`keel.data.dataset` = '{quoted}'")
    experiments = [
        e.experiment_id for e in store.list_experiments(project=None) if _allowed(request, e.project)
    ]
    query = " and ".join(f"({c})" for c in clauses)
    newest = ["attributes.start_time DESC"]
    found = list(store.search_runs(experiments, query, newest, max_results=200)) if experiments else []
    rows = []
    for run in found:
        run_kind = run.tags.get("keel.data.kind", "")
        metrics = {key: metric.value for key, metric in run.metrics.items()}
        if run_kind == "validation":
            passed, failed = metrics.get("checks.passed"), metrics.get("checks.failed")
            known = passed is not None and failed is not None
            summary = f"{passed:.0f} passed, {failed:.0f} failed" if known else ""
        else:
            share = metrics.get("drift/share")
            summary = f"{share:.0%} of columns drifted" if share is not None else ""
        rows.append(
            {
                "run": run,
                "kind": run_kind,
                "dataset": run.tags.get("keel.data.dataset", ""),
                "status": run.tags.get("keel.data.status", run.status.value),
                "summary": summary,
                "report": DATA_KINDS.get(run_kind),
            }
        )
    return render(request, "data.html", rows=rows, kind=kind, dataset=dataset, title="Data")


@router.get("/pipelines", dependencies=[require("read")])
@pages
def pipelines(request: Request) -> Response:
    name = request.query_params.get("pipeline") or None
    projects = request.app.state.projects
    found = [
        p
        for p in _store(request).list_pipeline_runs(name, max_results=200)
        if _allowed(request, projects.of_run(p.run_id))
    ]
    return render(request, "pipelines.html", pipeline_runs=found, pipeline=name or "", title="Pipelines")


@router.get("/pipelines/{pipeline_run_id}", dependencies=[require("read")])
@pages
def pipeline_page(request: Request, pipeline_run_id: int) -> Response:
    from keel.pipelines.tracking import stored_graph

    try:  # one answer for a pipeline run of another project and one that does not exist
        record = _store(request).get_pipeline_run(pipeline_run_id)
        _check_runs(request, [record.run_id])
    except NotFoundError:
        raise NotFoundError(f"no pipeline run {pipeline_run_id}; the pipelines page lists them") from None
    status = {step.node: step.status for step in record.steps}
    drawing = stored_graph(record.graph).render_svg(status)
    counts: dict[str, int] = {}
    for step in record.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    return render(
        request,
        "pipeline.html",
        record=record,
        drawing=drawing,
        counts=counts,
        title=f"pipeline {record.pipeline} #{record.pipeline_run_id}",
    )
