"""Lineage queries: what produced an artifact and what used it; what used a dataset, down to models.

Runs record their inputs (dataset versions, artifacts of other runs) and outputs (artifacts), pipeline
steps record the artifacts they read and wrote, and model versions record the run they came from.
These functions join them up:

    >>> found = artifact_lineage(client, "9f2c…")          # doctest: +SKIP
    >>> [edge.run_id for edge in found.produced_by], [use.node for use in found.steps]
    >>> data = dataset_lineage(client, "sklearn/breast_cancer")   # doctest: +SKIP
    >>> [(v.name, v.version) for v in data.model_versions]
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keel.entities import DatasetUse, LineageEdge, ModelVersion, StepUse
from keel.hashing import check_sha256

__all__ = ["ArtifactLineage", "DatasetLineage", "artifact_lineage", "dataset_lineage"]


@dataclasses.dataclass(frozen=True)
class ArtifactLineage:
    """Everything that produced or read one artifact (by content hash)."""

    sha256: str
    produced_by: list[LineageEdge]
    used_by: list[LineageEdge]
    #: pipeline steps that wrote it (computed, not taken from the cache) or read it
    steps: list[StepUse]
    #: model versions registered from runs that produced it
    model_versions: list[ModelVersion]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "produced_by": [dataclasses.asdict(edge) for edge in self.produced_by],
            "used_by": [dataclasses.asdict(edge) for edge in self.used_by],
            "steps": [dataclasses.asdict(use) for use in self.steps],
            "model_versions": [_version(v) for v in self.model_versions],
        }


@dataclasses.dataclass(frozen=True)
class DatasetLineage:
    """The runs that used a dataset, what they produced, and the models registered from them."""

    name: str
    uses: list[DatasetUse]
    #: artifacts written by those runs
    outputs: list[LineageEdge]
    model_versions: list[ModelVersion]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uses": [
                {
                    "run_id": use.run_id,
                    "fingerprint": use.dataset.fingerprint,
                    "context": use.dataset.context,
                    "row_count": use.dataset.row_count,
                    "source": use.dataset.source,
                }
                for use in self.uses
            ],
            "outputs": [dataclasses.asdict(edge) for edge in self.outputs],
            "model_versions": [_version(v) for v in self.model_versions],
        }


def _version(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "project": version.project,
        "version": version.version,
        "run_id": version.run_id,
        "aliases": list(version.aliases),
        "artifact_sha256": version.artifact_sha256,
    }


def artifact_lineage(client: Any, sha256: str) -> ArtifactLineage:
    """What produced and what read the artifact with this sha256 (see :class:`ArtifactLineage`)."""
    sha256 = check_sha256(sha256.strip().lower())
    store = client.store
    edges = store.lineage(sha256)
    produced = [edge for edge in edges if edge.direction == "output"]
    used = [edge for edge in edges if edge.direction == "input"]
    versions = store.model_versions_from_runs([e.run_id for e in produced])
    return ArtifactLineage(sha256, produced, used, store.step_uses(sha256), versions)


def dataset_lineage(client: Any, name: str, fingerprint: str | None = None) -> DatasetLineage:
    """The runs that used dataset ``name`` (one version with ``fingerprint``, a prefix is enough),
    their outputs and the model versions registered from them."""
    store = client.store
    uses = store.dataset_usage(name, fingerprint)
    runs = list(dict.fromkeys(use.run_id for use in uses))
    outputs: list[LineageEdge] = []
    for run_id in runs:
        outputs += [edge for edge in store.run_lineage(run_id) if edge.direction == "output"]
    return DatasetLineage(name, uses, outputs, store.model_versions_from_runs(runs))
