"""The server's JSON parsing: orjson for strict JSON, the standard parser for what orjson would
refuse or read lossily, and the same nesting depth either way."""

from __future__ import annotations

import json
import math
import random

import pytest

from keel.server.limits import json_depth, parse_json


def _random_value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 6 or roll < 0.3:
        return rng.choice([1, -2.5, "text", "ünïcode", True, None, 2**62])
    if roll < 0.65:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def test_strict_json_parses_to_the_same_value_and_depth_as_the_standard_parser():
    rng = random.Random(7)
    for _ in range(500):
        value = _random_value(rng)
        body = json.dumps(value).encode()
        parsed, depth = parse_json(body)
        assert parsed == value
        assert depth == json_depth(value)


def test_what_orjson_refuses_or_would_read_lossily_goes_through_the_standard_parser():
    parsed, depth = parse_json(b'{"v": [NaN, Infinity, -Infinity]}')
    assert math.isnan(parsed["v"][0]) and parsed["v"][1:] == [math.inf, -math.inf] and depth == 2
    # an integer beyond 64 bits stays exact (orjson would make it a float)
    parsed, _ = parse_json(b'{"p": 123456789012345678901234567}')
    assert parsed["p"] == 123456789012345678901234567 and type(parsed["p"]) is int
    parsed, _ = parse_json(b'{"run": "a1234567890123456789012345678901"}')  # digits inside a string
    assert parsed["run"] == "a1234567890123456789012345678901"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'"\\ud800"', UnicodeError),  # a lone surrogate: no database stores it
        (b'{"k": "\xff"}', UnicodeError),  # not UTF-8
        (b'{"k": ', ValueError),
        (b"[" * 5000 + b"]" * 5000, RecursionError),
    ],
)
def test_what_neither_parser_accepts_raises(body, error):
    with pytest.raises(error):
        parse_json(body)
