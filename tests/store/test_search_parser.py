"""The run-search language: filter and order-by strings parsed into trees (no database)."""

from __future__ import annotations

import pytest

from keel.errors import FilterSyntaxError, InvalidInputError
from keel.store.search import And, Comparison, Or, OrderBy, parse_filter, parse_order_by


def metric(key: str, op: str, value: object) -> Comparison:
    return Comparison("metrics", key, op, value)


def param(key: str, op: str, value: object) -> Comparison:
    return Comparison("params", key, op, value)


def attribute(key: str, op: str, value: object) -> Comparison:
    return Comparison("attributes", key, op, value)


def caret_position(error: FilterSyntaxError) -> int:
    """Where the caret under the echoed filter points, as an index into the filter text."""
    *_, echoed, caret = str(error).split("\n")
    assert echoed == f"  {error.text}"
    assert caret.strip() == "^"
    return caret.index("^") - 2


# -- accepted forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


def test_mlflow_conjunction() -> None:
    tree = parse_filter("metrics.acc > 0.9 and params.lr = '0.01' and tags.team = 'x'")
    assert tree == And(
        (
            metric("acc", ">", 0.9),
            param("lr", "=", "0.01"),
            Comparison("tags", "team", "=", "x"),
        )
    )


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    assert parse_filter(f"metrics.acc {op} 1") == metric("acc", op, 1.0)


@pytest.mark.parametrize("text", ["params.model != 'rf'", "params.model <> 'rf'", "params.model<>'rf'"])
def test_not_equal_spellings(text: str) -> None:
    assert parse_filter(text) == param("model", "!=", "rf")


@pytest.mark.parametrize(
    ("literal", "value"),
    [("1e-3", 0.001), ("-2", -2.0), ("+4", 4.0), ("0.5", 0.5), (".5", 0.5), ("3.", 3.0), ("2E+2", 200.0)],
)
def test_numbers(literal: str, value: float) -> None:
    tree = parse_filter(f"metrics.loss < {literal}")
    assert tree == metric("loss", "<", value)
    assert isinstance(tree.value, float)  # type: ignore[union-attr]


def test_negative_number_without_spaces() -> None:
    assert parse_filter("metrics.loss>-2") == metric("loss", ">", -2.0)


def test_backticked_keys() -> None:
    assert parse_filter("metrics.`val loss` < 0.2") == metric("val loss", "<", 0.2)
    assert parse_filter("params.`a.b c` = 'x'") == param("a.b c", "=", "x")
    assert parse_filter("`status` = 'FAILED'") == attribute("status", "=", "FAILED")


def test_double_quoted_keys_and_strings() -> None:
    assert parse_filter('tags."my tag" = "value"') == Comparison("tags", "my tag", "=", "value")
    assert parse_filter('params.lr = "0.01"') == param("lr", "=", "0.01")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("params.note = 'it''s'", "it's"),
        ('params.note = "say ""hi"""', 'say "hi"'),
        ("params.note = 'say \"hi\"'", 'say "hi"'),
        ("params.note = ''", ""),
        ("params.note = 'a and b or c'", "a and b or c"),
        ("params.note = '(x)'", "(x)"),
    ],
)
def test_string_values(text: str, value: str) -> None:
    assert parse_filter(text) == param("note", "=", value)


def test_in_list() -> None:
    tree = parse_filter("attributes.status IN ('FINISHED','FAILED')")
    assert tree == attribute("status", "IN", ("FINISHED", "FAILED"))


def test_in_list_of_one_and_numbers() -> None:
    assert parse_filter("params.model in ('rf')") == param("model", "IN", ("rf",))
    assert parse_filter("metrics.epoch IN (1, 2, 3)") == metric("epoch", "IN", (1.0, 2.0, 3.0))


def test_not_in() -> None:
    tree = parse_filter("tags.team NOT IN ('a', 'b')")
    assert tree == Comparison("tags", "team", "NOT IN", ("a", "b"))
    assert parse_filter("tags.team not in ('a')") == Comparison("tags", "team", "NOT IN", ("a",))


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("metrics.acc IS NULL", "IS NULL"),
        ("metrics.acc is null", "IS NULL"),
        ("params.lr IS NOT NULL", "IS NOT NULL"),
        ("params.lr Is Not Null", "IS NOT NULL"),
    ],
)
def test_null_checks(text: str, op: str) -> None:
    tree = parse_filter(text)
    assert isinstance(tree, Comparison)
    assert (tree.op, tree.value) == (op, None)


@pytest.mark.parametrize(
    ("word", "op"), [("LIKE", "LIKE"), ("like", "LIKE"), ("ILIKE", "ILIKE"), ("iLike", "ILIKE")]
)
def test_like(word: str, op: str) -> None:
    assert parse_filter(f"run_name {word} 'sweep-%'") == attribute("run_name", op, "sweep-%")
    assert parse_filter(f"params.model {word} '%rf%'") == param("model", op, "%rf%")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.val.loss < 1", "val.loss"),
        ("metrics.train/loss < 1", "train/loss"),
        ("metrics.f1-score > 0", "f1-score"),
        ("metrics.eval/f1-macro.best > 0", "eval/f1-macro.best"),
        ("metrics.stage:1 > 0", "stage:1"),
    ],
)
def test_key_spellings(text: str, key: str) -> None:
    tree = parse_filter(text)
    assert isinstance(tree, Comparison)
    assert (tree.entity, tree.key) == ("metrics", key)


def test_dotted_tag_key() -> None:
    assert parse_filter("tags.mlflow.runName = 'x'") == Comparison("tags", "mlflow.runName", "=", "x")


@pytest.mark.parametrize("key", ["layer.0.loss", "epoch.10"])
def test_dotted_keys_with_numeric_segments(key: str) -> None:
    # check_key accepts these, so they must be searchable without backticks like any dotted key
    assert parse_filter(f"metrics.{key} < 1") == metric(key, "<", 1.0)


@pytest.mark.parametrize(
    ("alias", "entity"),
    [
        ("metric", "metrics"),
        ("METRICS", "metrics"),
        ("param", "params"),
        ("Params", "params"),
        ("parameter", "params"),
        ("tag", "tags"),
        ("TAGS", "tags"),
    ],
)
def test_entity_aliases(alias: str, entity: str) -> None:
    value = "1" if entity == "metrics" else "'1'"
    tree = parse_filter(f"{alias}.k = {value}")
    assert isinstance(tree, Comparison)
    assert (tree.entity, tree.key) == (entity, "k")


@pytest.mark.parametrize("prefix", ["attribute.", "attributes.", "attr.", "run.", "Attributes.", ""])
def test_attribute_aliases(prefix: str) -> None:
    assert parse_filter(f"{prefix}status = 'FINISHED'") == attribute("status", "=", "FINISHED")


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("id", "run_id"), ("name", "run_name"), ("user_id", "user"), ("created", "start_time")],
)
def test_attribute_names_are_canonical(name: str, canonical: str) -> None:
    value = "1" if canonical == "start_time" else "'x'"
    tree = parse_filter(f"{name} = {value}")
    assert isinstance(tree, Comparison)
    assert tree.key == canonical


def test_numeric_attributes() -> None:
    assert parse_filter("start_time >= 1700000000000") == attribute("start_time", ">=", 1.7e12)
    assert parse_filter("attributes.cost_usd < 0.5") == attribute("cost_usd", "<", 0.5)


def test_datasets_fields() -> None:
    assert parse_filter("datasets.digest = 'abc'") == Comparison("datasets", "fingerprint", "=", "abc")
    assert parse_filter("dataset.context IN ('train')") == Comparison("datasets", "context", "IN", ("train",))


# -- and / or / parentheses -------------------------------------------------------------------------


def test_or() -> None:
    assert parse_filter("params.model = 'rf' or params.model = 'gbm'") == Or(
        (param("model", "=", "rf"), param("model", "=", "gbm"))
    )


def test_and_binds_tighter_than_or() -> None:
    a, b, c = metric("a", ">", 1.0), metric("b", ">", 2.0), metric("c", ">", 3.0)
    assert parse_filter("metrics.a > 1 or metrics.b > 2 and metrics.c > 3") == Or((a, And((b, c))))
    assert parse_filter("metrics.a > 1 and metrics.b > 2 or metrics.c > 3") == Or((And((a, b)), c))


def test_parentheses_override_precedence() -> None:
    a, b, c = metric("a", ">", 1.0), metric("b", ">", 2.0), metric("c", ">", 3.0)
    assert parse_filter("(metrics.a > 1 or metrics.b > 2) and metrics.c > 3") == And((Or((a, b)), c))
    assert parse_filter("metrics.a > 1 and (metrics.b > 2 or metrics.c > 3)") == And((a, Or((b, c))))
    assert parse_filter("((metrics.a > 1))") == a


def test_chains_are_flat() -> None:
    tree = parse_filter("metrics.a = 1 or metrics.b = 1 or metrics.c = 1 or metrics.d = 1")
    assert isinstance(tree, Or)
    assert [part.key for part in tree.parts] == ["a", "b", "c", "d"]  # type: ignore[union-attr]


def test_keywords_are_case_insensitive() -> None:
    lower = parse_filter("metrics.a > 1 and (metrics.b > 2 or status in ('X'))")
    upper = parse_filter("metrics.a > 1 AND (metrics.b > 2 OR status IN ('X'))")
    mixed = parse_filter("metrics.a > 1 aNd (metrics.b > 2 Or status In ('X'))")
    assert lower == upper == mixed
    assert isinstance(lower, And)


def test_whitespace_is_free() -> None:
    assert parse_filter("  metrics.acc>0.9\n\tAND\nparams.lr='0.01'  ") == And(
        (metric("acc", ">", 0.9), param("lr", "=", "0.01"))
    )


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        # trailing garbage
        ("metrics.acc > 0.9 foo", 18, "expected 'and', 'or' or the end"),
        ("metrics.acc > 0.9)", 17, "expected 'and', 'or' or the end"),
        # missing value
        ("metrics.acc >", 13, "a value was expected"),
        ("metrics.acc > and params.lr = '1'", 14, "expected a number or a quoted string"),
        # missing operator or key
        ("metrics.acc", 11, "operator"),
        ("metrics.acc == 1", 13, "expected a number or a quoted string"),
        ("metrics.acc > 1 and", 19, "a key such as metrics.acc was expected"),
        ("metrics. > 1", 9, "expected a key after the dot"),
        ("(metrics.acc > 1", 16, "')' was expected"),
        # unknown attribute: the caret points at the comparison
        ("metrics.a > 1 and colour = 'red'", 18, "unknown attribute 'colour'"),
        # string vs number
        ("metrics.acc > '0.9'", 0, "metrics.acc is numeric"),
        ("params.lr = 0.01", 0, "params.lr holds strings; quote the value"),
        ("tags.team IN ('a', 1)", 0, "tags.team holds strings"),
        ("start_time > '2026-01-01'", 0, "start_time is numeric"),
        ("status = 1", 0, "status holds strings"),
        ("status > 'A'", 0, "supports =, !=, LIKE, ILIKE and IN"),
        # LIKE on metrics
        ("metrics.acc LIKE '0.9%'", 0, "LIKE compares strings"),
        ("params.lr ILIKE 1", 0, "ILIKE compares strings"),
        # unterminated string: the caret points at its opening quote
        ("params.lr = 'abc", 12, "unexpected character"),
        # empty IN list
        ("status IN ()", 11, "expected a number or a quoted string"),
        ("status IN 'a'", 10, "IN takes a parenthesised list"),
        ("status IN ('a' 'b')", 15, "expected ',' or ')'"),
        # bad characters and keywords
        ("metrics.acc > 1 && metrics.b > 2", 16, "unexpected character '&'"),
        ("metrics.acc IS 1", 15, "expected NULL"),
        ("NOT metrics.acc > 1", 4, "operator"),
        ("datasets.size = 'x'", 0, "datasets.name, datasets.digest or datasets.context"),
    ],
)
def test_errors_point_at_the_problem(text: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    error = caught.value
    assert message in str(error)
    assert error.text == text
    assert error.position == position
    assert caret_position(error) == position


def test_unknown_attribute_lists_the_known_ones() -> None:
    with pytest.raises(FilterSyntaxError, match=r"known: cost_usd, end_time, .*status, user") as caught:
        parse_filter("colour = 'red'")
    assert "metrics., params., tags., datasets." in str(caught.value)


def test_filter_syntax_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        parse_filter("metrics.acc >")


# -- order by ---------------------------------------------------------------------------------


def test_order_by_forms() -> None:
    assert parse_order_by(["metrics.acc DESC", "start_time", "params.lr ASC", "tags.t desc"]) == [
        OrderBy("metrics", "acc", ascending=False),
        OrderBy("attributes", "start_time", ascending=True),
        OrderBy("params", "lr", ascending=True),
        OrderBy("tags", "t", ascending=False),
    ]


def test_order_by_aliases_and_quoted_keys() -> None:
    assert parse_order_by(("created desc", "metric.`val loss`", "attributes.name")) == [
        OrderBy("attributes", "start_time", ascending=False),
        OrderBy("metrics", "val loss", ascending=True),
        OrderBy("attributes", "run_name", ascending=True),
    ]


@pytest.mark.parametrize("clauses", [None, [], ()])
def test_order_by_nothing(clauses: list[str] | None) -> None:
    assert parse_order_by(clauses) == []


@pytest.mark.parametrize(
    ("clause", "position"),
    [("metrics.acc DOWN", 12), ("metrics.acc DESC ASC", 17), ("start_time, end_time", 10)],
)
def test_order_by_bad_direction(clause: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError, match="a key and an optional ASC or DESC") as caught:
        parse_order_by([clause])
    assert caret_position(caught.value) == position


@pytest.mark.parametrize("clause", ["datasets.name", "dataset.digest DESC"])
def test_order_by_datasets_is_refused(clause: str) -> None:
    with pytest.raises(FilterSyntaxError, match="cannot order by datasets"):
        parse_order_by([clause])


def test_order_by_unknown_attribute() -> None:
    with pytest.raises(FilterSyntaxError, match=r"unknown attribute 'colour'; known: .*start_time"):
        parse_order_by(["colour"])


def test_order_by_empty_clause() -> None:
    with pytest.raises(FilterSyntaxError, match="a key such as metrics.acc was expected"):
        parse_order_by([""])


# -- limits -----------------------------------------------------------------------------------


def test_term_limit() -> None:
    from keel.errors import LimitExceededError
    from keel.limits import MAX_FILTER_TERMS

    at_limit = " or ".join(f"params.p = '{i}'" for i in range(MAX_FILTER_TERMS))
    assert isinstance(parse_filter(at_limit), Or)
    with pytest.raises(LimitExceededError, match="MAX_FILTER_TERMS") as caught:
        parse_filter(" or ".join(f"params.p = '{i}'" for i in range(5_000)))
    assert caught.value.limit == MAX_FILTER_TERMS


def test_depth_limit_is_an_error_not_a_recursion_error() -> None:
    from keel.errors import LimitExceededError
    from keel.limits import MAX_FILTER_DEPTH

    nested = "(" * MAX_FILTER_DEPTH + "metrics.a > 1" + ")" * MAX_FILTER_DEPTH
    assert parse_filter(nested) == metric("a", ">", 1.0)
    with pytest.raises(LimitExceededError, match="MAX_FILTER_DEPTH"):
        parse_filter("(" * 500 + "metrics.a > 1" + ")" * 500)


def test_in_list_values_limit() -> None:
    from keel.errors import LimitExceededError
    from keel.limits import MAX_FILTER_VALUES

    values = ", ".join(f"'{i}'" for i in range(MAX_FILTER_VALUES + 1))
    with pytest.raises(LimitExceededError, match="MAX_FILTER_VALUES"):
        parse_filter(f"tags.t IN ({values})")


def test_filter_length_limit() -> None:
    from keel.errors import LimitExceededError
    from keel.limits import MAX_FILTER_LENGTH

    with pytest.raises(LimitExceededError, match="MAX_FILTER_LENGTH"):
        parse_filter("metrics.a > 1" + " " * MAX_FILTER_LENGTH)


def test_like_pattern_ending_in_the_escape_points_at_the_pattern() -> None:
    text = "tags.a ILIKE '%\\'"
    with pytest.raises(FilterSyntaxError, match="ends with the escape character") as caught:
        parse_filter(text)
    assert caught.value.position == text.index("'")


# -- MLflow's dialect -------------------------------------------------------------------------


def test_mlflow_dialect_names_its_attributes_and_tags() -> None:
    from keel.store.search import Dialect

    dialect = Dialect.mlflow(["name", "creation_time"])
    assert parse_filter("name LIKE 'iris%' AND tags.team = 'v'", dialect) == And(
        (attribute("name", "LIKE", "iris%"), Comparison("tags", "team", "=", "v"))
    )
    assert parse_filter("creation_time > 5", dialect) == attribute("creation_time", ">", 5.0)
    with pytest.raises(FilterSyntaxError, match="filter on name, creation_time or tags.KEY"):
        parse_filter("status = 'x'", dialect)
    with pytest.raises(FilterSyntaxError, match="use attributes., tags."):
        parse_filter("metrics.a > 1", dialect)
    with pytest.raises(FilterSyntaxError, match="expected 'and' or the end"):
        parse_filter("name = 'a' OR name = 'b'", dialect)
