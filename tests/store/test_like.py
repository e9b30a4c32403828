"""LIKE patterns: one meaning in Python, SQLite and PostgreSQL, and no backtracking."""

from __future__ import annotations

import random
import time

import pytest
import sqlalchemy as sa

from keel.errors import LimitExceededError
from keel.limits import MAX_LIKE_PATTERN_LENGTH
from keel.store.engine import create_engine
from keel.store.like import LikePatternError, like_match, parse_like
from keel.store.sql_search import like_clause


def reference(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """LIKE by dynamic programming over (pattern position, text position): obviously right, slow."""
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    tokens: list[tuple[str, str]] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\":
            tokens.append(("literal", pattern[index + 1]))
            index += 2
            continue
        kind = {"%": "any", "_": "one"}.get(pattern[index], "literal")
        tokens.append((kind, pattern[index]))
        index += 1
    reachable = [True] + [False] * len(text)  # reachable[j]: the tokens so far can match text[:j]
    for kind, char in tokens:
        if kind == "any":
            seen = False
            reachable = [seen := seen or r for r in reachable]
        else:
            reachable = [False] + [
                reachable[j] and (kind == "one" or text[j] == char) for j in range(len(text))
            ]
    return reachable[-1]


def random_cases(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        pattern = "".join(rng.choice("aAb%_\\*?[") for _ in range(rng.randint(0, 9)))
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            pattern += rng.choice("a%_")  # a lone trailing escape is refused; tested below
        text = "".join(rng.choice("aAb%_\\*?[") for _ in range(rng.randint(0, 10)))
        cases.append((pattern, text))
    return cases


@pytest.mark.parametrize("ignore_case", [False, True])
def test_matches_like_the_reference(ignore_case: bool) -> None:
    for pattern, text in random_cases(11, 20_000):
        expected = reference(pattern, text, ignore_case)
        assert like_match(parse_like(pattern), text, ignore_case=ignore_case) == expected, (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("%_" * 10 + "x", "a" * 100_000, False),  # hung a worker for minutes as a regular expression
        ("%_" * 10, "a" * 100_000, True),
        ("%" + "%_" * 450 + "%x%", "a" * 65_536, False),
        ("%" + "a_" * 450 + "b%", "a" * 65_536, False),  # a long segment holding '_'
        ("%" + "a_" * 450 + "%", "a" * 65_536, True),
        ("%" + "%".join(["a_a_b"] * 160) + "%", "a" * 65_536, False),
    ],
)
def test_pathological_patterns_finish_quickly(pattern: str, text: str, expected: bool) -> None:
    compiled = parse_like(pattern)
    started = time.perf_counter()
    assert like_match(compiled, text) is expected
    assert like_match(compiled, text.upper(), ignore_case=True) is expected
    assert time.perf_counter() - started < 2.0


def test_escapes_make_wildcards_literal() -> None:
    assert like_match(parse_like("100\\%"), "100%")
    assert not like_match(parse_like("100\\%"), "1000")
    assert like_match(parse_like("a\\_b"), "a_b")
    assert not like_match(parse_like("a\\_b"), "axb")
    assert like_match(parse_like("C:\\\\%"), "C:\\temp")


def test_a_trailing_escape_is_refused() -> None:
    with pytest.raises(LikePatternError, match="ends with the escape character"):
        parse_like("%\\")


def test_pattern_length_limit() -> None:
    parse_like("%" * MAX_LIKE_PATTERN_LENGTH)
    with pytest.raises(LimitExceededError, match="MAX_LIKE_PATTERN_LENGTH") as caught:
        parse_like("%" * (MAX_LIKE_PATTERN_LENGTH + 1))
    assert caught.value.limit == MAX_LIKE_PATTERN_LENGTH


def test_sql_agrees_with_python(store_url: str) -> None:
    """The same patterns in SQLite and PostgreSQL select what the Python matcher matches: case
    matters for LIKE (SQLite's own LIKE ignores it), and the backslash escapes in both."""
    engine = create_engine(store_url)
    table = sa.Table("like_cases", sa.MetaData(), sa.Column("value", sa.String(64)))
    cases = random_cases(12, 300)
    texts = sorted({text for _, text in cases} | {"Ab", "ab", "AB", "a%b", "a_b"})
    with engine.begin() as c:
        table.create(c)
        c.execute(sa.insert(table), [{"value": text} for text in texts])
    patterns = sorted({pattern for pattern, _ in cases} | {"a%", "A%", "a\\%b", "a\\_b", "[ab]%"})
    with engine.connect() as c:
        for pattern in patterns:
            for ignore_case in (False, True):
                compiled = parse_like(pattern)
                clause = like_clause(table.c.value, compiled, ignore_case=ignore_case)
                selected = c.execute(sa.select(table.c.value).where(clause))
                expected = {t for t in texts if like_match(compiled, t, ignore_case=ignore_case)}
                assert set(selected.scalars()) == expected, (pattern, ignore_case)
    engine.dispose()
