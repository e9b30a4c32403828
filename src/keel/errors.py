"""Every error keel raises on purpose.

The hierarchy::

    KeelError                         root: catch this to catch anything keel raised on purpose
    ├── ConfigError                   a bad setting in keel.toml, pyproject.toml or KEEL_* variables
    ├── NameRuleError                 a name breaks the naming convention (carries a suggestion)
    ├── InvalidInputError             a value keel cannot accept (bad type, NaN where not allowed, ...)
    │   ├── LimitExceededError        a value is over an explicit limit (carries limit and actual size)
    │   ├── FilterSyntaxError         a search filter or order-by string does not parse
    │   └── UnsafePathError           an artifact name that would reach outside the store
    ├── NotFoundError                 an experiment, run, artifact, model or version does not exist
    ├── ConflictError                 the change contradicts stored state
    │   └── ParamConflictError        a param already holds a different value (params are immutable)
    ├── StoreError                    the metadata store cannot be opened, migrated or written
    │   ├── StoreReadOnlyError        the store's disk is read-only or full
    │   └── StoreUnavailableError     the store cannot be reached now (server away, network, locked)
    ├── ArtifactError                 bytes could not be stored or read
    │   └── ArtifactCorruptedError    stored bytes do not match their sha256
    ├── TrustError                    loading would run code keel cannot vouch for (pickle without trust)
    └── MissingDependencyError        an optional extra is not installed (says which pip command fixes it)

Every error carries a message that says what went wrong *and* what to do about it; structured fields
let programs react without parsing text.
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorruptedError",
    "ArtifactError",
    "ConfigError",
    "ConflictError",
    "FilterSyntaxError",
    "InvalidInputError",
    "KeelError",
    "LimitExceededError",
    "MissingDependencyError",
    "NameRuleError",
    "NotFoundError",
    "ParamConflictError",
    "StoreError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "TrustError",
    "UnsafePathError",
]

#: the name keel is published under (``pip install keel-mlops``): ``keel`` on PyPI is an unrelated
#: project, so every "pip install" hint must name this one; the import name and the CLI stay ``keel``
#: (docs/decisions/010-distribution-name.md)
DISTRIBUTION = "keel-mlops"


class KeelError(Exception):
    """Root of every error keel raises on purpose."""

    #: process exit code the CLI uses for this error (2: bad usage or input, 1: failure)
    exit_code = 1


class ConfigError(KeelError):
    exit_code = 2


class InvalidInputError(KeelError):
    exit_code = 2


class NameRuleError(InvalidInputError):
    """A name breaks a rule of the naming convention."""

    def __init__(self, message: str, *, name: str, kind: str, suggestion: str | None = None):
        if suggestion:
            message = f"{message} Try: {suggestion!r}"
        super().__init__(message)
        self.name = name
        self.kind = kind
        self.suggestion = suggestion


class LimitExceededError(InvalidInputError):
    """A value is larger than an explicit limit; nothing is ever truncated silently."""

    def __init__(self, message: str, *, limit: int, actual: int, what: str):
        super().__init__(message)
        self.limit = limit
        self.actual = actual
        self.what = what


class FilterSyntaxError(InvalidInputError):
    def __init__(self, message: str, *, text: str = "", position: int | None = None):
        if position is not None and text:
            message = f"{message}\n  {text}\n  {' ' * position}^"
        super().__init__(message)
        self.text = text
        self.position = position


class UnsafePathError(InvalidInputError):
    pass


class NotFoundError(KeelError):
    pass


class ConflictError(KeelError):
    pass


class ParamConflictError(ConflictError):
    def __init__(self, message: str, *, key: str, old: str, new: str):
        super().__init__(message)
        self.key = key
        self.old = old
        self.new = new


class StoreError(KeelError):
    pass


class StoreReadOnlyError(StoreError):
    pass


class StoreUnavailableError(StoreError):
    """The store could not be reached (server down, network, a lock held too long): trying the same
    call again later may work. The fluent API queues run changes that meet it instead of raising."""


class ArtifactError(KeelError):
    pass


class ArtifactCorruptedError(ArtifactError):
    def __init__(self, message: str, *, expected: str, actual: str):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class TrustError(KeelError):
    exit_code = 2


class MissingDependencyError(KeelError):
    exit_code = 2

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install '{DISTRIBUTION}[{extra}]'"
        )
        self.package = package
        self.extra = extra
