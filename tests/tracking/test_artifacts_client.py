"""Artifacts, lineage and dataset inputs through the fluent API and ``keel.Client`` (local store)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
from keel.errors import ArtifactCorruptedError, InvalidInputError, NotFoundError, UnsafePathError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names(run_id: str, prefix: str = "") -> list[str]:
    return [a.name for a in keel.Client().list_artifacts(run_id, prefix)]


@pytest.fixture
def folder(project: Path) -> Path:
    """A folder with a nested file: reports/summary.md and reports/sub/data.bin."""
    root = project / "reports"
    (root / "sub").mkdir(parents=True)
    (root / "summary.md").write_text("# summary\n")
    (root / "sub" / "data.bin").write_bytes(b"\x00\x01\x02")
    return root


# -- logging -------------------------------------------------------------------------------------


def test_log_artifact_of_a_file_uses_its_name_and_records_sha_and_size(project: Path) -> None:
    source = project / "weights.bin"
    source.write_bytes(b"w" * 1000)
    with keel.start_run(system_metrics=False) as run:
        logged = keel.log_artifact(source)
        renamed = keel.log_artifact(source, "checkpoints/last.bin")
    assert [a.name for a in logged] == ["weights.bin"]
    assert [a.name for a in renamed] == ["checkpoints/last.bin"]
    (artifact,) = keel.Client().list_artifacts(run.run_id, "weights.bin")
    assert artifact.sha256 == sha(b"w" * 1000)
    assert artifact.size == 1000
    assert artifact.run_id == run.run_id
    blob = project / ".keel" / "artifacts" / artifact.sha256[:2] / artifact.sha256
    assert blob.read_bytes() == b"w" * 1000  # logged twice, stored once
    assert len([p for p in (project / ".keel" / "artifacts").rglob("*") if p.is_file()]) == 1


def test_client_gets_one_artifact_by_name_and_offers_its_artifact_store(project: Path) -> None:
    """What pipelines and the CLI use instead of the client's private context."""
    with keel.start_run(system_metrics=False) as run:
        keel.log_text("hello", "notes/a.txt")
        keel.log_text("other", "notes/a.txt.bak")
    client = keel.Client()
    found = client.get_artifact(run.run_id, "notes/a.txt")  # an exact name, not a prefix
    assert (found.name, found.sha256) == ("notes/a.txt", sha(b"hello"))
    assert client.artifacts.read_bytes(found.sha256) == b"hello"
    with pytest.raises(NotFoundError, match="has no artifact 'notes'"):
        client.get_artifact(run.run_id, "notes")


def test_log_artifact_of_a_folder_prefixes_names_with_the_folder_name(folder: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        logged = keel.log_artifact(folder)
        keel.log_artifact(folder, "copy/of")
    assert [a.name for a in logged] == ["reports/sub/data.bin", "reports/summary.md"]
    assert names(run.run_id) == [
        "copy/of/sub/data.bin",
        "copy/of/summary.md",
        "reports/sub/data.bin",
        "reports/summary.md",
    ]
    client = keel.Client()
    assert client.read_artifact(run.run_id, "reports/sub/data.bin") == b"\x00\x01\x02"
    assert client.read_artifact(run.run_id, "copy/of/summary.md") == b"# summary\n"


def test_log_artifact_of_a_missing_path_is_not_found(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run, pytest.raises(NotFoundError, match="nope"):
        keel.log_artifact(project / "nope")
    assert names(run.run_id) == []


def test_log_text_stores_utf8_with_a_text_media_type(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        artifact = keel.log_text("héllo ✓\n", "notes/readme.txt")
    assert artifact.media_type == "text/plain"
    assert artifact.size == len("héllo ✓\n".encode())
    assert keel.Client().read_artifact(run.run_id, "notes/readme.txt").decode() == "héllo ✓\n"


def test_logging_the_same_name_again_replaces_the_artifact(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        keel.log_text("first", "status.txt")
        keel.log_text("second", "status.txt")
    assert names(run.run_id) == ["status.txt"]
    assert keel.Client().read_artifact(run.run_id, "status.txt") == b"second"


def test_log_dict_keeps_nan_and_infinities(project: Path) -> None:
    data = {"x": float("nan"), "up": float("inf"), "down": float("-inf"), "arr": np.arange(3), "n": 1}
    with keel.start_run(system_metrics=False) as run:
        artifact = keel.log_dict(data, "metrics/summary.json")
    assert artifact.media_type == "application/json"
    back = json.loads(keel.Client().read_artifact(run.run_id, "metrics/summary.json"))
    assert math.isnan(back["x"])
    assert back["up"] == math.inf
    assert back["down"] == -math.inf
    assert back["arr"] == [0, 1, 2]
    assert back["n"] == 1


def test_log_figure_writes_png_or_svg_by_suffix(project: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1, 2], [2, 1, 3])
    with keel.start_run(system_metrics=False) as run:
        png = keel.log_figure(figure, "plots/loss.png")
        keel.log_figure(figure, "plots/loss.svg")
    assert png.media_type == "image/png"
    client = keel.Client()
    assert client.read_artifact(run.run_id, "plots/loss.png").startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in client.read_artifact(run.run_id, "plots/loss.svg")


def test_log_table_as_parquet_and_csv_reads_back_equal(project: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.5, float("nan"), 1.5], "label": ["a", "b", "c"]})
    with keel.start_run(system_metrics=False) as run:
        parquet = keel.log_table(frame, "tables/scores.parquet")
        keel.log_table(frame, "tables/scores.csv")
        keel.log_table(frame, "tables/bare")
    assert parquet.media_type == "application/vnd.apache.parquet"
    assert names(run.run_id, "tables") == [
        "tables/bare.parquet",
        "tables/scores.csv",
        "tables/scores.parquet",
    ]
    dest = tmp_path / "out"
    keel.Client().download_artifacts(run.run_id, "tables", dest)
    pd.testing.assert_frame_equal(pd.read_parquet(dest / "tables" / "scores.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(dest / "tables" / "bare.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_csv(dest / "tables" / "scores.csv"), frame)


def test_log_table_refuses_an_unknown_format(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run, pytest.raises(InvalidInputError, match="parquet"):
        keel.log_table(pd.DataFrame({"a": [1]}), "table.xlsx")
    assert names(run.run_id) == []


# -- listing and downloading ---------------------------------------------------------------------


def test_list_artifacts_prefix_matches_whole_folder_names(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        for name in ["plots/a.png", "plots/sub/b.png", "plots2/c.png", "plots.txt", "z.txt"]:
            keel.log_text(name, name)
    assert names(run.run_id) == ["plots.txt", "plots/a.png", "plots/sub/b.png", "plots2/c.png", "z.txt"]
    assert names(run.run_id, "plots") == ["plots/a.png", "plots/sub/b.png"]
    assert names(run.run_id, "plots/") == ["plots/a.png", "plots/sub/b.png"]
    assert names(run.run_id, "plots/sub") == ["plots/sub/b.png"]
    assert names(run.run_id, "z.txt") == ["z.txt"]
    assert names(run.run_id, "plot") == []
    assert names(run.run_id, "%") == []  # LIKE wildcards in a prefix are literal


def test_download_one_file(folder: Path, tmp_path: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        keel.log_artifact(folder)
    path = keel.Client().download_artifacts(run.run_id, "reports/sub/data.bin", tmp_path / "one")
    assert path == (tmp_path / "one" / "data.bin").resolve()
    assert path.read_bytes() == b"\x00\x01\x02"
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["data.bin"]


def test_download_a_folder_keeps_its_name_and_structure(folder: Path, tmp_path: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        keel.log_artifact(folder)
        keel.log_text("elsewhere", "other.txt")
    dest = tmp_path / "many"
    path = keel.Client().download_artifacts(run.run_id, "reports", dest)
    assert path == dest / "reports"
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["reports/sub/data.bin", "reports/summary.md"]
    assert (dest / "reports" / "summary.md").read_text() == "# summary\n"


def test_download_everything(folder: Path, tmp_path: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        keel.log_artifact(folder)
        keel.log_text("top", "top.txt")
    dest = tmp_path / "all"
    keel.Client().download_artifacts(run.run_id, "", dest)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["reports/sub/data.bin", "reports/summary.md", "top.txt"]


def test_download_or_read_of_an_unknown_name_is_not_found(project: Path, tmp_path: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        keel.log_text("x", "a.txt")
    client = keel.Client()
    with pytest.raises(NotFoundError, match="nothing-here"):
        client.download_artifacts(run.run_id, "nothing-here", tmp_path / "out")
    with pytest.raises(NotFoundError):
        client.read_artifact(run.run_id, "a")  # a prefix of a name is not the name


def test_download_of_a_tampered_blob_fails_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        artifact = keel.log_text("precious", "result.txt")
    blob = project / ".keel" / "artifacts" / artifact.sha256[:2] / artifact.sha256
    blob.write_bytes(b"tampered")
    client = keel.Client()
    with pytest.raises(ArtifactCorruptedError):
        client.download_artifacts(run.run_id, "result.txt", tmp_path / "out")
    assert not (tmp_path / "out" / "result.txt").exists()
    with pytest.raises(ArtifactCorruptedError):
        client.read_artifact(run.run_id, "result.txt")


# -- unsafe names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b", "a\\..\\b", "C:/x", "a//b", "./a"])
def test_unsafe_names_are_refused_and_nothing_is_recorded(project: Path, name: str) -> None:
    with keel.start_run(system_metrics=False) as run:
        with pytest.raises(UnsafePathError):
            keel.log_text("x", name)
        with pytest.raises(UnsafePathError):
            keel.log_dict({"a": 1}, name)
    assert names(run.run_id) == []
    blobs = project / ".keel" / "artifacts"
    assert not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]
    assert not (project.parent / "evil").exists()


def test_unsafe_folder_name_is_refused_before_any_file_is_logged(folder: Path) -> None:
    with keel.start_run(system_metrics=False) as run, pytest.raises(UnsafePathError):
        keel.log_artifact(folder, "../outside")
    assert names(run.run_id) == []


def test_name_breaking_the_naming_convention_is_refused(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run, pytest.raises(keel.NameRuleError):
        keel.log_text("x", "notes/-bad.txt")
    assert names(run.run_id) == []


# -- lineage -------------------------------------------------------------------------------------


def test_use_artifact_links_the_producer_and_the_consumer(project: Path) -> None:
    client = keel.Client()
    with keel.start_run(system_metrics=False, name="producer") as producer:
        artifact = keel.log_text("features v1", "features/train.csv")
    with keel.start_run(system_metrics=False, name="consumer") as consumer:
        used = client.use_artifact(consumer.run_id, producer.run_id, "features/train.csv")
        client.use_artifact(consumer.run_id, producer.run_id, "features/train.csv")  # recorded once
    assert used.sha256 == artifact.sha256
    edges = {(e.run_id, e.direction, e.name) for e in client.lineage(artifact.sha256)}
    assert edges == {
        (producer.run_id, "output", "features/train.csv"),
        (consumer.run_id, "input", "features/train.csv"),
    }
    assert len(client.lineage(artifact.sha256)) == 2
    assert [(e.direction, e.sha256) for e in client.run_lineage(consumer.run_id)] == [
        ("input", artifact.sha256)
    ]
    assert client.lineage(sha(b"unrelated")) == []


def test_use_artifact_of_a_missing_name_is_not_found(project: Path) -> None:
    client = keel.Client()
    with keel.start_run(system_metrics=False) as producer:
        keel.log_text("x", "a.txt")
    with keel.start_run(system_metrics=False) as consumer, pytest.raises(NotFoundError):
        client.use_artifact(consumer.run_id, producer.run_id, "b.txt")
    assert client.run_lineage(consumer.run_id) == []


# -- dataset inputs ------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3, 4], "y": [0.5, 1.5, 2.5, 3.5], "label": list("abab")})


def test_log_input_dataframe_fingerprint_is_stable_and_content_based(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run:
        first = keel.log_input(_frame(), name="train")
        again = keel.log_input(_frame(), name="train", context="validation")
        changed_frame = _frame()
        changed_frame.loc[2, "y"] = 99.0
        changed = keel.log_input(changed_frame, name="train")
        retyped = keel.log_input(_frame().astype({"x": "float64"}), name="train")
        renamed = keel.log_input(_frame().rename(columns={"label": "target"}), name="train")
    assert first.fingerprint == again.fingerprint
    assert first.dataset_id == again.dataset_id  # same name and data: one dataset version
    assert len({first.fingerprint, changed.fingerprint, retyped.fingerprint, renamed.fingerprint}) == 4
    assert first.row_count == 4
    assert first.schema == {
        "columns": [
            {"name": "x", "dtype": "int64"},
            {"name": "y", "dtype": "float64"},
            {"name": "label", "dtype": str(_frame()["label"].dtype)},  # object, or str on pandas 3
        ]
    }
    inputs = keel.Client().list_inputs(run.run_id)
    assert {(d.fingerprint, d.context) for d in inputs} >= {
        (first.fingerprint, "training"),
        (first.fingerprint, "validation"),
    }


def test_log_input_numpy_array(project: Path) -> None:
    with keel.start_run(system_metrics=False):
        first = keel.log_input(np.arange(12, dtype=np.float32).reshape(6, 2))
        again = keel.log_input(np.arange(12, dtype=np.float32).reshape(6, 2))
        reshaped = keel.log_input(np.arange(12, dtype=np.float32).reshape(4, 3))
        changed = keel.log_input(np.arange(1, 13, dtype=np.float32).reshape(6, 2))
        strided = keel.log_input(np.arange(24, dtype=np.float32).reshape(6, 4)[:, ::2])
        strided_copy = keel.log_input(
            np.ascontiguousarray(np.arange(24, dtype=np.float32).reshape(6, 4)[:, ::2])
        )
    assert first.fingerprint == again.fingerprint
    assert len({first.fingerprint, reshaped.fingerprint, changed.fingerprint}) == 3
    assert strided.fingerprint == strided_copy.fingerprint  # a view and its copy hold the same data
    assert (first.row_count, reshaped.row_count) == (6, 4)
    assert first.schema == {"dtype": "float32", "shape": [6, 2]}
    assert first.name == "array"


def test_log_input_file_path_fingerprints_bytes_not_location(project: Path) -> None:
    one = project / "one.csv"
    two = project / "two.csv"
    one.write_text("a,b\n1,2\n")
    two.write_text("a,b\n1,2\n")
    with keel.start_run(system_metrics=False) as run:
        first = keel.log_input(one)
        copy = keel.log_input(str(two))
        one.write_text("a,b\n1,3\n")
        changed = keel.log_input(one)
        with pytest.raises(InvalidInputError, match="does not exist"):
            keel.log_input(project / "missing.csv")
    assert first.fingerprint == copy.fingerprint == sha(b"a,b\n1,2\n")
    assert changed.fingerprint == sha(b"a,b\n1,3\n")
    assert first.name == "one.csv"
    assert first.source == str(one.resolve())
    assert first.row_count is None
    assert len(keel.Client().list_inputs(run.run_id)) == 3


def test_log_input_folder_fingerprint_depends_on_names_and_bytes(project: Path) -> None:
    data = project / "data"
    (data / "part").mkdir(parents=True)
    (data / "part" / "0.csv").write_text("1\n")
    (data / "1.csv").write_text("2\n")
    with keel.start_run(system_metrics=False):
        first = keel.log_input(data)
        again = keel.log_input(data)
        (data / "1.csv").rename(data / "renamed.csv")
        renamed = keel.log_input(data)
    assert first.fingerprint == again.fingerprint
    assert renamed.fingerprint != first.fingerprint


def test_log_input_refuses_what_it_cannot_fingerprint(project: Path) -> None:
    with keel.start_run(system_metrics=False) as run, pytest.raises(InvalidInputError, match="fingerprint"):
        keel.log_input({"a": [1, 2]})
    assert keel.Client().list_inputs(run.run_id) == []


def test_loading_a_model_registered_through_mlflow_says_how_to_load_it(project):
    client = keel.Client()
    sha, _ = client._context.artifacts.put_bytes(b"artifact_path: model\nflavors: {}\n")
    client.store.create_registered_model("from-mlflow")
    client.store.create_model_version("from-mlflow", artifact_sha256=sha, flavor="mlflow")
    with pytest.raises(InvalidInputError, match="mlflow.pyfunc.load_model"):
        client.load_model("models:/from-mlflow/1")
    client.store.create_model_version("from-mlflow", artifact_sha256=sha, flavor="sklearn")
    with pytest.raises(InvalidInputError, match="no keel model manifest"):
        client.load_model("models:/from-mlflow/2")
