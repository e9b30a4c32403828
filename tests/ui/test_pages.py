"""The UI over real HTTP (uvicorn on 127.0.0.1) against a real SQLite store: content, escaping,
security headers, errors shown on the page, and comments."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import XSS

STATIC = Path(__file__).resolve().parents[2] / "src" / "keel" / "server" / "ui" / "static"


def get(demo: Any, path: str, **kwargs: Any) -> httpx.Response:
    url, _, _ = demo
    return httpx.get(url + path, timeout=30, **kwargs)


def test_every_page_renders_with_a_csp_and_no_inline_script(demo: Any) -> None:
    _, ids, _ = demo
    run = ids["runs"][0]
    paths = [
        "/ui/",
        f"/ui/experiments/{ids['experiment_id']}",
        f"/ui/runs/{run}",
        f"/ui/runs/{run}/artifacts/metrics.json",
        f"/ui/compare?runs={ids['runs'][0]}&runs={ids['runs'][1]}",
        "/ui/models",
        "/ui/models/classifier",
        "/ui/models/classifier/versions/1",
        "/ui/pipelines",
        f"/ui/pipelines/{ids['pipeline_run_id']}",
        "/ui/datasets/digits",
        "/ui/data",
    ]
    for path in paths:
        response = get(demo, path)
        assert response.status_code == 200, (path, response.text[:500])
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert response.headers["x-content-type-options"] == "nosniff"
        # every <script> has a src: nothing inline for the CSP to block
        for tag in re.findall(r"<script[^>]*>", response.text):
            assert "src=" in tag, (path, tag)
        assert " style=" not in response.text, path


def test_hostile_names_params_tags_and_comments_render_inert(demo: Any) -> None:
    _, ids, _ = demo
    for path in [
        "/ui/",
        f"/ui/experiments/{ids['hostile_experiment_id']}?col=params.p&col=name&col=tags",
        f"/ui/runs/{ids['hostile']}",
        f"/ui/runs/{ids['failed']}",
        "/ui/models/classifier/versions/1",
        f"/ui/runs/{ids['runs'][0]}/artifacts/metrics.json",
        f"/ui/runs/{ids['runs'][0]}/artifacts/table.csv",
    ]:
        text = get(demo, path).text
        assert XSS not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path


def test_experiments_and_runs_table(demo: Any) -> None:
    _, ids, _ = demo
    home = get(demo, "/ui/").text
    assert "mnist" in home and f'href="/ui/experiments/{ids["experiment_id"]}"' in home
    page = get(demo, f"/ui/experiments/{ids['experiment_id']}").text
    for name in ("run-0", "run-1", "run-2", "broken", "pipeline-train"):
        assert name in page
    assert "status-failed" in page and "1 min 5 s" in page and "$0.012" in page
    assert "team=vision" in page and "keel.internal" not in page  # keel's own tags hidden in the table
    # filter with the search language, sort by a metric, choose columns: all in the URL
    page = get(
        demo,
        f"/ui/experiments/{ids['experiment_id']}",
        params={"filter": "params.model = 'gbm'", "order": "-metrics.acc", "col": ["name", "metrics.acc"]},
    ).text
    body = page.split("<tbody>")[1]
    assert body.index("run-2") < body.index("run-1") and "run-0" not in body
    assert 'aria-sort="descending"' in page
    ascending = get(
        demo,
        f"/ui/experiments/{ids['experiment_id']}",
        params={"filter": "params.model = 'gbm'", "order": "metrics.acc"},
    ).text.split("<tbody>")[1]
    assert ascending.index("run-1") < ascending.index("run-2")


def test_a_cost_below_a_hundredth_of_a_cent_reads_as_in_the_cli(demo: Any) -> None:
    """A laptop run costs millionths of a dollar: ``$0.0000`` read as free while ``keel runs list``
    said ``$0.0000092``; the table and the run page now use the CLI's two significant digits."""
    from keel.entities import RunStatus
    from keel.tracking.cost import format_usd

    _, _, client = demo
    run = client.create_run("tiny-costs", "cheap")
    client.store.update_run(
        run.run_id, status=RunStatus.FINISHED, end_time=run.start_time + 1, cost_usd=9.2e-06
    )
    assert format_usd(9.2e-06) == "$0.0000092"
    table = get(demo, f"/ui/experiments/{run.experiment_id}").text.split("<tbody>")[1]
    page = get(demo, f"/ui/runs/{run.run_id}").text
    for html in (table, page):
        assert "$0.0000092" in html and "$0.0000<" not in html


def test_a_bad_filter_is_shown_where_it_was_typed(demo: Any) -> None:
    _, ids, _ = demo
    response = get(demo, f"/ui/experiments/{ids['experiment_id']}", params={"filter": "metrics.acc >"})
    assert response.status_code == 200
    assert 'id="filter-error"' in response.text and 'role="alert"' in response.text
    assert 'value="metrics.acc &gt;"' in response.text  # what was typed stays in the box


def test_paging_walks_every_run_once(demo: Any) -> None:
    url, ids, client = demo
    experiment = ids["experiment_id"]
    seen: list[str] = []
    link = f"/ui/experiments/{experiment}?per=25&order=name"
    # 5 runs in the experiment; pages of 25 hold them all, so use the store to add more
    from keel.entities import RunStatus

    for i in range(30):
        run = client.store.create_run(experiment, f"bulk-{i:02d}")
        client.store.update_run(run.run_id, status=RunStatus.FINISHED, end_time=run.start_time + 1)
    while link:
        page = httpx.get(url + link.replace("&amp;", "&"), timeout=30).text
        seen += re.findall(r'href="/ui/runs/([0-9a-f]{32})"', page.split("<tbody>")[1])
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        link = found.group(1) if found else ""
    assert len(seen) == len(set(seen)) == client.store.count_runs(experiment)


def test_run_page_content(demo: Any) -> None:
    _, ids, _ = demo
    run = ids["runs"][0]
    page = get(demo, f"/ui/runs/{run}").text
    for expected in (
        "Params (3)",
        "loss",
        "acc",
        "system/cpu_percent",
        "plots/confusion.png",
        "reports/validation.html",
        "digits",
        "classifier v1",
        "@champion",
        "Comments (0)",
    ):
        assert expected in page, expected
    assert f'data-src="/ui/runs/{run}/series?key=loss"' in page
    failed = get(demo, f"/ui/runs/{ids['failed']}").text
    assert "Traceback (most recent call last)" in failed and "ValueError" in failed


def test_series_json(demo: Any) -> None:
    _, ids, _ = demo
    run = ids["runs"][0]
    data = get(demo, f"/ui/runs/{run}/series", params={"key": "loss"}).json()
    assert data["points"] == 200 and data["x"][:3] == [0, 1, 2] and data["y"][0] == pytest.approx(1.0)
    odd = get(demo, f"/ui/runs/{run}/series", params={"key": "odd"}).json()
    assert odd["y"] == [1.0, None, 2.0, None, 3.0] and odd["nonfinite"] == 2
    relative = get(demo, f"/ui/runs/{run}/series", params={"key": "loss", "axis": "time"}).json()
    assert relative["x"][1] - relative["x"][0] == pytest.approx(1.0)
    bad = get(demo, f"/ui/runs/{run}/series", params={"key": "loss", "axis": "sideways"})
    assert bad.status_code == 400 and "step, time, relative" in bad.json()["error"]
    compare = get(demo, "/ui/compare/series", params={"key": "loss", "runs": ids["runs"]}).json()
    assert len(compare["y"]) == 3 and len(compare["x"]) == 200 and compare["runs"][2]["name"] == "run-2"


def test_artifact_previews_and_sandboxed_raw_files(demo: Any) -> None:
    _, ids, _ = demo
    run = ids["runs"][0]
    csv_page = get(demo, f"/ui/runs/{run}/artifacts/table.csv").text
    assert '<th scope="col">name</th>' in csv_page and "<td>alpha</td>" in csv_page
    json_page = get(demo, f"/ui/runs/{run}/artifacts/metrics.json").text
    assert "&#34;accuracy&#34;: 0.93" in json_page or "&quot;accuracy&quot;: 0.93" in json_page
    report = get(demo, f"/ui/runs/{run}/artifacts/reports/validation.html").text
    assert re.search(r"<iframe[^>]* sandbox[ >]", report)
    raw = get(demo, f"/ui/runs/{run}/raw/reports/validation.html")
    assert raw.headers["content-security-policy"].startswith("sandbox")
    assert "default-src 'none'" in raw.headers["content-security-policy"]
    assert "Validation report" in raw.text
    image = get(demo, f"/ui/runs/{run}/raw/plots/confusion.png")
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    download = get(demo, f"/ui/runs/{run}/raw/model/model.bin")
    assert download.headers["content-disposition"].startswith("attachment")
    missing = get(demo, f"/ui/runs/{run}/artifacts/nope.txt")
    assert missing.status_code == 404 and "has no artifact" in missing.text


def test_comments_by_form_and_by_htmx(demo: Any) -> None:
    url, ids, client = demo
    run = ids["runs"][1]
    posted = httpx.post(f"{url}/ui/runs/{run}/comments", data={"body": f"looks good {XSS}"}, timeout=30)
    assert posted.status_code == 303 and posted.headers["location"] == f"/ui/runs/{run}#comments"
    partial = httpx.post(
        f"{url}/ui/runs/{run}/comments", data={"body": "second"}, headers={"HX-Request": "true"}, timeout=30
    )
    assert partial.status_code == 200 and "Comments (2)" in partial.text and "<html" not in partial.text
    assert XSS not in partial.text
    assert [c.body for c in client.store.list_comments("run", run)] == [f"looks good {XSS}", "second"]
    empty = httpx.post(f"{url}/ui/runs/{run}/comments", data={"body": "  "}, timeout=30)
    assert empty.status_code == 400 and "needs some text" in empty.text
    version = httpx.post(
        f"{url}/ui/models/classifier/versions/1/comments", data={"body": "ship it"}, timeout=30
    )
    assert version.status_code == 303
    assert "ship it" in get(demo, "/ui/models/classifier/versions/1").text


def test_cross_site_changes_and_foreign_hosts_are_refused(demo: Any) -> None:
    url, ids, client = demo
    run = ids["runs"][2]
    evil = httpx.post(
        f"{url}/ui/runs/{run}/comments",
        data={"body": "x"},
        headers={"Origin": "https://evil.example"},
        timeout=30,
    )
    assert evil.status_code == 403
    assert client.store.list_comments("run", run) == []
    rebound = httpx.get(f"{url}/ui/", headers={"Host": "attacker.example"}, timeout=30)
    assert rebound.status_code == 421 and "--host" in rebound.text


def test_errors_are_pages_with_what_to_do(demo: Any) -> None:
    missing = get(demo, "/ui/runs/" + "0" * 32)
    assert missing.status_code == 404 and "Not found" in missing.text
    too_many = get(demo, "/ui/compare", params={"runs": [f"{i:032x}" for i in range(101)]})
    assert too_many.status_code in (400, 404)
    bad_page_size = get(demo, "/ui/experiments/1", params={"per": "7"})
    assert bad_page_size.status_code == 400 and "per_page must be one of" in bad_page_size.text
    bad_column = get(demo, "/ui/experiments/1", params={"col": "bogus"})
    assert bad_column.status_code == 400 and "params.KEY or metrics.KEY" in bad_column.text


def test_theme_cookie_and_no_open_redirect(demo: Any) -> None:
    url, _, _ = demo
    response = httpx.get(f"{url}/ui/theme", params={"set": "dark", "next": "/ui/models"}, timeout=30)
    assert response.status_code == 303 and response.headers["location"] == "/ui/models"
    assert "keel_theme=dark" in response.headers["set-cookie"]
    themed = httpx.get(f"{url}/ui/models", cookies={"keel_theme": "dark"}, timeout=30).text
    assert 'data-theme="dark"' in themed
    away = httpx.get(f"{url}/ui/theme", params={"set": "dark", "next": "https://evil.example/"}, timeout=30)
    assert away.headers["location"] == "/ui/"


def test_pipeline_page_draws_the_dag_with_status_and_cache_hits(demo: Any) -> None:
    _, ids, _ = demo
    page = get(demo, f"/ui/pipelines/{ids['pipeline_run_id']}").text
    assert "<svg" in page and 'class="node cached"' in page and 'class="node failed"' in page
    assert "cache hit" in page and "RuntimeError: diverged" in page
    listing = get(demo, "/ui/pipelines").text
    assert f'href="/ui/pipelines/{ids["pipeline_run_id"]}"' in listing


def test_pipeline_page_rounds_step_timings(demo: Any) -> None:
    """Step timings to the millisecond and memory to the megabyte, as ``keel pipeline show`` prints."""
    from keel.entities import StepRun

    _, _, client = demo
    parent = client.create_run("pipelines", "noisy")
    graph = {"name": "noisy", "nodes": [{"id": "load", "step": "load", "upstream": []}]}
    pipeline_run_id = client.store.create_pipeline_run(parent.run_id, "noisy", params={}, graph=graph)
    step = StepRun(
        "load", "load", "done", cache_key="k", wall_s=0.164291, cpu_s=0.0741861, peak_rss_mb=261.898
    )
    client.store.record_step_runs(pipeline_run_id, [step])
    page = get(demo, f"/ui/pipelines/{pipeline_run_id}").text
    assert ">0.164<" in page and ">0.074<" in page and ">262<" in page
    assert "0.164291" not in page and "0.0741861" not in page and "261.898" not in page


def test_vendored_files_match_the_readme_and_core_js_is_small() -> None:
    readme = (STATIC / "README.md").read_text()
    for name, digest in re.findall(r"\| `(vendor/[^`]+)` \|[^\n]*\| ([0-9a-f]{64}) \|", readme):
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    core = ["vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "keel.js"]
    gzipped = sum(len(gzip.compress((STATIC / f).read_bytes(), 9)) for f in core)
    assert gzipped <= 100 * 1024, gzipped


def test_static_files_are_served_from_an_allow_list(demo: Any) -> None:
    ok = get(demo, "/ui/static/keel.js")
    assert ok.status_code == 200 and "javascript" in ok.headers["content-type"]
    assert get(demo, "/ui/static/../routes.py").status_code == 404
    assert get(demo, "/ui/static/README.md").status_code == 404


def test_data_page_lists_validations_and_drift_with_their_reports(demo: Any) -> None:
    _, ids, _ = demo
    page = get(demo, "/ui/data").text
    assert ids["validation"][:12] in page and ids["drift"][:12] in page
    assert "0 passed, 1 failed" in page and "failed" in page
    assert "of columns drifted" in page
    assert XSS not in page and "orders &lt;script&gt;" in page
    only_drift = get(demo, "/ui/data?kind=drift").text
    assert ids["drift"][:12] in only_drift and ids["validation"][:12] not in only_drift
    for run, name in ((ids["validation"], "validation/report.html"), (ids["drift"], "drift/report.html")):
        assert f"/ui/runs/{run}/artifacts/{name}" in page
        report = get(demo, f"/ui/runs/{run}/artifacts/{name}")
        assert report.status_code == 200 and "sandbox" in report.text


def test_dataset_links_lead_to_the_dataset_when_its_name_has_a_slash(demo: Any) -> None:
    """The quickstart's own data set is `sklearn/breast_cancer`: its link must not 404."""
    import html

    import pandas as pd

    _, ids, client = demo
    run = ids["runs"][2]
    client.log_input(run, pd.DataFrame({"y": [1, 2]}), name="sklearn/breast_cancer")
    page = get(demo, f"/ui/runs/{run}").text
    href = re.search(r'href="(/ui/datasets/[^"]*breast_cancer)"', page)
    assert href is not None
    assert html.unescape(href.group(1)) == "/ui/datasets/sklearn/breast_cancer"
    for path in (href.group(1), "/ui/datasets/sklearn%2Fbreast_cancer"):  # readable and encoded links
        response = get(demo, path)
        assert response.status_code == 200, (path, response.text[:300])
        assert "Dataset sklearn/breast_cancer" in response.text and run[:12] in response.text


def test_the_root_redirects_to_the_ui_keeping_mlflow_run_links(demo: Any) -> None:
    response = get(demo, "/")
    assert response.status_code == 307 and response.headers["location"] == "/ui/"
    # the fragment of an MLflow run link stays in the browser across this redirect; keel.js, loaded by
    # every page, turns it into the run page (tests/ui/test_browser.py follows one in Chromium)
    script = get(demo, "/ui/static/keel.js").text
    assert "#\\/experiments\\/" in script and '"/ui/runs/"' in script
