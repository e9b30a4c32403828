"""The content-addressed artifact store (local folder and S3) and the rules for artifact names."""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.artifacts import ArtifactStore, check_artifact_name, media_type, safe_destination
from keel.errors import ArtifactCorruptedError, InvalidInputError, NotFoundError, UnsafePathError

BUCKET = "keel-test"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- backends ------------------------------------------------------------------------------------


@dataclass
class Backend:
    """An ArtifactStore plus out-of-band access to the bytes it keeps (to corrupt or delete them)."""

    store: ArtifactStore
    overwrite: Callable[[str, bytes], None]
    delete: Callable[[str], None]
    keys: Callable[[], list[str]]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port) with one bucket, for the whole module."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """A boto3 client for the moto server; KEEL_S3_ENDPOINT_URL points keel at it for this test."""
    import boto3

    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    return boto3.client("s3", endpoint_url=s3_endpoint)


def _local_backend(root: Path) -> Backend:
    store = ArtifactStore(str(root))

    def blob(digest: str) -> Path:
        return root / digest[:2] / digest

    return Backend(
        store=store,
        overwrite=lambda digest, data: blob(digest).write_bytes(data),
        delete=lambda digest: blob(digest).unlink(),
        keys=lambda: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
    )


def _s3_backend(client: object, prefix: str) -> Backend:
    store = ArtifactStore(f"s3://{BUCKET}/{prefix}")

    def key(digest: str) -> str:
        return f"{prefix}/{digest[:2]}/{digest}"

    def keys() -> list[str]:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")  # type: ignore[attr-defined]
        return sorted(item["Key"][len(prefix) + 1 :] for item in listed.get("Contents", []))

    return Backend(
        store=store,
        overwrite=lambda digest, data: client.put_object(  # type: ignore[attr-defined]
            Bucket=BUCKET, Key=key(digest), Body=data
        ),
        delete=lambda digest: client.delete_object(Bucket=BUCKET, Key=key(digest)),  # type: ignore[attr-defined]
        keys=keys,
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path / "blobs")
    client = request.getfixturevalue("s3_client")
    return _s3_backend(client, f"prefix-{uuid.uuid4().hex[:8]}")


# -- writing -------------------------------------------------------------------------------------


def test_put_bytes_returns_sha_and_size_and_uses_the_two_level_layout(backend: Backend) -> None:
    data = b"hello keel\n"
    assert backend.store.put_bytes(data) == (sha(data), len(data))
    digest = sha(data)
    assert backend.keys() == [f"{digest[:2]}/{digest}"]
    assert backend.store.exists(digest)


def test_size_of_a_stored_blob_and_none_for_a_missing_one(backend: Backend) -> None:
    """The server checks recorded sizes against this (no reaching into the store's keys)."""
    digest, size = backend.store.put_bytes(b"twelve bytes")
    assert backend.store.size(digest) == size == 12
    assert backend.store.size(sha(b"never stored")) is None


def test_put_file_returns_sha_and_size(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several read blocks, not a multiple of the block size
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    digest, size = backend.store.put_file(source)
    assert (digest, size) == (sha(data), len(data))
    assert backend.store.read_bytes(digest) == data
    assert source.read_bytes() == data  # the source is copied, never moved


def test_local_blob_lives_at_root_ab_abcdef_with_no_temporary_files_left(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = ArtifactStore(str(root))
    digest, _ = store.put_bytes(b"payload")
    assert (root / digest[:2] / digest).read_bytes() == b"payload"
    assert [p.name for p in root.rglob("*") if p.is_file()] == [digest]
    assert store.root == str(root.resolve())


def test_file_uri_is_the_same_local_store(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    digest, _ = ArtifactStore(f"file://{root}").put_bytes(b"via file uri")
    assert ArtifactStore(str(root)).read_bytes(digest) == b"via file uri"


def test_storing_the_same_bytes_twice_keeps_one_blob(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"same bytes")
    first = backend.store.put_file(source)
    second = backend.store.put_bytes(b"same bytes")
    third = backend.store.put_file(source)
    assert first == second == third
    assert backend.keys() == [f"{first[0][:2]}/{first[0]}"]
    backend.store.put_bytes(b"other bytes")
    assert len(backend.keys()) == 2


def test_empty_blob(backend: Backend, tmp_path: Path) -> None:
    digest, size = backend.store.put_bytes(b"")
    assert (digest, size) == (sha(b""), 0)
    assert backend.store.read_bytes(digest) == b""
    assert backend.store.download(digest, tmp_path / "empty").read_bytes() == b""


# -- reading -------------------------------------------------------------------------------------


def test_read_bytes_returns_the_stored_bytes(backend: Backend) -> None:
    data = bytes(range(256)) * 10
    digest, _ = backend.store.put_bytes(data)
    assert backend.store.read_bytes(digest) == data


def test_download_writes_a_verified_file_creating_folders(backend: Backend, tmp_path: Path) -> None:
    data = b"model weights"
    digest, _ = backend.store.put_bytes(data)
    dest = tmp_path / "out" / "deep" / "w.bin"
    assert backend.store.download(digest, dest) == dest
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]  # no temporary file left


def test_download_replaces_an_existing_file(backend: Backend, tmp_path: Path) -> None:
    digest, _ = backend.store.put_bytes(b"new")
    dest = tmp_path / "x.bin"
    dest.write_bytes(b"old contents")
    backend.store.download(digest, dest)
    assert dest.read_bytes() == b"new"


def test_changed_blob_is_refused_by_read_bytes(backend: Backend) -> None:
    digest, _ = backend.store.put_bytes(b"original")
    backend.overwrite(digest, b"tampered")
    with pytest.raises(ArtifactCorruptedError, match="corrupted") as caught:
        backend.store.read_bytes(digest)
    assert caught.value.expected == digest
    assert caught.value.actual == sha(b"tampered")


def test_changed_blob_is_refused_by_download_and_nothing_is_written(backend: Backend, tmp_path: Path) -> None:
    digest, _ = backend.store.put_bytes(b"original")
    backend.overwrite(digest, b"tampered")
    folder = tmp_path / "out"
    with pytest.raises(ArtifactCorruptedError) as caught:
        backend.store.download(digest, folder / "file.bin")
    assert caught.value.actual == sha(b"tampered")
    assert not (folder / "file.bin").exists()
    assert list(folder.iterdir()) == []  # the temporary download is cleaned up too


def test_corrupted_download_keeps_an_existing_destination_untouched(backend: Backend, tmp_path: Path) -> None:
    digest, _ = backend.store.put_bytes(b"original")
    backend.overwrite(digest, b"tampered")
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"previous good copy")
    with pytest.raises(ArtifactCorruptedError):
        backend.store.download(digest, dest)
    assert dest.read_bytes() == b"previous good copy"


def test_missing_blob_is_not_found(backend: Backend, tmp_path: Path) -> None:
    digest = sha(b"never stored")
    assert not backend.store.exists(digest)
    with pytest.raises(NotFoundError, match=digest):
        backend.store.read_bytes(digest)
    with pytest.raises(NotFoundError, match=digest):
        backend.store.download(digest, tmp_path / "out" / "x")
    assert list((tmp_path / "out").iterdir()) == []


def test_deleted_blob_is_not_found_and_storing_again_restores_it(backend: Backend) -> None:
    digest, _ = backend.store.put_bytes(b"ephemeral")
    backend.delete(digest)
    assert not backend.store.exists(digest)
    with pytest.raises(NotFoundError):
        backend.store.read_bytes(digest)
    backend.store.put_bytes(b"ephemeral")
    assert backend.store.read_bytes(digest) == b"ephemeral"


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "",
        sha(b"x").upper(),
        sha(b"x")[:-1] + "g",
        sha(b"x") + "0",
        f"../{sha(b'x')[3:]}",
        "/" + sha(b"x")[1:],
        None,
        123,
    ],
)
def test_anything_but_a_sha256_is_invalid_input(backend: Backend, bad: object, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        backend.store.read_bytes(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        backend.store.exists(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        backend.store.download(bad, tmp_path / "x")  # type: ignore[arg-type]


# -- S3 specifics --------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_blobs_live_under_the_prefix_in_the_bucket(s3_client: object) -> None:
    backend = _s3_backend(s3_client, "layout")
    digest, _ = backend.store.put_bytes(b"on s3")
    body = s3_client.get_object(Bucket=BUCKET, Key=f"layout/{digest[:2]}/{digest}")  # type: ignore[attr-defined]
    assert body["Body"].read() == b"on s3"


@pytest.mark.s3
def test_s3_dedup_is_not_fooled_by_a_cached_listing(s3_client: object) -> None:
    """s3fs caches directory listings on its (process-wide, shared) filesystem object. A blob deleted
    behind keel's back after anything listed its folder must still count as missing, or put_bytes
    skips the upload and the run records an artifact whose bytes exist nowhere."""
    backend = _s3_backend(s3_client, f"cache-{uuid.uuid4().hex[:8]}")
    digest, _ = backend.store.put_bytes(b"listed then deleted")
    backend.store.fs.ls(f"{backend.store.root}/{digest[:2]}")  # anything in the process listing the folder
    backend.delete(digest)
    assert not backend.store.exists(digest)
    backend.store.put_bytes(b"listed then deleted")
    assert backend.keys() == [f"{digest[:2]}/{digest}"]


# -- end to end through the client on S3 ---------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("endpoint_variable", ["KEEL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"])
def test_client_logs_and_downloads_artifacts_on_s3(
    project: Path,
    s3_endpoint: str,
    s3_client: object,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    endpoint_variable: str,
) -> None:
    import keel

    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv("KEEL_S3_ENDPOINT_URL")
    monkeypatch.setenv(endpoint_variable, s3_endpoint)
    monkeypatch.setenv("KEEL_ARTIFACT_URI", f"s3://{BUCKET}/{prefix}")
    folder = project / "reports"
    (folder / "sub").mkdir(parents=True)
    (folder / "summary.md").write_text("# summary\n")
    (folder / "sub" / "data.bin").write_bytes(b"\x00\x01binary")

    with keel.start_run(system_metrics=False) as run:
        keel.log_text("hi", "notes/a.txt")
        keel.log_dict({"x": float("nan")}, "d.json")
        keel.log_artifact(folder)

    client = keel.Client()
    assert client.artifact_uri == f"s3://{BUCKET}/{prefix}"
    names = [a.name for a in client.list_artifacts(run.run_id)]
    assert names == ["d.json", "notes/a.txt", "reports/sub/data.bin", "reports/summary.md"]
    stored = _s3_backend(s3_client, prefix).keys()
    assert sorted(key.split("/")[1] for key in stored) == sorted(
        a.sha256 for a in client.list_artifacts(run.run_id)
    )
    assert not (project / ".keel" / "artifacts").exists()  # nothing went to the local default

    dest = tmp_path / "download"
    client.download_artifacts(run.run_id, "", dest)
    assert (dest / "notes" / "a.txt").read_text() == "hi"
    assert math.isnan(json.loads((dest / "d.json").read_text())["x"])
    assert (dest / "reports" / "summary.md").read_text() == "# summary\n"
    assert (dest / "reports" / "sub" / "data.bin").read_bytes() == b"\x00\x01binary"
    assert client.read_artifact(run.run_id, "notes/a.txt") == b"hi"


# -- names ---------------------------------------------------------------------------------------

UNSAFE_NAMES = [
    "..",
    "a/../b",
    "../evil",
    "a/..",
    "/etc/passwd",
    "a\\b",
    "..\\evil",
    "a\x00b",
    "C:/x",
    "c:evil",
    "",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    ".",
    "a\nb",
    "a\tb",
    "a\rb",
    "a\x1bb",
    "a\x7fb",
    "x" * 600,
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_names_are_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError):
        check_artifact_name(name)
    with pytest.raises(UnsafePathError):
        safe_destination(tmp_path, name)


@pytest.mark.parametrize("name", [None, 7, b"bytes"])
def test_non_string_names_are_rejected(name: object) -> None:
    with pytest.raises(UnsafePathError):
        check_artifact_name(name)  # type: ignore[arg-type]


def test_unsafe_name_error_says_what_is_wrong() -> None:
    with pytest.raises(UnsafePathError, match=r"'a/\.\./b'.*'\.\.' segment"):
        check_artifact_name("a/../b")
    with pytest.raises(UnsafePathError, match="absolute"):
        check_artifact_name("/etc/passwd")
    with pytest.raises(UnsafePathError, match="600 characters long; the limit is 512"):
        check_artifact_name("x" * 600)
    assert issubclass(UnsafePathError, InvalidInputError)


def test_name_length_limit_is_inclusive() -> None:
    assert check_artifact_name("a" * 512) == "a" * 512
    with pytest.raises(UnsafePathError):
        check_artifact_name("a" * 513)


@pytest.mark.parametrize(
    "name",
    ["plots/loss.png", "model/keel-model.json", "a", "a.b/c..d/e", "...hidden", "x y/z@v1+2=3,4.txt"],
)
def test_valid_names_are_kept_and_land_inside_the_root(name: str, tmp_path: Path) -> None:
    assert check_artifact_name(name) == name
    target = safe_destination(tmp_path, name)
    assert target == tmp_path.resolve() / name
    assert tmp_path.resolve() in target.parents


def test_safe_destination_refuses_a_symlink_that_leads_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside"):
        safe_destination(root, "link/file.txt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plots/loss.png", "image/png"),
        ("model/keel-model.json", "application/json"),
        ("table.parquet", "application/vnd.apache.parquet"),
        ("TABLE.PARQUET", "application/vnd.apache.parquet"),
        ("weights.safetensors", "application/octet-stream"),
        ("notes.txt", "text/plain"),
        ("blob.unknownsuffix", "application/octet-stream"),
        ("no-suffix", "application/octet-stream"),
    ],
)
def test_media_type(name: str, expected: str) -> None:
    assert media_type(name) == expected
