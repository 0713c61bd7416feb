"""The contract every :class:`~bildwerk.blobs.BlobStore` passes: round trips, verified
reads, errors that name the digest and ``bildwerk fsck``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class BlobStoreContract:
    """Tests every :class:`~bildwerk.blobs.BlobStore` must pass. Subclass it in a
    ``Test…`` class and implement :meth:`make_store` and :meth:`damage`::

        class TestMyStore(BlobStoreContract):
            def make_store(self, tmp_path): return MyStore(...)
            def damage(self, store, digest): ...  # flip a byte of the stored copy
    """

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    def damage(self, store: Any, digest: str) -> None:
        """Flip one byte of the authoritative copy of ``digest``."""
        raise NotImplementedError

    def test_put_get_round_trip(self, tmp_path: Path) -> None:
        import hashlib

        from bildwerk.blobs import BlobStore

        store = self.make_store(tmp_path)
        assert isinstance(store, BlobStore)
        data = bytes(range(256)) * 40
        digest = store.put(data)
        assert digest == hashlib.sha256(data).hexdigest()
        assert store.get(digest) == data
        assert store.local_path(digest).read_bytes() == data
        assert store.spec().open().get(digest) == data  # a worker reopens it

    def test_put_is_idempotent(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        first = store.put(b"same bytes")
        assert store.put(b"same bytes") == first
        assert list(store.iter_digests()) == [first]

    def test_has(self, tmp_path: Path) -> None:
        import hashlib

        store = self.make_store(tmp_path)
        absent = hashlib.sha256(b"never stored").hexdigest()
        assert not store.has(absent)
        assert store.has(store.put(b"stored"))

    def test_reads_are_verified(self, tmp_path: Path) -> None:
        import pytest

        from bildwerk.blobs import BlobCorruptError

        store = self.make_store(tmp_path)
        digest = store.put(b"pixels that will rot" * 10)
        self.damage(store, digest)
        for read in (store.verify, store.get):
            with pytest.raises(BlobCorruptError, match=digest) as err:
                read(digest)
            assert err.value.digest == digest and err.value.where
            assert "fsck" in str(err.value)

    def test_missing_digest_names_it(self, tmp_path: Path) -> None:
        import hashlib

        import pytest

        from bildwerk.blobs import BlobMissingError
        from bildwerk.errors import UserError

        store = self.make_store(tmp_path)
        absent = hashlib.sha256(b"never stored").hexdigest()
        for read in (store.get, store.local_path, store.verify):
            with pytest.raises(BlobMissingError, match=absent) as err:
                read(absent)
            assert isinstance(err.value, UserError) and "bildwerk fsck" in str(err.value)
        with pytest.raises(ValueError, match="sha256"):
            store.get("../../etc/passwd")

    def test_iter_digests_delete_and_quarantine(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        digests = {store.put(f"blob {i}".encode()) for i in range(5)}
        assert set(store.iter_digests()) == digests
        gone, rotten = sorted(digests)[:2]
        store.delete(gone)
        store.delete(gone)  # no error when absent
        assert not store.has(gone)
        self.damage(store, rotten)
        moved = store.quarantine(rotten)
        assert rotten in moved and "quarantine" in moved
        assert set(store.iter_digests()) <= digests - {gone}
        assert store.stale_temps() == [] and store.sweep_temp() == 0
