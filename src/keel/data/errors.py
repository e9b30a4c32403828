"""Errors raised by :mod:`keel.data`, all below :class:`keel.errors.KeelError`.

The hierarchy::

    KeelError
    ├── InvalidInputError                 (CLI exit code 2: bad input, never a result that looks like a pass)
    │   ├── DataSourceError               data cannot be opened or read (missing path, empty, malformed)
    │   │   └── MalformedFileError        a file does not parse; carries the path and line number
    │   ├── SuiteError                    a suite is invalid; carries the YAML file, line and column
    │   ├── ColumnMismatchError           a check names a column the data lacks, or its type does not fit
    │   ├── ProfileFormatError            not a stored profile, or of a format version this keel cannot read
    │   ├── ProfileMergeError             profiles of different columns or types cannot be merged
    │   └── DriftMethodError              an unknown drift or outlier method, or a bad threshold for one
    └── DataError                         root of data errors that are not bad input
"""

from __future__ import annotations

from keel.errors import InvalidInputError, KeelError

__all__ = [
    "ColumnMismatchError",
    "DataError",
    "DataSourceError",
    "DriftMethodError",
    "MalformedFileError",
    "ProfileFormatError",
    "ProfileMergeError",
    "SuiteError",
]


class DataError(KeelError):
    """Root of the errors in :mod:`keel.data` that are not caused by bad input."""


class DataSourceError(InvalidInputError):
    """Data cannot be opened or read: a missing path, an empty file, an unsupported object."""

    def __init__(self, message: str, *, source: str | None = None):
        super().__init__(message)
        self.source = source


class MalformedFileError(DataSourceError):
    """A data file does not parse; ``line`` is 1-based (counting the header line) when known."""

    def __init__(self, message: str, *, source: str, line: int | None = None, column: str | None = None):
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {message}", source=source)
        self.line = line
        self.column = column


class SuiteError(InvalidInputError):
    """A suite is invalid. ``file``, ``line`` and ``column`` (1-based) point at the offending YAML."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        check: str | None = None,
    ):
        prefix = ""
        if file is not None or line is not None:
            prefix = f"{file or '<suite>'}"
            if line is not None:
                prefix += f":{line}"
                if column is not None:
                    prefix += f":{column}"
            prefix += ": "
        super().__init__(prefix + message)
        self.reason = message
        self.param: str | None = None
        self.file = file
        self.line = line
        self.column = column
        self.check = check


class ColumnMismatchError(InvalidInputError):
    """A check names a column the data does not have, or a column's type does not fit the check."""

    def __init__(self, message: str, *, column: str, source: str | None = None, check: str | None = None):
        super().__init__(message)
        self.column = column
        self.source = source
        self.check = check


# -- profiles and drift (keel.data.profiles, keel.data.drift_detection) --------------------------------------
class ProfileFormatError(InvalidInputError):
    """A profile cannot be read: not a keel profile, damaged, or written in an incompatible format version."""

    def __init__(self, message: str, *, source: str | None = None, version: int | None = None):
        super().__init__(message)
        self.source = source
        self.version = version


class ProfileMergeError(InvalidInputError):
    """Profiles cannot be merged: different column sets, or a column with different kinds of values."""

    def __init__(self, message: str, *, column: str | None = None):
        super().__init__(message)
        self.column = column


class DriftMethodError(InvalidInputError):
    """A drift method or threshold is unknown or does not fit the column's kind."""

    def __init__(self, message: str, *, column: str | None = None, method: str | None = None):
        super().__init__(message)
        self.column = column
        self.method = method
