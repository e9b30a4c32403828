"""Click through every page in Chromium (Playwright): content, charts drawn, htmx swaps, comments,
sandboxed reports, hostile names inert, themes and keyboard use. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import XSS, screenshot

pytestmark = pytest.mark.browser


def _no_dialogs(page: Any) -> list[str]:
    seen: list[str] = []

    def record(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen


def test_experiments_runs_table_filter_sort_and_columns(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    dialogs = _no_dialogs(page)
    page.goto(url + "/ui/")
    assert page.locator("h1").inner_text() == "Experiments"
    assert page.get_by_role("link", name="mnist").is_visible()
    assert page.get_by_role("link", name=f"exp {XSS}").is_visible()  # shown as text
    screenshot(page, "01-experiments")
    page.get_by_role("link", name="mnist").click()
    page.wait_for_selector("table.runs")
    assert page.locator("table.runs tbody tr").count() >= 5
    screenshot(page, "02-runs")
    # filter through htmx: the table is swapped in place and the URL records the filter
    page.get_by_label("Filter").fill("params.model = 'gbm'")
    page.get_by_role("button", name="Apply filter").click()
    page.wait_for_url("**filter=params.model*")
    names = page.locator("table.runs tbody td a").all_inner_texts()
    assert sorted(names) == ["run-1", "run-2"]
    # a bad filter: the error shows next to the box
    page.get_by_label("Filter").fill("metrics.acc >")
    page.get_by_role("button", name="Apply filter").click()
    page.wait_for_selector("#filter-error")
    assert "acc" in page.locator("#filter-error").inner_text() or page.locator("#filter-error").inner_text()
    screenshot(page, "03-runs-filter-error")
    page.get_by_label("Filter").fill("")
    page.get_by_role("button", name="Apply filter").click()
    page.wait_for_selector("table.runs tbody tr >> nth=4")
    # sort by a metric by clicking its header
    page.locator("table.runs thead a", has_text="acc").click()
    page.wait_for_url("**order=-metrics.acc*")
    first = page.locator("table.runs tbody tr").first.locator("td a").first.inner_text()
    assert first == "run-2"
    # column chooser
    page.locator("details.chooser summary").click()
    page.get_by_label("user", exact=True).check()
    page.get_by_role("button", name="Show columns").click()
    page.wait_for_url("**col=user*")
    assert page.locator("table.runs thead th", has_text="user").count() == 1
    screenshot(page, "04-runs-sorted-columns")
    assert dialogs == []
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_run_page_charts_artifacts_lineage_comments(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    dialogs = _no_dialogs(page)
    run = ids["runs"][0]
    page.goto(f"{url}/ui/runs/{run}")
    page.wait_for_selector("body[data-charts-ready]")
    assert page.locator("figure.chart canvas").count() >= 4  # loss, acc, odd, system/cpu_percent
    assert "200 points drawn" in page.locator("figure.chart", has_text="loss").inner_text()
    assert (
        "2 NaN or infinite values shown as gaps" in page.locator("figure.chart", has_text="odd").inner_text()
    )
    screenshot(page, "05-run")
    # chart settings live in the URL and redraw without a reload
    page.get_by_label("Log scale").check()
    page.wait_for_selector("body[data-charts-ready]")
    assert "log=1" in page.url
    page.get_by_label("X axis").select_option("relative")
    page.wait_for_selector("body[data-charts-ready]")
    assert "axis=relative" in page.url
    page.reload()
    page.wait_for_selector("body[data-charts-ready]")
    assert page.get_by_label("Log scale").is_checked()
    # comments through htmx, escaped
    page.get_by_label("Add a comment").fill(f"nice {XSS}")
    page.get_by_role("button", name="Comment").click()
    page.wait_for_selector("#comments-title:has-text('Comments (1)')")
    assert XSS in page.locator(".comment-body").first.inner_text()
    # lineage links
    assert page.get_by_role("link", name="digits").is_visible()
    page.get_by_role("link", name="classifier v1").click()
    page.wait_for_selector("h1:has-text('classifier v1')")
    assert "@champion" in page.locator("h1").inner_text()
    assert page.get_by_role("link", name="digits").is_visible()
    screenshot(page, "06-model-version")
    assert dialogs == []
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_artifact_previews_and_the_report_sandbox(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    dialogs = _no_dialogs(page)
    run = ids["runs"][0]
    page.goto(f"{url}/ui/runs/{run}")
    page.get_by_role("link", name="reports/validation.html").first.click()
    frame_element = page.wait_for_selector("iframe.report")
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.content_frame()
    frame.wait_for_selector("h1")
    assert frame.locator("h1").inner_text() == "Validation report"
    # the report's script did not run (it would have changed the title)
    assert frame.evaluate("document.title") != "pwned"
    screenshot(page, "07-artifact-html-report")
    page.goto(f"{url}/ui/runs/{run}/artifacts/plots/confusion.png")
    image = page.locator("img.preview-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2
    page.goto(f"{url}/ui/runs/{run}/artifacts/table.csv")
    assert page.locator("table tbody tr").count() == 2
    assert XSS in page.locator("table tbody").inner_text()
    screenshot(page, "08-artifact-csv")
    page.goto(f"{url}/ui/runs/{run}/artifacts/metrics.json")
    assert '"accuracy": 0.93' in page.locator("pre").inner_text()
    assert dialogs == []


def test_compare_overlays_diff_parallel_coordinates_and_scatter(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    page.goto(f"{url}/ui/experiments/{ids['experiment_id']}?filter=params.model+%21%3D+%27%27")
    for run in ids["runs"]:
        page.locator(f"input[name=runs][value='{run}']").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_selector("h1:has-text('Compare 3 runs')")
    page.wait_for_selector("body[data-charts-ready]")
    assert page.locator("figure.chart canvas").count() >= 2
    assert "3 runs" in page.locator("figure.chart", has_text="loss").inner_text()
    differing = page.locator("table.diff tr.differs th").all_inner_texts()
    assert "params.lr" in differing and "params.model" in differing
    assert page.locator("svg[aria-label^='parallel coordinates'] polyline").count() == 3
    page.get_by_label("Param", exact=True).select_option("lr")
    page.get_by_role("button", name="Plot").click()
    page.wait_for_url("**x=lr*")
    assert page.locator("svg[aria-label='acc against lr'] circle").count() == 3
    screenshot(page, "09-compare")
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_registry_and_pipelines(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    page.goto(url + "/ui/")
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("link", name="classifier").click()
    page.wait_for_selector("h1:has-text('classifier')")
    assert "@champion" in page.locator("table").inner_text()
    screenshot(page, "10-model")
    page.get_by_role("link", name="v1").click()
    assert page.locator(".comment-body").first.inner_text() == f"ready {XSS}"
    page.get_by_role("link", name="Pipelines", exact=True).click()
    screenshot(page, "11-pipelines")
    page.get_by_role("link", name=str(ids["pipeline_run_id"]), exact=True).click()
    page.wait_for_selector(".dag svg")
    assert page.locator(".dag svg g.node.cached").count() == 1
    assert page.locator(".dag svg g.node.failed").count() == 1
    assert "cache hit" in page.locator("table").first.inner_text()
    screenshot(page, "12-pipeline")


def test_dark_theme_and_keyboard(demo: Any, page: Any) -> None:
    url, ids, _ = demo
    page.goto(f"{url}/ui/runs/{ids['failed']}")
    page.get_by_label("Theme").select_option("dark")
    page.wait_for_selector("html[data-theme=dark]")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    assert "Traceback" in page.locator("pre.traceback").inner_text()
    screenshot(page, "13-failed-run-dark")
    # the first Tab reaches the skip link, which moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # every form control has an accessible name
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
               .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
               .map(el => el.name)"""
    )
    assert unnamed == []
    page.goto(f"{url}/ui/runs/{ids['hostile']}")
    screenshot(page, "14-hostile-run-dark")


CONTRAST = """() => {
  const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = rgb(c).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const bg = getComputedStyle(document.body).backgroundColor;
  const out = {};
  for (const sel of ['body', '.meta', 'a', '.empty', '.status-finished', '.status-failed']) {
    const el = document.querySelector(sel);
    if (el) out[sel] = ratio(getComputedStyle(el).color, bg);
  }
  return out;
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_is_readable_in_both_themes(demo: Any, page: Any, theme: str) -> None:
    url, ids, _ = demo
    page.context.add_cookies([{"name": "keel_theme", "value": theme, "url": url}])
    page.goto(f"{url}/ui/experiments/{ids['experiment_id']}")
    ratios = page.evaluate(CONTRAST)
    assert {"body", ".meta", "a", ".status-finished", ".status-failed"} <= set(ratios)
    low = {selector: round(r, 2) for selector, r in ratios.items() if r < 4.5}
    assert low == {}, f"text below the WCAG AA contrast of 4.5:1 in the {theme} theme: {low}"


def test_an_mlflow_run_link_opens_the_run_page(demo: Any, page: Any) -> None:
    """MLflow's client prints `View run at <tracking URI>/#/experiments/<id>/runs/<run id>`."""
    url, ids, client = demo
    run = ids["runs"][1]
    experiment = client.get_run(run).experiment_id
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run}")
    page.wait_for_url(f"{url}/ui/runs/{run}")
    assert run[:8] in page.locator("h1").inner_text() or "run-1" in page.locator("h1").inner_text()
    page.goto(f"{url}/#/experiments/{experiment}")
    page.wait_for_url(f"{url}/ui/experiments/{experiment}")
    page.goto(f"{url}/")  # no fragment: the experiments page stays
    page.wait_for_url(f"{url}/ui/")
    assert page.locator("h1").inner_text() == "Experiments"
    assert page.console_errors == []
