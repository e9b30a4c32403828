"""The run-search language: MLflow's ``search_runs`` filter strings, plus ``or`` and parentheses.

Grammar (keywords are case-insensitive)::

    filter     := disjunct ("or" disjunct)*
    disjunct   := atom ("and" atom)*
    atom       := "(" filter ")" | comparison
    comparison := identifier op value
                | identifier ("is null" | "is not null")
                | identifier ["not"] "in" "(" value ("," value)* ")"
    identifier := [entity "."] key          entity: metrics params tags attributes datasets
    key        := word ("." word)* | `back ticked` | "double quoted"
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like" | "ilike"
    value      := number | 'string' | "string"

A bare key is an attribute: ``status = 'FINISHED'`` equals ``attributes.status = 'FINISHED'``.
Metrics compare as numbers; params, tags and string attributes as strings.

Examples::

    metrics.acc > 0.9 and params.lr = '0.01' and tags.team = 'x'
    attributes.status IN ('FINISHED', 'FAILED') and metrics.`val loss` < 0.2
    (params.model = 'rf' or params.model = 'gbm') and run_name LIKE 'sweep-%'

This module only parses; ``keel.store.sql_search`` compiles the tree to SQL, and the MLflow API
evaluates it in Python over short lists (``keel.server.mlflow._filters``). MLflow's smaller filter
language for experiments, models and versions is a :class:`Dialect` of this one (conditions joined
by ``AND`` on attributes and tags), so both share one tokenizer, one meaning of ``LIKE``
(:mod:`keel.store.like`), one set of limits and one kind of error: a filter over
:data:`~keel.limits.MAX_FILTER_TERMS` comparisons, :data:`~keel.limits.MAX_FILTER_VALUES` listed
values or :data:`~keel.limits.MAX_FILTER_DEPTH` nested parentheses raises
:class:`~keel.errors.LimitExceededError`, before anything recurses or reaches a database.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from keel.errors import FilterSyntaxError, LimitExceededError
from keel.limits import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, MAX_FILTER_TERMS, MAX_FILTER_VALUES
from keel.store.like import LikePatternError, parse_like

__all__ = [
    "ATTRIBUTES",
    "RUNS",
    "And",
    "Comparison",
    "Dialect",
    "Or",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
]

ENTITY_ALIASES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
    "dataset": "datasets",
    "datasets": "datasets",
}

#: attribute name -> (canonical name, kind); kind is "str" or "num"
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "run_id": ("run_id", "str"),
    "id": ("run_id", "str"),
    "run_name": ("run_name", "str"),
    "name": ("run_name", "str"),
    "status": ("status", "str"),
    "user": ("user", "str"),
    "user_id": ("user", "str"),
    "host": ("host", "str"),
    "start_time": ("start_time", "num"),
    "created": ("start_time", "num"),
    "end_time": ("end_time", "num"),
    "experiment_id": ("experiment_id", "str"),
    "lifecycle_stage": ("lifecycle_stage", "str"),
    "git_commit": ("git_commit", "str"),
    "cost_usd": ("cost_usd", "num"),
}
DATASET_FIELDS = {
    "name": "name",
    "digest": "fingerprint",
    "fingerprint": "fingerprint",
    "context": "context",
}


@dataclasses.dataclass(frozen=True)
class Dialect:
    """What a filter may name: the entity prefixes, the attributes (name -> (canonical name, kind),
    kind "str", "num" or "any" for values compared loosely, as MLflow's in-memory searches do),
    the kind of each other entity's values, and whether ``or`` and parentheses are allowed."""

    entities: Mapping[str, str]
    attributes: Mapping[str, tuple[str, str]]
    kinds: Mapping[str, str]
    connectives: bool
    #: how an unknown attribute's error message continues, naming what is known
    known: str

    @classmethod
    def mlflow(cls, attributes: Sequence[str]) -> Dialect:
        """MLflow's language for experiments, registered models, versions and logged models:
        ``[attributes.|tags.]key OP value`` joined by ``AND``; ``attributes`` names the keys."""
        return cls(
            entities={"attribute": "attributes", "attributes": "attributes", "tag": "tags", "tags": "tags"},
            attributes={name: (name, "any") for name in attributes},
            kinds={"tags": "any"},
            connectives=False,
            known=f"filter on {', '.join(attributes)} or tags.KEY",
        )


#: keel's run-search language
RUNS = Dialect(
    entities=ENTITY_ALIASES,
    attributes=ATTRIBUTES,
    kinds={"metrics": "num", "params": "str", "tags": "str", "datasets": "str"},
    connectives=True,
    known=(
        "known: "
        + ", ".join(sorted({v[0] for v in ATTRIBUTES.values()}))
        + " (or prefix metrics., params., tags., datasets.)"
    ),
)

_OPS = {
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?<![\w.])[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![\w.]))
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w\-:/]*|(?<=\.)\w[\w\-:/]*)
    """,
    re.VERBOSE,
)


@dataclasses.dataclass(frozen=True)
class Comparison:
    entity: str  # metrics | params | tags | attributes | datasets
    key: str
    op: str
    value: Any  # float | str | tuple of those | None


@dataclasses.dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Comparison | And | Or


@dataclasses.dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


@dataclasses.dataclass
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r}", text=text, position=pos)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, dialect: Dialect = RUNS):
        self.text = text
        self.dialect = dialect
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0  # parentheses open now
        self.terms = 0  # comparisons so far
        self.values = 0  # IN-list values so far

    # -- helpers -----------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> _Token | None:
        i = self.index + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def next(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError(
                f"the filter ends where {expected} was expected",
                text=self.text,
                position=len(self.text),
            )
        self.index += 1
        return token

    def fail(self, message: str, token: _Token | None) -> FilterSyntaxError:
        position = token.pos if token else len(self.text)
        return FilterSyntaxError(message, text=self.text, position=position)

    def _dotted_continuation(self) -> bool:
        dot, part = self.peek(), self.peek(1)
        return dot is not None and dot.text == "." and part is not None and part.kind in {"word", "number"}

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() in words

    def count(self, what: str, actual: int, limit: int, name: str) -> None:
        if actual > limit:
            raise LimitExceededError(
                f"the filter holds more than {limit:,} {what}; the limit is {limit:,} "
                f"(keel.limits.{name}). Narrow the search, or split it into several searches.",
                limit=limit,
                actual=actual,
                what=f"filter {what}",
            )

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> Node | None:
        if not self.tokens:
            return None
        node = self.disjunction()
        if self.peek() is not None:
            expected = "'and', 'or'" if self.dialect.connectives else "'and'"
            raise self.fail(f"expected {expected} or the end of the filter", self.peek())
        return node

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.keyword("OR") and self.dialect.connectives:
            self.index += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.atom()]
        while self.keyword("AND"):
            self.index += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def atom(self) -> Node:
        token = self.peek()
        if token is not None and token.text == "(" and self.dialect.connectives:
            self.depth += 1
            self.count("levels of nested parentheses", self.depth, MAX_FILTER_DEPTH, "MAX_FILTER_DEPTH")
            self.index += 1
            node = self.disjunction()
            closing = self.next("')'")
            if closing.text != ")":
                raise self.fail("expected ')'", closing)
            self.depth -= 1
            return node
        return self.comparison()

    def identifier(self) -> tuple[str, str]:
        first = self.next("a key such as metrics.acc")
        if first.kind == "backtick" or first.kind == "string" and first.text[0] == '"':
            return "attributes", first.text[1:-1]
        if first.kind != "word":
            raise self.fail(f"expected a key such as {self._example()}", first)
        after = self.peek()
        entity = self.dialect.entities.get(first.text.lower())
        if entity is None and after is not None and after.text == ".":
            prefixes = ", ".join(f"{e}." for e in dict.fromkeys(self.dialect.entities.values()))
            raise self.fail(f"unknown prefix {first.text!r}; use {prefixes}", first)
        if entity is not None and after is not None and after.text == ".":
            self.index += 1
            key_token = self.next("a key after the dot")
            if key_token.kind in {"backtick", "string"}:
                key = key_token.text[1:-1]
            elif key_token.kind == "word":
                key = key_token.text
                # dotted keys such as metrics.val.loss
                while self._dotted_continuation():
                    key += "." + self.tokens[self.index + 1].text
                    self.index += 2
            else:
                raise self.fail("expected a key after the dot", key_token)
            return entity, key
        return "attributes", first.text

    def _example(self) -> str:
        return "metrics.acc, params.lr or tags.team" if self.dialect is RUNS else "name or tags.team"

    def value(self) -> Any:
        token = self.next("a value")
        if token.kind == "number":
            return float(token.text)
        if token.kind == "string":
            quote = token.text[0]
            return token.text[1:-1].replace(quote * 2, quote)
        raise self.fail("expected a number or a quoted string", token)

    def comparison(self) -> Comparison:
        start = self.peek()
        self.terms += 1
        self.count("comparisons", self.terms, MAX_FILTER_TERMS, "MAX_FILTER_TERMS")
        entity, key = self.identifier()
        op_token = self.next("an operator such as =, >, LIKE or IN")
        if op_token.kind == "op":
            op = "!=" if op_token.text == "<>" else op_token.text
        elif op_token.kind == "word" and op_token.text.upper() in {"LIKE", "ILIKE", "IN"}:
            op = op_token.text.upper()
        elif op_token.kind == "word" and op_token.text.upper() == "NOT" and self.keyword("IN"):
            self.index += 1
            op = "NOT IN"
        elif op_token.kind == "word" and op_token.text.upper() == "IS":
            if self.keyword("NOT"):
                self.index += 1
                op = "IS NOT NULL"
            else:
                op = "IS NULL"
            null = self.next("NULL")
            if null.text.upper() != "NULL":
                raise self.fail("expected NULL", null)
        else:
            raise self.fail("expected an operator such as =, !=, <, >, LIKE, ILIKE or IN", op_token)

        value: Any
        if op in {"IN", "NOT IN"}:
            opening = self.next("'('")
            if opening.text != "(":
                raise self.fail("IN takes a parenthesised list such as ('a', 'b')", opening)
            items = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.index += 1
                items.append(self.value())
                self.count("IN-list values", self.values + len(items), MAX_FILTER_VALUES, "MAX_FILTER_VALUES")
            self.values += len(items)
            closing = self.next("')'")
            if closing.text != ")":
                raise self.fail("expected ',' or ')'", closing)
            value = tuple(items)
        elif op in {"IS NULL", "IS NOT NULL"}:
            value = None
        else:
            value_token = self.peek()
            value = self.value()
            if op in {"LIKE", "ILIKE"} and isinstance(value, str):
                try:
                    parse_like(value)
                except LikePatternError as exc:
                    raise self.fail(str(exc), value_token) from None
        return _checked(Comparison(entity, key, op, value), self, start)


def _checked(node: Comparison, parser: _Parser, token: _Token | None) -> Comparison:
    entity, op, value = node.entity, node.op, node.value
    dialect = parser.dialect
    if entity == "attributes":
        if node.key not in dialect.attributes:
            raise parser.fail(f"unknown attribute {node.key!r}; {dialect.known}", token)
        canonical, kind = dialect.attributes[node.key]
        node = Comparison(entity, canonical, op, value)
    elif entity == "datasets":
        if node.key not in DATASET_FIELDS:
            raise parser.fail(
                "datasets filters take datasets.name, datasets.digest or datasets.context", token
            )
        node = Comparison(entity, DATASET_FIELDS[node.key], op, value)
        kind = "str"
    else:
        kind = dialect.kinds[entity]

    values = value if isinstance(value, tuple) else (value,)
    if op in {"LIKE", "ILIKE"} and (kind == "num" or not isinstance(value, str)):
        raise parser.fail(f"{op} compares strings; {entity}.{node.key} needs a quoted pattern", token)
    if kind == "num" and op not in {"IS NULL", "IS NOT NULL"}:
        if not all(isinstance(v, float) for v in values):
            raise parser.fail(
                f"{entity}.{node.key} is numeric; compare it with a number, not a string", token
            )
    if kind == "str" and op not in {"IS NULL", "IS NOT NULL"}:
        if not all(isinstance(v, str) for v in values):
            raise parser.fail(
                f"{entity}.{node.key} holds strings; quote the value, e.g. {entity}.{node.key} = '0.01'",
                token,
            )
    if op in {"<", "<=", ">", ">="} and kind == "str" and entity == "attributes":
        raise parser.fail(f"attribute {node.key} supports =, !=, LIKE, ILIKE and IN", token)
    return node


def parse_filter(text: str | None, dialect: Dialect = RUNS) -> Node | None:
    """Parse a filter string into a tree; ``None`` for an empty filter. Raises
    :class:`~keel.errors.FilterSyntaxError` pointing at the problem, or
    :class:`~keel.errors.LimitExceededError` for a filter over one of the limits."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise LimitExceededError(
            f"the filter is {len(text):,} characters; the limit is {MAX_FILTER_LENGTH:,} "
            "(keel.limits.MAX_FILTER_LENGTH)",
            limit=MAX_FILTER_LENGTH,
            actual=len(text),
            what="filter length",
        )
    return _Parser(text, dialect).parse()


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse order-by clauses such as ``["metrics.acc DESC", "start_time"]``."""
    result: list[OrderBy] = []
    for clause in clauses or ():
        parser = _Parser(clause)
        entity, key = parser.identifier()
        ascending = True
        token = parser.peek()
        if token is not None:
            if token.kind == "word" and token.text.upper() in {"ASC", "DESC"}:
                ascending = token.text.upper() == "ASC"
                parser.index += 1
            if parser.peek() is not None:
                raise parser.fail("an order-by clause is a key and an optional ASC or DESC", parser.peek())
        if entity == "attributes":
            if key not in ATTRIBUTES:
                known = ", ".join(sorted({v[0] for v in ATTRIBUTES.values()}))
                raise FilterSyntaxError(f"cannot order by unknown attribute {key!r}; known: {known}")
            key = ATTRIBUTES[key][0]
        elif entity == "datasets":
            raise FilterSyntaxError("cannot order by datasets fields")
        result.append(OrderBy(entity, key, ascending))
    return result
