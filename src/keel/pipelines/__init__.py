"""Pipelines: plain functions as steps, a DAG from data dependencies, cached and materialized outputs.

>>> from keel.pipelines import pipeline, step, run_graph, FolderSink, MemoryCache
>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> @pipeline
... def demo(n: int = 3):
...     return double(double(n))
>>> run_graph(demo.build(n=5)).outputs
20
"""

from __future__ import annotations

from keel.pipelines.cache import CacheKey, cache_key, explain, source_hashes
from keel.pipelines.errors import (
    CycleError,
    MissingInputError,
    NoMaterializerError,
    PipelineDefinitionError,
    StepFailedError,
    StepTimeoutError,
    UnknownParamError,
)
from keel.pipelines.graph import Graph, Node, Output
from keel.pipelines.materializers import (
    Materializer,
    load_output,
    register_materializer,
    save_output,
    unregister_materializer,
)
from keel.pipelines.runner import Cache, FolderSink, MemoryCache, NodeRecord, RunResult, Sink, run_graph
from keel.pipelines.steps import Pipeline, Step, pipeline, step
from keel.pipelines.tracking import StoreCache, StoreSink, run_pipeline

__all__ = [
    "Cache",
    "CacheKey",
    "CycleError",
    "FolderSink",
    "Graph",
    "Materializer",
    "MemoryCache",
    "MissingInputError",
    "NoMaterializerError",
    "Node",
    "NodeRecord",
    "Output",
    "Pipeline",
    "PipelineDefinitionError",
    "RunResult",
    "Sink",
    "Step",
    "StepFailedError",
    "StepTimeoutError",
    "StoreCache",
    "StoreSink",
    "UnknownParamError",
    "cache_key",
    "explain",
    "load_output",
    "pipeline",
    "register_materializer",
    "run_graph",
    "run_pipeline",
    "save_output",
    "source_hashes",
    "step",
    "unregister_materializer",
]
