"""Errors raised by :mod:`keel.pipelines`, all below :class:`keel.errors.KeelError`.

The hierarchy::

    KeelError
    ├── InvalidInputError
    │   ├── PipelineDefinitionError   a pipeline or step is declared or called wrongly
    │   │   ├── UnknownParamError     build() got params the pipeline does not take
    │   │   ├── MissingInputError     a step argument has no value, or names an output nobody makes
    │   │   └── CycleError            the graph has a cycle (only hand-built graphs can)
    │   └── NoMaterializerError       a step output has no materializer and could not be pickled
    ├── StepFailedError               a run had failed steps and their result was asked for
    └── StepTimeoutError              a step ran past its ``timeout`` (also a TimeoutError)
"""

from __future__ import annotations

from keel.errors import InvalidInputError, KeelError

__all__ = [
    "CycleError",
    "MissingInputError",
    "NoMaterializerError",
    "PipelineDefinitionError",
    "StepFailedError",
    "StepTimeoutError",
    "UnknownParamError",
]


class PipelineDefinitionError(InvalidInputError):
    """A pipeline or step is declared or called in a way keel cannot turn into a graph."""


class UnknownParamError(PipelineDefinitionError):
    def __init__(self, message: str, *, pipeline: str, unknown: list[str], known: list[str]):
        super().__init__(message)
        self.pipeline = pipeline
        self.unknown = unknown
        self.known = known


class MissingInputError(PipelineDefinitionError):
    def __init__(self, message: str, *, node: str, argument: str):
        super().__init__(message)
        self.node = node
        self.argument = argument


class CycleError(PipelineDefinitionError):
    def __init__(self, message: str, *, cycle: list[str]):
        super().__init__(message)
        self.cycle = cycle


class NoMaterializerError(InvalidInputError):
    def __init__(self, message: str, *, node: str, output: str, type_name: str):
        super().__init__(message)
        self.node = node
        self.output = output
        self.type_name = type_name


class StepFailedError(KeelError):
    """A run's result needs the output of a step that failed or was skipped."""

    def __init__(self, message: str, *, failed: dict[str, str]):
        super().__init__(message)
        self.failed = failed


class StepTimeoutError(KeelError, TimeoutError):
    """A step call ran longer than its ``timeout`` and was interrupted."""
