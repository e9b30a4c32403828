"""SQL ``LIKE`` patterns, with one meaning in SQLite, in PostgreSQL and in Python.

A pattern's ``%`` matches any run of characters, ``_`` exactly one, and a backslash makes the
character after it literal (``'100\\%'``, ``'a\\_b'``, ``'C:\\\\'``). ``LIKE`` is case-sensitive
everywhere, ``ILIKE`` compares lower-cased text.

Why a module of its own: the search filters are evaluated both in SQL (runs) and in Python (the
short lists of MLflow's experiment, model and version searches), and the three engines disagree
unless told exactly what to do. SQLite's ``LIKE`` ignores ASCII case and has no escape character
unless given one; PostgreSQL's escapes with a backslash and fails on a pattern ending in one; a
pattern turned into a Python regular expression (``%`` as ``.*``) backtracks exponentially, so
ten ``%_`` pairs hung a server worker for minutes. Here a pattern is checked once
(:func:`parse_like`), compiled to SQL with an explicit ``ESCAPE`` (``keel.store.sql_search.like_clause``;
SQLite's case-sensitive ``GLOB`` for ``LIKE``), and matched in Python in linear time (:func:`like_match`):
the pattern is split at ``%`` into fixed-length segments, the first and last are anchored, and
each middle one is found leftmost by a bit-parallel scan (Shift-And) that reads each character of
the text once. Leftmost is always right for fixed-length segments, so nothing is ever retried.
"""

from __future__ import annotations

import dataclasses

from keel.errors import LimitExceededError
from keel.limits import MAX_LIKE_PATTERN_LENGTH

__all__ = ["ESCAPE", "LikePattern", "LikePatternError", "like_match", "parse_like"]

#: the escape character of keel's LIKE patterns, as in PostgreSQL and MySQL
ESCAPE = "\\"

#: one position of a segment: a literal character, or None for ``_`` (any one character)
Segment = tuple[str | None, ...]


class LikePatternError(ValueError):
    """A pattern that is not a valid LIKE pattern (the parser turns it into a FilterSyntaxError)."""


@dataclasses.dataclass(frozen=True)
class LikePattern:
    """A checked LIKE pattern: the text and its ``%``-separated segments (at least one)."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def glob(self) -> str:
        """The same pattern for SQLite's GLOB, which is case-sensitive and has no escape:
        ``*``, ``?`` and ``[`` are written as one-character classes."""
        parts = []
        for index, segment in enumerate(self.segments):
            if index:
                parts.append("*")
            for char in segment:
                parts.append("?" if char is None else f"[{char}]" if char in "*?[" else char)
        return "".join(parts)


def parse_like(text: str) -> LikePattern:
    """Check ``text`` as a LIKE pattern. Raises :class:`LikePatternError` for a pattern ending in
    a lone backslash and :class:`~keel.errors.LimitExceededError` for one over
    :data:`~keel.limits.MAX_LIKE_PATTERN_LENGTH` characters."""
    if len(text) > MAX_LIKE_PATTERN_LENGTH:
        raise LimitExceededError(
            f"a LIKE pattern is {len(text):,} characters; the limit is {MAX_LIKE_PATTERN_LENGTH:,} "
            "(keel.limits.MAX_LIKE_PATTERN_LENGTH)",
            limit=MAX_LIKE_PATTERN_LENGTH,
            actual=len(text),
            what="LIKE pattern",
        )
    segments: list[Segment] = []
    current: list[str | None] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == ESCAPE:
            if index + 1 == len(text):
                raise LikePatternError(
                    "the LIKE pattern ends with the escape character '\\'; "
                    "write '\\\\' for a literal backslash"
                )
            current.append(text[index + 1])
            index += 2
            continue
        if char == "%":
            segments.append(tuple(current))
            current = []
        else:
            current.append(None if char == "_" else char)
        index += 1
    segments.append(tuple(current))
    return LikePattern(text, tuple(segments))


def _lower(pattern: LikePattern) -> LikePattern:
    segments = tuple(tuple(None if c is None else c.lower() for c in s) for s in pattern.segments)
    return LikePattern(pattern.text.lower(), segments)


def _matches_at(segment: Segment, text: str, start: int) -> bool:
    return all(c is None or c == text[start + i] for i, c in enumerate(segment))


def _find(segment: Segment, text: str, start: int, stop: int) -> int:
    """Leftmost position ``p`` in ``[start, stop - len(segment)]`` where ``segment`` matches, or -1."""
    size = len(segment)
    if size == 0:
        return start
    if None not in segment:  # a plain substring: str.find, in C
        return text.find("".join(segment), start, stop)  # type: ignore[arg-type]
    # Shift-And: bit i of ``state`` says segment[: i + 1] ends at the current character
    wildcard = 0
    masks: dict[str, int] = {}
    for i, char in enumerate(segment):
        if char is None:
            wildcard |= 1 << i
        else:
            masks[char] = masks.get(char, 0) | 1 << i
    for char in masks:
        masks[char] |= wildcard
    goal, state = 1 << (size - 1), 0
    for position in range(start, stop):
        state = ((state << 1) | 1) & masks.get(text[position], wildcard)
        if state & goal:
            return position - size + 1
    return -1


def like_match(pattern: LikePattern, text: str, *, ignore_case: bool = False) -> bool:
    """Whether ``text`` matches ``pattern``, in time linear in ``len(text)`` (times the pattern's
    length over the machine word for segments holding ``_``), never by backtracking."""
    if ignore_case:
        pattern, text = _lower(pattern), text.lower()
    segments = pattern.segments
    first, last = segments[0], segments[-1]
    if len(segments) == 1:
        return len(text) == len(first) and _matches_at(first, text, 0)
    end = len(text) - len(last)  # where the last segment must start
    if end < len(first) or not _matches_at(first, text, 0) or not _matches_at(last, text, end):
        return False
    position = len(first)
    for segment in segments[1:-1]:
        found = _find(segment, text, position, end)
        if found < 0:
            return False
        position = found + len(segment)
    return True
