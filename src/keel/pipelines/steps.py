"""``@step`` and ``@pipeline``: plain functions that also describe a graph.

Inside a pipeline function that is being built, calling a step records a node and returns
:class:`~keel.pipelines.graph.Output` placeholders instead of running it; outside, a step is just
its function. The graph's edges come from passing one step's output to another.

    >>> @step
    ... def load(n: int) -> list[int]:
    ...     return list(range(n))
    >>> @step(outputs=("low", "high"))
    ... def split(rows: list[int]) -> tuple[list[int], list[int]]:
    ...     return rows[: len(rows) // 2], rows[len(rows) // 2 :]
    >>> @step
    ... def total(parts: list[list[int]]) -> int:
    ...     return sum(map(sum, parts))
    >>> @pipeline
    ... def demo(n: int = 10) -> object:
    ...     low, high = split(load(n))
    ...     return total([low, high])
    >>> graph = demo.build(n=4)
    >>> [node.id for node in graph.topological_order()]
    ['load', 'split', 'total']
    >>> load(3)  # plain Python stays plain
    [0, 1, 2]
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, overload

from keel.errors import InvalidInputError
from keel.pipelines.errors import MissingInputError, PipelineDefinitionError, UnknownParamError
from keel.pipelines.graph import Graph, Node, Output

__all__ = ["Pipeline", "Step", "pipeline", "step"]

_BUILDING: ContextVar[_Builder | None] = ContextVar("keel_pipeline_building", default=None)


class _Builder:
    """The graph being traced and a per-step-name counter for unique node ids."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.calls: dict[str, int] = {}

    def base_id(self, name: str) -> str:
        count = self.calls.get(name, 0) + 1
        self.calls[name] = count
        return name if count == 1 else f"{name}_{count}"


def _tuple_arity(fn: Callable[..., Any]) -> int | None:
    """``n`` when ``fn`` is annotated to return ``tuple[A, B, ...]`` with a fixed length ``n > 1``."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations (names defined later, under TYPE_CHECKING, ...)
        return None
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) > 1 and Ellipsis not in args:
            return len(args)
    return None


class Step:
    """A function usable as a pipeline step; see :func:`step`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        timeout: float | None = None,
        resources: Mapping[str, Any] | None = None,
        outputs: Iterable[str] | None = None,
    ):
        if not callable(fn):
            raise InvalidInputError(f"@step needs a function, got {type(fn).__name__}")
        if retries < 0:
            raise InvalidInputError(f"retries must be 0 or more, got {retries}")
        if timeout is not None and timeout <= 0:
            raise InvalidInputError(f"timeout must be positive seconds, got {timeout}")
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name or any(ch in self.name for ch in "[]\n"):
            raise InvalidInputError(f"step name {self.name!r} may not be empty or contain [, ] or newlines")
        self.cache = cache
        self.retries = retries
        self.timeout = timeout
        self.resources: dict[str, Any] = dict(resources or {})
        self.signature = inspect.signature(fn)
        if outputs is not None:
            names = tuple(outputs)
            if isinstance(outputs, str) or not names or len(set(names)) != len(names):
                raise InvalidInputError(f"outputs must be distinct names, e.g. ('x', 'y'); got {outputs!r}")
            if any(str(name).startswith("keel:") for name in names):
                raise InvalidInputError(f"output names starting with 'keel:' are keel's own; got {outputs!r}")
        elif (arity := _tuple_arity(fn)) is not None:
            names = tuple(f"output_{i}" for i in range(arity))
        else:
            names = ("output",)
        self.output_names: tuple[str, ...] = names
        functools.update_wrapper(self, fn)

    @property
    def multiple_outputs(self) -> bool:
        return self.output_names != ("output",)

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # pickled by reference: the worker imports the module and finds the same step there
        return (_import_step, (self.fn.__module__, self.fn.__qualname__))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = _BUILDING.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        return self._record(builder, builder.base_id(self.name), args, kwargs)

    def _record(self, builder: _Builder, node_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            try:
                given = self.signature.bind_partial(*args, **kwargs).arguments
            except TypeError:
                given = None
            missing = [
                p.name
                for p in self.signature.parameters.values()
                if given is not None
                and p.name not in given
                and p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if missing:
                raise MissingInputError(
                    f"step `{node_id}` is missing argument `{missing[0]}`; pass a value or another "
                    "step's output for it.",
                    node=node_id,
                    argument=missing[0],
                ) from None
            raise PipelineDefinitionError(f"step `{node_id}` was called wrongly: {exc}") from None
        builder.graph.add(Node(node_id, self, dict(bound.arguments)))
        if self.multiple_outputs:
            return tuple(Output(node_id, name) for name in self.output_names)
        return Output(node_id)

    def map(self, items: Iterable[Any], **kwargs: Any) -> list[Any]:
        """Call the step once per item (as its first argument), with ``kwargs`` shared by all calls.

        While a pipeline is built this makes one node per item, ``name[0]``, ``name[1]``, ... and
        returns their placeholders, ready to be passed as a list to a fan-in step.

            >>> scores = train.map([0.1, 0.01], data=rows)  # two nodes: train[0], train[1]
            >>> best = pick(scores)
        """
        if isinstance(items, Output):
            raise PipelineDefinitionError(
                f"{self.name}.map needs a literal list while the pipeline is built, not the output of "
                f"`{items.node}`; the number of branches must be known before anything runs."
            )
        values = list(items)
        builder = _BUILDING.get()
        if builder is None:
            return [self.fn(item, **kwargs) for item in values]
        base = builder.base_id(self.name)
        return [self._record(builder, f"{base}[{i}]", (item,), kwargs) for i, item in enumerate(values)]


def _import_step(module: str, qualname: str) -> Step:
    """Find the step ``module.qualname`` (what pickled steps turn back into in a worker)."""
    import importlib

    found: Any = importlib.import_module(module)
    target: Any = found
    for part in qualname.split("."):
        target = getattr(target, part)
    if isinstance(target, Step):
        return target
    # `fast = keel.step(plain_fn)`: the module holds the plain function under its own name and
    # the step under another; find the one step made from that function
    made = [value for value in vars(found).values() if isinstance(value, Step) and value.fn is target]
    if len(made) == 1:
        return made[0]
    raise InvalidInputError(f"{module}.{qualname} is not a @step")


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    cache: bool = True,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
    outputs: Iterable[str] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    cache: bool = True,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
    outputs: Iterable[str] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step; use bare (``@step``) or with options (``@step(retries=2)``).

    ``cache=False`` always reruns it; ``retries`` reruns a failing call with backoff; ``timeout``
    (seconds) is enforced by the process executor; ``resources`` (e.g. ``{"cpu": 2, "gpu": 1}``) is
    kept for executors that schedule by it; ``outputs`` names several outputs (the function returns
    a tuple of that length) -- a ``tuple[A, B]`` return annotation does the same with names
    ``output_0``, ``output_1``.

        >>> @step(outputs=("train", "test"), retries=1)
        ... def split(rows): return rows[:80], rows[80:]
    """
    options = {
        "cache": cache,
        "name": name,
        "retries": retries,
        "timeout": timeout,
        "resources": resources,
        "outputs": outputs,
    }
    if fn is not None:
        return Step(fn, **options)  # type: ignore[arg-type]
    return lambda function: Step(function, **options)  # type: ignore[arg-type]


class Pipeline:
    """A function whose step calls describe a graph; see :func:`pipeline`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function as plain Python: its steps execute eagerly, nothing is recorded."""
        return self.fn(*args, **kwargs)

    def default_params(self) -> dict[str, Any]:
        return {
            name: param.default
            for name, param in self.signature.parameters.items()
            if param.default is not inspect.Parameter.empty
        }

    def build(self, **params: Any) -> Graph:
        """Trace the pipeline with ``params`` (over the signature's defaults) into a :class:`Graph`.

        >>> graph = training.build(lr=0.2)
        >>> graph.params["lr"], len(graph)
        (0.2, 5)
        """
        known = [
            name
            for name, p in self.signature.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in self.signature.parameters.values())
        unknown = sorted(set(params) - set(known))
        if unknown and not takes_any:
            raise UnknownParamError(
                f"pipeline `{self.name}` has no parameter {', '.join(map(repr, unknown))}; "
                f"it takes: {', '.join(known) or 'no parameters'}.",
                pipeline=self.name,
                unknown=unknown,
                known=known,
            )
        values = {**self.default_params(), **params}
        missing = [name for name in known if name not in values]
        if missing:
            raise UnknownParamError(
                f"pipeline `{self.name}` needs a value for {', '.join(map(repr, missing))} (no default).",
                pipeline=self.name,
                unknown=[],
                known=known,
            )
        graph = Graph(self.name, values)
        token = _BUILDING.set(_Builder(graph))
        try:
            graph.result = self.fn(**values)
        finally:
            _BUILDING.reset(token)
        return graph

    def run(self, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Build with ``params`` and run tracked: outputs in the artifact store, the run, every step,
        the cache and lineage in the metadata store (see :func:`keel.pipelines.tracking.run_pipeline`
        for ``options``). For an untracked, in-memory run use ``run_graph(self.build(...))``."""
        from keel.pipelines.tracking import run_pipeline

        return run_pipeline(self, params, **options)


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline: its keyword parameters are the pipeline's params.

    >>> @pipeline
    ... def training(n: int = 100, lr: float = 0.1):
    ...     return train(load(n), lr=lr)
    >>> result = training.run({"lr": 0.2})
    >>> result.outputs
    """
    if fn is not None:
        return Pipeline(fn, name=name)
    return lambda function: Pipeline(function, name=name)
