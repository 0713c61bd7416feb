"""Content-addressed blob store: stored once, atomic, verified names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bildwerk.blobs import LocalBlobStore, sha256_file


def test_put_get_dedup(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.get(digest) == b"hello" and store.has(digest)
    assert store.put(b"hello") == digest
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == digest[2:]
    assert not os.access(files[0], os.W_OK) or os.geteuid() == 0  # stored read-only


def test_failed_write_leaves_no_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path / "blobs")

    def boom(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"data")
    digest = hashlib.sha256(b"data").hexdigest()
    assert not store.has(digest)
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))


def test_sweep_and_export(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(b"x" * 1000)
    (store.path(digest).parent / ".tmp-crashed").write_bytes(b"half")
    assert store.sweep_temp() == 1
    dest = store.export(digest, tmp_path / "out" / "file.bin")
    assert sha256_file(dest) == digest
    assert store.export(digest, dest) == dest  # idempotent


def test_rejects_bad_digest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha256"):
        LocalBlobStore(tmp_path).path("../../etc/passwd")
