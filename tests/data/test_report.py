from __future__ import annotations

import time
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest

from keel.data.engine import validate
from keel.data.report import render_html, write_html


def _frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(rows)
    data: dict[str, object] = {f"n{i}": rng.normal(i, 1 + i, rows) for i in range(8)}
    data["s0"] = rng.choice(["a", "b", "c"], rows)
    data["s1"] = [f"text-{i % 1000}" * 3 for i in range(rows)]
    data["i0"] = np.arange(rows)
    data["b0"] = rng.random(rows) < 0.5
    return pl.DataFrame(data)


SUITE = {
    "keel_suite": 1,
    "id_columns": ["i0"],
    "checks": [
        *({"between": {"column": f"n{i}", "min": -2, "max": 2}} for i in range(8)),
        {"in_set": {"column": "s0", "values": ["a", "b"]}},
        {"length_between": {"column": "s1", "max": 20}},
        {"unique": {"column": "i0"}},
        {"not_null": {"column": "b0"}},
    ],
}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_report_is_self_contained_and_small_whatever_the_row_count() -> None:
    sizes = []
    for rows in (2_000, 200_000):
        result = validate(_frame(rows), SUITE, histograms=True)
        html = render_html(result)
        sizes.append(len(html.encode()))
        parser = _Checker()
        parser.feed(html)
        assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
        assert parser.tags.count("svg") == 9  # one histogram per numeric column (n0..n7, i0)
        assert "http://" not in html and "https://" not in html
        assert html.count("<details>") == sum(1 for r in result.results if r.samples)
    assert max(sizes) <= 500_000
    assert abs(sizes[0] - sizes[1]) < 0.2 * sizes[0]  # the size follows checks and columns, not rows


def test_names_and_values_are_escaped(tmp_path: object) -> None:
    evil = "<script>alert(1)</script>"
    frame = pl.DataFrame({evil: ["ok", f"{evil}&"], "id": [1, 2]})
    result = validate(
        frame,
        {
            "keel_suite": 1,
            "name": evil,
            "id_columns": ["id"],
            "checks": [{"in_set": {"column": evil, "values": ["ok"], "name": f"check {evil}"}}],
        },
    )
    html = render_html(result)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in html


def test_long_sample_values_are_cut_visibly() -> None:
    frame = pl.DataFrame({"s": ["x" * 5000], "id": [1]})
    result = validate(frame, {"keel_suite": 1, "checks": [{"length_between": {"column": "s", "max": 3}}]})
    html = render_html(result)
    assert "…(5,000 chars)" in html
    assert "x" * 201 not in html


@pytest.mark.slow
def test_five_thousand_checks_stay_fast(tmp_path: object) -> None:
    frame = _frame(20_000)
    numeric = [f"n{i}" for i in range(8)]
    checks = []
    for k in range(5_000):
        kind = ("between", "mean_between", "not_null", "max_between")[k % 4]
        body: dict[str, object] = {"column": numeric[k % 8], "name": f"check {k}"}
        if kind != "not_null":
            body["min"] = -5 - k / 1000
        checks.append({kind: body})
    started = time.perf_counter()
    result = validate(frame, {"keel_suite": 1, "checks": checks}, histograms=True)
    validated = time.perf_counter() - started
    started = time.perf_counter()
    path = write_html(result, tmp_path / "r.html")  # type: ignore[operator]
    rendered = time.perf_counter() - started
    assert len(result.results) == 5_000
    assert validated < 10 and rendered < 2, (validated, rendered)
    assert path.read_text().count("<tr class=") == 5_000


def test_histograms_skip_nan_and_infinities():
    import math

    import polars as pl

    from keel.data import validate

    frame = pl.DataFrame({"x": [1.0, 2.0, float("nan"), float("inf"), -float("inf"), 3.0]})
    result = validate(frame, {"keel_suite": 1, "checks": [{"not_null": {"column": "x"}}]}, histograms=True)
    histogram = result.histograms["x"]
    assert sum(histogram["counts"]) == 3  # only the finite values have a bucket
    assert all(math.isfinite(edge) for edge in histogram["edges"])
