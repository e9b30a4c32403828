"""Naming conventions, enforced wherever keel creates a name.

A convention has, for each kind of name (``experiment``, ``run``, ``model``, ``artifact``):

* ``pattern`` (optional): a template such as ``{project}-{model}-v{version}-{date:%Y%m%d}``. A name must
  match it, and names keel generates are built from it. Fields: ``{project}`` (the current project),
  ``{date:FORMAT}`` (strftime; ``%Y %m %d %H %M %S %y %j`` are understood), ``{version}`` and ``{seq}``
  (digits) and any other ``{word}``, which stands for a slug such as ``churn_model``.
* ``chars``: a regular expression each name must match in full.
* ``max_length`` and a list of ``reserved`` words.

Configure it in ``keel.toml``::

    [naming.model]
    pattern = "{project}-{model}"
    max_length = 64

    [naming.run]
    pattern = "{experiment}-{date:%Y%m%d}-{seq}"

``keel names check --kind model NAME...`` checks names from scripts; every error shows the rule, the
pattern and a name that passes.

A convention is the project's choice, checked by keel's client. Beneath every convention lies one
rule that no route may skip: :func:`check_stored_name`, which the store applies to every
experiment, run and registered model name it keeps, whether it came from keel's client, the
native API, the MLflow-compatible API or the UI. It is deliberately wide (MLflow's names, such as
``/Users/ann/churn`` or ``prod model``, pass) and refuses only what makes two names look alike or
breaks where names travel: non-strings, empty names, names over
:data:`keel.limits.MAX_NAME_LENGTH`, spaces at either end, control and invisible formatting
characters, and percent-escapes (``prod%20model`` beside ``prod model``).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from keel.errors import ConfigError, InvalidInputError, NameRuleError
from keel.limits import MAX_ALIAS_LENGTH, MAX_NAME_LENGTH
from keel.records import Frozen

__all__ = ["KINDS", "NameRule", "NamingConvention", "check_stored_name", "random_run_name"]

KINDS = ("experiment", "run", "model", "artifact")

_SLUG = r"[a-z0-9]+(?:[_.][a-z0-9]+)*"
_STRFTIME = {
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%j": r"\d{3}",
    "%%": "%",
}
_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "experiment": {"chars": r"[A-Za-z0-9][A-Za-z0-9 ._/-]*", "max_length": 128, "reserved": []},
    "run": {"chars": r"[A-Za-z0-9][A-Za-z0-9 ._:/-]*", "max_length": 128, "reserved": []},
    # "latest" would shadow the models:/name/latest URI form
    "model": {"chars": r"[A-Za-z0-9][A-Za-z0-9._-]*", "max_length": 96, "reserved": ["latest"]},
    # artifact names are slash-separated paths; safety (no "..", absolute paths...) is checked separately
    "artifact": {
        "chars": r"[A-Za-z0-9_][A-Za-z0-9 ._@+=,-]*(/[A-Za-z0-9_][A-Za-z0-9 ._@+=,-]*)*",
        "max_length": 512,
        "reserved": [],
    },
}


class NameRule(Frozen):
    """The rules for one kind of name (a frozen record; not a dataclass, see ``keel.records``)."""

    kind: str
    chars: str
    max_length: int
    reserved: tuple[str, ...]
    pattern: str | None

    def __init__(
        self,
        kind: str,
        chars: str,
        max_length: int,
        reserved: tuple[str, ...] = (),
        pattern: str | None = None,
    ) -> None:
        self._set(kind=kind, chars=chars, max_length=max_length, reserved=reserved, pattern=pattern)
        try:
            object.__setattr__(self, "_chars_re", re.compile(self.chars))
        except re.error as exc:
            raise ConfigError(f"naming.{self.kind}.chars is not a valid regular expression: {exc}") from None
        regex = _pattern_regex(self.pattern) if self.pattern else None
        object.__setattr__(self, "_pattern_re", regex)

    def problems(self, name: str, context: Mapping[str, Any] | None = None) -> list[str]:
        """Every rule ``name`` breaks, in words; empty when it is valid."""
        found: list[str] = []
        if not name:
            return ["it is empty"]
        if len(name) > self.max_length:
            found.append(f"it is {len(name)} characters long; the limit is {self.max_length}")
        if not self._chars_re.fullmatch(name):  # type: ignore[attr-defined]
            found.append(f"it has characters outside the allowed set /{self.chars}/")
        if name.lower() in {word.lower() for word in self.reserved}:
            found.append(f"{name!r} is a reserved word ({', '.join(self.reserved)})")
        pattern_re = self._pattern_re  # type: ignore[attr-defined]
        if pattern_re is not None:
            match = pattern_re.fullmatch(name)
            if not match:
                found.append(f"it does not follow the pattern {self.pattern!r}")
            elif context and context.get("project") and "project" in match.groupdict():
                if match.group("project") != _slug(str(context["project"])):
                    found.append(
                        f"its project part {match.group('project')!r} is not the current project "
                        f"{_slug(str(context['project']))!r}"
                    )
        return found

    def suggest(self, name: str, context: Mapping[str, Any] | None = None) -> str:
        """A name close to ``name`` that passes every rule."""
        base = _slug(name) or self.kind
        if self.pattern:
            candidate = self.render(base, context)
        else:
            candidate = base
        if candidate.lower() in {word.lower() for word in self.reserved}:
            candidate = f"{candidate}-1"
        return candidate[: self.max_length].rstrip("-_. ")

    def render(self, free: str, context: Mapping[str, Any] | None = None) -> str:
        """Fill the pattern: known fields from ``context``, the first free field with ``free``."""
        assert self.pattern is not None
        context = dict(context or {})
        now = context.get("now") or _dt.datetime.now()
        used_free = False

        def fill(match: re.Match[str]) -> str:
            nonlocal used_free
            field, fmt = match.group(1), match.group(2)
            if field == "date":
                return str(now.strftime(fmt or "%Y%m%d"))
            if field in context and field != "now":
                value = str(context[field])
                return value if field in {"version", "seq"} else _slug(value)
            if field in {"version", "seq"}:
                return "1"
            if not used_free:
                used_free = True
                return _slug(free)
            return _slug(field)

        return _FIELD.sub(fill, self.pattern)


class NamingConvention:
    """The rules for every kind of name, built from the ``[naming]`` settings table."""

    def __init__(self, table: Mapping[str, Any] | None = None, project: str = "default"):
        table = dict(table or {})
        self.project = project
        self.rules: dict[str, NameRule] = {}
        unknown = set(table) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown naming kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
        for kind in KINDS:
            spec = {**_DEFAULTS[kind], **dict(table.get(kind, {}))}
            bad = set(spec) - {"chars", "max_length", "reserved", "pattern"}
            if bad:
                raise ConfigError(
                    f"unknown key(s) {sorted(bad)} in [naming.{kind}]; "
                    "known: chars, max_length, reserved, pattern"
                )
            self.rules[kind] = NameRule(
                kind=kind,
                chars=str(spec["chars"]),
                max_length=int(spec["max_length"]),
                reserved=tuple(spec.get("reserved") or ()),
                pattern=spec.get("pattern"),
            )

    def check(self, kind: str, name: str, **context: Any) -> list[str]:
        return self.rule(kind).problems(name, {"project": self.project, **context})

    def validate(self, kind: str, name: str, **context: Any) -> str:
        """Return ``name`` unchanged if it is valid, else raise :class:`NameRuleError` with a suggestion."""
        rule = self.rule(kind)
        context = {"project": self.project, **context}
        problems = rule.problems(name, context)
        if problems:
            pattern = f" (pattern {rule.pattern!r})" if rule.pattern else ""
            raise NameRuleError(
                f"invalid {kind} name {name!r}{pattern}: {'; '.join(problems)}.",
                name=name,
                kind=kind,
                suggestion=rule.suggest(name, context),
            )
        return name

    def generate(self, kind: str, **context: Any) -> str:
        """A fresh valid name for ``kind``: from its pattern when there is one, else a random one."""
        rule = self.rule(kind)
        context = {"project": self.project, **context}
        if rule.pattern:
            return rule.render(random_run_name() if kind == "run" else kind, context)
        return random_run_name()

    def rule(self, kind: str) -> NameRule:
        try:
            return self.rules[kind]
        except KeyError:
            raise ConfigError(f"unknown name kind {kind!r}; known: {', '.join(KINDS)}") from None


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
#: control characters, invisible formatting (zero-width, bidirectional overrides), line separators
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


#: kinds of stored names whose limit is not keel.limits.MAX_NAME_LENGTH
_STORED_LIMITS = {"alias": ("keel.limits.MAX_ALIAS_LENGTH", MAX_ALIAS_LENGTH)}
#: kinds whose names may hold percent-escapes: a dataset is named after its file by default, and
#: files fetched from URLs keep theirs (``report%20q1.csv``)
_PERCENT_ALLOWED = frozenset({"dataset"})


def check_stored_name(kind: str, name: object) -> str:
    """``name`` if a store may keep it as the name of a ``kind`` ("experiment", "run", "model",
    "alias", "dataset"), else :class:`NameRuleError` (an :class:`InvalidInputError`: HTTP 400 on every route).

    Project conventions (:class:`NamingConvention`) are checked on top of this by keel's client."""
    if not isinstance(name, str):
        raise InvalidInputError(f"the {kind} name must be a string, not {type(name).__name__}")
    problem = None
    limit_name, limit = _STORED_LIMITS.get(kind, ("keel.limits.MAX_NAME_LENGTH", MAX_NAME_LENGTH))
    if not name.strip():
        problem = "it is empty"
    elif len(name) > limit:
        problem = f"it is {len(name):,} characters long; the limit is {limit} ({limit_name})"
    elif name != name.strip():
        problem = "it starts or ends with a space"
    elif any(unicodedata.category(ch) in _HIDDEN_CATEGORIES for ch in name):
        problem = "it holds control or invisible formatting characters"
    elif kind not in _PERCENT_ALLOWED and _PERCENT_ESCAPE.search(name):
        problem = "it holds a percent-escape such as '%20' (write the character itself)"
    if problem is None:
        return name
    shown = name if len(name) <= 60 else name[:60] + "..."
    raise NameRuleError(
        f"invalid {kind} name {shown!r}: {problem}.",
        name=shown,
        kind=kind,
        suggestion=_suggest_stored(name, limit),
    )


def _suggest_stored(name: str, limit: int) -> str | None:
    cleaned = _PERCENT_ESCAPE.sub("_", name)
    cleaned = "".join(ch for ch in cleaned if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)
    cleaned = cleaned.strip()[:limit].strip()
    return cleaned or None


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    seen: set[str] = set()
    for match in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        field, fmt = match.group(1), match.group(2)
        if field == "date":
            body = re.escape(fmt or "%Y%m%d")
            for code, regex in _STRFTIME.items():
                body = body.replace(re.escape(code), regex).replace(code, regex)
            regex = body
        elif field in {"version", "seq"}:
            regex = r"\d+"
        else:
            regex = _SLUG
        group = field if field not in seen else None
        seen.add(field)
        parts.append(f"(?P<{group}>{regex})" if group else f"(?:{regex})")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    try:
        return re.compile("".join(parts))
    except re.error as exc:
        raise ConfigError(f"naming pattern {pattern!r} is not valid: {exc}") from None


def _slug(text: str) -> str:
    text = re.sub(r"[^a-z0-9_.]+", "_", text.lower())
    text = re.sub(r"[_.]{2,}", "_", text)
    return text.strip("_.")


_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "eager",
    "fair",
    "gentle",
    "keen",
    "lively",
    "lucid",
    "merry",
    "noble",
    "quiet",
    "rapid",
    "sharp",
    "steady",
    "swift",
    "vivid",
)
_NOUNS = (
    "badger",
    "crane",
    "falcon",
    "fox",
    "heron",
    "ibex",
    "kestrel",
    "lynx",
    "marten",
    "newt",
    "otter",
    "owl",
    "puffin",
    "raven",
    "seal",
    "stoat",
    "swan",
    "tern",
    "wren",
    "yak",
)


def random_run_name() -> str:
    """A readable run name such as ``swift-otter-042``."""
    return f"{_pick(_ADJECTIVES)}-{_pick(_NOUNS)}-{_below(1000):03d}"


def _below(n: int) -> int:
    # os.urandom, not `secrets`: that module loads hmac and hashlib, milliseconds on the path of a
    # process's first start_run; a run name needs no more than unpredictable bytes
    return int.from_bytes(os.urandom(8), "big") % n


def _pick(words: tuple[str, ...]) -> str:
    return words[_below(len(words))]
