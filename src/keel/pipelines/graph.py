"""The pipeline graph: nodes (one step call each), data edges, order, validation and drawings.

A :class:`Graph` is usually made by :meth:`keel.pipelines.Pipeline.build`, which records every step
call as a :class:`Node` whose arguments may hold :class:`Output` placeholders of earlier nodes.

Why tracing cannot make a cycle: a placeholder exists only once the node that makes it has been
added, so every edge points from an earlier node to a later one and insertion order is already a
topological order. Graphs assembled by hand with :meth:`Graph.add` may name nodes that are added
later, so they can form cycles; :meth:`Graph.validate` (run by :meth:`Graph.topological_order`)
rejects those, and arguments naming outputs that no node makes.

    >>> graph = my_pipeline.build(lr=0.1)
    >>> [node.id for node in graph.topological_order()]
    ['load', 'train[0]', 'train[1]', 'pick']
    >>> print(graph.render_text())
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInputError
from keel.pipelines.errors import CycleError, MissingInputError, PipelineDefinitionError

if TYPE_CHECKING:
    from keel.pipelines.steps import Step

__all__ = ["STATUSES", "Graph", "Node", "Output", "iter_outputs", "replace_outputs"]

#: the states a node can be in, as drawn by the renderers
STATUSES = ("done", "cached", "failed", "skipped", "pending", "running")
_SINGLE = "output"


@dataclass(frozen=True, slots=True)
class Output:
    """A placeholder for output ``name`` of node ``node``, handed out while a pipeline is built."""

    node: str
    name: str = _SINGLE

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            f"the output of step `{self.node}` is a placeholder while the pipeline is built; it has no "
            "value to test. Branch inside a step instead, or on a pipeline parameter."
        )

    def __iter__(self) -> Iterator[Any]:
        raise PipelineDefinitionError(
            f"the output of step `{self.node}` cannot be unpacked while the pipeline is built. Declare "
            "several outputs with @step(outputs=('a', 'b')) or a tuple return annotation."
        )

    def __repr__(self) -> str:
        return f"Output({self.node}.{self.name})" if self.name != _SINGLE else f"Output({self.node})"


def iter_outputs(value: Any) -> Iterator[Output]:
    """Every :class:`Output` inside ``value`` (lists, tuples and dicts are searched)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Output):
            yield item
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))


def replace_outputs(value: Any, lookup: Any) -> Any:
    """``value`` with every :class:`Output` replaced by ``lookup(output)``; containers are rebuilt."""
    if isinstance(value, Output):
        return lookup(value)
    if isinstance(value, list):
        return [replace_outputs(item, lookup) for item in value]
    if isinstance(value, tuple):
        return tuple(replace_outputs(item, lookup) for item in value)
    if isinstance(value, dict):
        return {key: replace_outputs(item, lookup) for key, item in value.items()}
    return value


@dataclass(slots=True)
class Node:
    """One call of a step: its id, the step, its bound arguments and the nodes it reads from.

    ``arguments`` maps parameter names to values, which may hold :class:`Output` placeholders;
    ``upstream`` is derived from them (in first-use order).
    """

    id: str
    step: Step
    arguments: dict[str, Any] = field(default_factory=dict)
    upstream: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, None] = {}
        for output in iter_outputs(list(self.arguments.values())):
            seen.setdefault(output.node, None)
        self.upstream = tuple(seen)

    def call_arguments(self, resolve: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for the step function, placeholders resolved."""
        resolved = {name: replace_outputs(value, resolve) for name, value in self.arguments.items()}
        bound = inspect.BoundArguments(self.step.signature, resolved)
        return bound.args, bound.kwargs


class Graph:
    """Nodes keyed by id, in insertion order, with the pipeline's result structure and params."""

    def __init__(self, name: str = "pipeline", params: dict[str, Any] | None = None):
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self.nodes: dict[str, Node] = {}
        #: the pipeline function's return value, with placeholders
        self.result: Any = None

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes)"

    def add(self, node: Node) -> Node:
        """Add ``node``; its upstream nodes may be added later. Missing arguments are refused now."""
        if node.id in self.nodes:
            raise InvalidInputError(f"the graph already has a node `{node.id}`; node ids must be unique")
        for param in node.step.signature.parameters.values():
            required = param.default is inspect.Parameter.empty and param.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            )
            if required and param.name not in node.arguments:
                raise MissingInputError(
                    f"step `{node.id}` is missing argument `{param.name}`; pass a value or another "
                    "step's output for it.",
                    node=node.id,
                    argument=param.name,
                )
        self.nodes[node.id] = node
        return node

    def downstream(self) -> dict[str, list[str]]:
        """For each node id, the ids of the nodes that read its outputs."""
        children: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for parent in node.upstream:
                if parent in children:
                    children[parent].append(node.id)
        return children

    def validate(self) -> None:
        """Check that every placeholder names an existing output and that there is no cycle."""
        self.topological_order()

    def _check_inputs(self) -> None:
        for node in self.nodes.values():
            for argument, value in node.arguments.items():
                for output in iter_outputs(value):
                    parent = self.nodes.get(output.node)
                    if parent is None:
                        raise MissingInputError(
                            f"step `{node.id}` argument `{argument}` reads the output of `{output.node}`, "
                            "which is not in the graph; add that node first.",
                            node=node.id,
                            argument=argument,
                        )
                    if output.name not in parent.step.output_names:
                        raise MissingInputError(
                            f"step `{node.id}` argument `{argument}` reads output `{output.name}` of "
                            f"`{parent.id}`, which makes only {list(parent.step.output_names)}.",
                            node=node.id,
                            argument=argument,
                        )

    def topological_order(self) -> list[Node]:
        """Nodes so that each comes after all it reads from (Kahn's algorithm, no recursion).

        Ties keep insertion order, so a traced graph comes back in the order its steps were called.
        Raises :class:`MissingInputError` or :class:`CycleError` naming the nodes involved.
        """
        self._check_inputs()
        indegree = {node_id: len(node.upstream) for node_id, node in self.nodes.items()}
        children = self.downstream()
        ready = deque(node_id for node_id, count in indegree.items() if count == 0)
        order: list[Node] = []
        while ready:
            node_id = ready.popleft()
            order.append(self.nodes[node_id])
            for child in children[node_id]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(order) != len(self.nodes):
            cycle = self._find_cycle({node_id for node_id, count in indegree.items() if count > 0})
            raise CycleError(
                f"the graph has a cycle: {' -> '.join([*cycle, cycle[0]])}. A step cannot depend, "
                "directly or through others, on its own output.",
                cycle=cycle,
            )
        return order

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        # every remaining node has a remaining parent, so walking up must revisit a node
        node_id = min(remaining)
        path: dict[str, int] = {}
        while node_id not in path:
            path[node_id] = len(path)
            node_id = next(parent for parent in self.nodes[node_id].upstream if parent in remaining)
        cycle = list(reversed(list(path)[path[node_id] :]))  # in data-flow order
        start = cycle.index(min(cycle))
        return cycle[start:] + cycle[:start]

    def layers(self) -> list[list[Node]]:
        """Nodes grouped by their longest distance from a source (layer 0 reads from nobody)."""
        depth: dict[str, int] = {}
        grouped: list[list[Node]] = []
        for node in self.topological_order():
            level = max((depth[parent] + 1 for parent in node.upstream), default=0)
            depth[node.id] = level
            if level == len(grouped):
                grouped.append([])
            grouped[level].append(node)
        return grouped

    def render_text(self, status: dict[str, str] | None = None) -> str:
        """A layered listing for terminals; see :func:`keel.pipelines.render.render_text`."""
        from keel.pipelines.render import render_text

        return render_text(self, status)

    def render_svg(self, status: dict[str, str] | None = None) -> str:
        """A self-contained SVG drawing; see :func:`keel.pipelines.render.render_svg`."""
        from keel.pipelines.render import render_svg

        return render_svg(self, status)
