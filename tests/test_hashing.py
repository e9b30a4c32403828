"""keel.hashing: the sha256 rules every layer shares (the store and lineage check addresses with it)."""

from __future__ import annotations

import hashlib

import pytest

from keel.errors import InvalidInputError
from keel.hashing import check_sha256, sha256_file


@pytest.mark.parametrize("bad", ["", "A" * 64, "g" * 64, "a" * 63, "../" + "a" * 61, None])
def test_check_sha256_refuses_what_is_not_one(bad):
    with pytest.raises(InvalidInputError, match="is not a sha256"):
        check_sha256(bad)


def test_check_sha256_returns_a_good_one_and_sha256_file_hashes_in_blocks(tmp_path):
    data = b"x" * ((1 << 20) + 7)  # more than one block
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == (expected, len(data))
    assert check_sha256(expected) == expected
