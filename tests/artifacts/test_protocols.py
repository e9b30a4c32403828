"""Both artifact backends keep the ``BlobStore`` protocol, and ``RestStore`` is the ``BlobServer``
``RemoteArtifactStore`` talks through (no private attributes between the two layers)."""

from __future__ import annotations

import inspect

import pytest

from keel.artifacts.base import BlobServer, BlobStore
from keel.artifacts.remote import RemoteArtifactStore
from keel.artifacts.store import ArtifactStore
from keel.errors import NotFoundError
from keel.server.testing import ThreadedServer
from keel.store.rest import RestStore


def _declared(protocol: type) -> set[str]:
    return {n for n, _ in inspect.getmembers(protocol, inspect.isfunction) if not n.startswith("_")}


@pytest.mark.parametrize("backend", [ArtifactStore, RemoteArtifactStore])
def test_each_backend_has_the_blob_store_methods_with_their_signatures(backend):
    for name in _declared(BlobStore):
        assert inspect.signature(getattr(backend, name)) == inspect.signature(getattr(BlobStore, name)), name
    assert isinstance(backend.scratch, property)


def test_local_store_is_a_blob_store(tmp_path):
    assert isinstance(ArtifactStore(str(tmp_path / "blobs")), BlobStore)


def test_remote_store_downloads_through_the_servers_public_stream(tmp_path):
    with ThreadedServer(tmp_path / "server", auth=True) as server:
        store = RestStore(server.url, token=server.token, retries=1)
        assert isinstance(store, BlobServer)
        blobs = RemoteArtifactStore(store)
        assert isinstance(blobs, BlobStore)
        sha, size = blobs.put_bytes(b"hello blobs")
        assert size == 11
        dest = blobs.download(sha, tmp_path / "out" / "hello.txt")
        assert dest.read_bytes() == b"hello blobs"
        with pytest.raises(NotFoundError):  # the server's 404 arrives as keel's error
            blobs.download("0" * 64, tmp_path / "out" / "missing.txt")
        assert not (tmp_path / "out" / "missing.txt").exists()
        store.close()
