"""Blob stores: the shared contract for the local folder, ``memory://`` and S3 (moto),
verified reads through the cache, temp files owned by their writer, choosing by URL."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from bildwerk.blobs import (
    BlobCorruptError,
    BlobMissingError,
    BlobStore,
    BlobStoreSpec,
    BlobStoreUnavailableError,
    LocalBlobStore,
    ObjectBlobStore,
    open_store,
    sha256_bytes,
    sha256_file,
)
from bildwerk.config.settings import Settings
from bildwerk.errors import MissingExtraError
from bildwerk.registry import blob_stores
from bildwerk.tempfiles import owner_of, temp_name, this_host
from bildwerk.testing import BlobStoreContract

pytestmark = pytest.mark.timeout(60)

CREDS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def flip_file(path: Path) -> None:
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(flip(data))


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs", reason="S3 blob stores need the publish extra")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.put(f"{endpoint}/blobs", timeout=10).raise_for_status()  # moto takes unsigned calls
    yield endpoint
    server.stop()


# --------------------------------------------------------------------------- contract


class TestLocalStore(BlobStoreContract):
    def make_store(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    def damage(self, store: Any, digest: str) -> None:
        flip_file(store.path(digest))


class ObjectContract(BlobStoreContract):
    def damage(self, store: Any, digest: str) -> None:
        """Rot the object in the store and drop the (good) cached copy, so reads go to
        the store."""
        key = store.key(digest)
        store.fs.pipe_file(key, flip(store.fs.cat_file(key)))
        store.cache.delete(digest)


class TestMemoryStore(ObjectContract):
    def make_store(self, tmp_path: Path) -> ObjectBlobStore:
        return ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}/blobs", cache=tmp_path / "cache")


class TestS3Store(ObjectContract):
    @pytest.fixture(autouse=True)
    def _endpoint(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint

    def make_store(self, tmp_path: Path) -> ObjectBlobStore:
        return ObjectBlobStore(
            f"s3://blobs/{uuid.uuid4().hex}",
            cache=tmp_path / "cache",
            options={"endpoint_url": self.endpoint, **CREDS},
        )


# --------------------------------------------------------------------------- object store


def test_s3_layout_single_put_and_cache(moto_endpoint: str, tmp_path: Path) -> None:
    store = ObjectBlobStore(
        "s3://blobs/layout",
        cache=tmp_path / "cache",
        options={"endpoint_url": moto_endpoint, **CREDS},
    )
    assert store.atomic_put  # S3 PUTs are atomic: no temp keys
    digest = store.put(b"an image")
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True, **CREDS)
    assert fs.find("blobs/layout") == [f"blobs/layout/{digest[:2]}/{digest[2:]}"]
    assert fs.cat_file(f"blobs/layout/{digest[:2]}/{digest[2:]}") == b"an image"
    cached = tmp_path / "cache" / digest[:2] / digest[2:]
    assert cached.read_bytes() == b"an image"  # put filled the cache
    assert store.local_path(digest) == cached


def test_memory_writes_via_temp_key_and_fills_cache(tmp_path: Path) -> None:
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    assert not store.atomic_put
    digest = store.put(b"abc")
    assert store.fs.find(store.key(digest).rsplit("/", 2)[0]) == [store.key(digest)]
    store.cache.delete(digest)
    assert store.get(digest) == b"abc"  # fetched, verified, cached again
    assert store.cache.has(digest)


def test_corrupt_cache_file_is_named_dropped_and_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    digest = store.put(b"good bytes" * 100)
    cached = store.cache.path(digest)
    for read in (store.get, store.local_path):
        flip_file(cached)
        with caplog.at_level(logging.WARNING, logger="bildwerk.blobs.objectstore"):
            result = read(digest)
        got = result if isinstance(result, bytes) else result.read_bytes()
        assert got == b"good bytes" * 100
        assert sha256_file(cached) == digest  # healed
        assert digest in caplog.text and str(cached) in caplog.text and "corrupt" in caplog.text
        caplog.clear()


def test_corrupt_object_is_named_and_never_cached(tmp_path: Path) -> None:
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}/p", cache=tmp_path / "cache")
    digest = store.put(b"x" * 64)
    key = store.key(digest)
    store.fs.pipe_file(key, b"y" * 64)
    assert store.get(digest) == b"x" * 64  # the verified cache still has it
    with pytest.raises(BlobCorruptError) as err:
        store.verify(digest)  # fsck looks at the store itself
    assert err.value.where == f"{store.url}/{digest[:2]}/{digest[2:]}"
    assert err.value.actual == sha256_bytes(b"y" * 64)
    store.cache.delete(digest)
    with pytest.raises(BlobCorruptError, match=digest):
        store.local_path(digest)
    assert not store.cache.has(digest)
    moved = store.quarantine(digest)  # no good copy left: it moves, and is now missing
    assert store.fs.cat_file(moved.removeprefix("memory://")) == b"y" * 64
    assert not store.has(digest)


def test_quarantine_heals_from_a_verified_cache(tmp_path: Path) -> None:
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    digest = store.put(b"keep me")
    store.fs.pipe_file(store.key(digest), b"rot me!")
    store.quarantine(digest)
    store.verify(digest)  # the cached copy went back up
    assert store.fs.cat_file(store.key(digest)) == b"keep me"


def test_s3_unreachable_is_a_user_error(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    store = ObjectBlobStore(
        "s3://blobs/x",
        cache=tmp_path / "cache",
        options={
            "endpoint_url": "http://127.0.0.1:9",
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
            **CREDS,
        },
    )
    store.fs.retries = 1
    with pytest.raises(BlobStoreUnavailableError, match=r"s3://blobs/x"):
        store.put(b"data")


def test_without_fsspec_the_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"bildwerk\[publish\]"):
        ObjectBlobStore("s3://blobs/x", cache=tmp_path)


# --------------------------------------------------------------------------- temp files


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_names_carry_their_owner() -> None:
    owner = owner_of(temp_name())
    assert owner is not None and owner.pid == os.getpid() and owner.host == this_host()
    assert owner_of(".tmp-crashed") is None


def test_sweep_spares_live_writers_and_removes_dead_ones(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(b"blob")
    folder = store.path(digest).parent
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = this_host()
        alive = folder / f".tmp-{host}-{live.pid}-aaaa"
        dead = folder / f".tmp-{host}-{_dead_pid()}-bbbb"
        mine = folder / temp_name()
        elsewhere_new = folder / ".tmp-other-host-1234-cccc"
        elsewhere_old = folder / ".tmp-other-host-1234-dddd"
        for tmp in (alive, dead, mine, elsewhere_new, elsewhere_old):
            tmp.write_bytes(b"half")
        two_hours_ago = time.time() - 7200
        os.utime(elsewhere_old, (two_hours_ago, two_hours_ago))
        assert sorted(store.stale_temps()) == sorted([str(dead), str(elsewhere_old)])
        assert store.sweep_temp() == 2
        assert alive.exists() and mine.exists() and elsewhere_new.exists()
        assert not dead.exists() and not elsewhere_old.exists()
        assert store.get(digest) == b"blob"
    finally:
        live.kill()
        live.wait()
    assert store.sweep_temp() == 1  # the writer died: its temp is stale now


def test_object_store_sweeps_its_own_temp_keys(tmp_path: Path) -> None:
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    digest = store.put(b"blob")
    fan = store.key(digest).rsplit("/", 1)[0]
    store.fs.pipe_file(f"{fan}/.tmp-{this_host()}-{_dead_pid()}-eeee", b"half")
    store.fs.pipe_file(f"{fan}/{temp_name()}", b"in flight")
    assert len(store.stale_temps()) == 1 and store.sweep_temp() == 1
    assert len(store.fs.find(fan)) == 2  # the blob and the live writer's temp


# --------------------------------------------------------------------------- choosing


def test_open_store_by_path_or_url(tmp_path: Path) -> None:
    local = open_store(tmp_path / "a")
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "a"
    by_uri = open_store((tmp_path / "b").as_uri())
    assert isinstance(by_uri, LocalBlobStore) and by_uri.root == tmp_path / "b"
    assert open_store(str(tmp_path / "c")).url == (tmp_path / "c").as_uri()
    remote = open_store("memory://bw-open/x", cache=tmp_path / "cache")
    assert isinstance(remote, ObjectBlobStore) and isinstance(remote, BlobStore)
    assert remote.cache.root == tmp_path / "cache"
    assert blob_stores.defaults == {
        "local": "bildwerk.blobs.local:LocalBlobStore",
        "object": "bildwerk.blobs.objectstore:ObjectBlobStore",
    }


def test_spec_is_picklable_and_reopens_the_same_store(tmp_path: Path) -> None:
    remote = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    digest = remote.put(b"shared")
    spec = pickle.loads(pickle.dumps(remote.spec()))
    assert spec == BlobStoreSpec(remote.url, tmp_path / "cache", {})
    assert spec.open().get(digest) == b"shared"
    local = LocalBlobStore(tmp_path / "blobs")
    assert pickle.loads(pickle.dumps(local.spec())).open().url == local.url


def test_settings_take_a_url_cache_and_options() -> None:
    s = Settings.model_validate(
        {
            "blobs": "s3://bucket/prefix",
            "blob_cache": "/var/cache/bw",
            "blob_options": {"endpoint_url": "http://127.0.0.1:9000"},
        }
    )
    assert s.blobs == "s3://bucket/prefix" and s.blob_cache == Path("/var/cache/bw")
    default = Settings()
    assert default.blobs == ".bildwerk/blobs" and default.blob_cache == Path(".cache/blobs")


def test_workspace_opens_the_configured_store(tmp_path: Path) -> None:
    from bildwerk.workspace import Workspace

    (tmp_path / "bildwerk.yaml").write_text(
        "blobs: memory://bw-ws/blobs\nblob_cache: cache\n", encoding="utf-8"
    )
    store = Workspace(tmp_path).blobs
    assert isinstance(store, ObjectBlobStore) and store.cache.root == tmp_path / "cache"
    (tmp_path / "bildwerk.yaml").write_text("name: x\n", encoding="utf-8")
    local = Workspace(tmp_path).blobs
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / ".bildwerk/blobs"


def test_missing_error_is_a_user_error_naming_fsck(tmp_path: Path) -> None:
    absent = hashlib.sha256(b"nothing").hexdigest()
    with pytest.raises(BlobMissingError) as err:
        LocalBlobStore(tmp_path).get(absent)
    assert str(tmp_path / absent[:2] / absent[2:]) in str(err.value)
    assert "bildwerk fsck" in str(err.value)


def test_transitional_path_is_a_location_like_the_local_store(tmp_path: Path) -> None:
    """Until every caller moves to ``local_path``, ``path`` behaves as the local store's:
    where the blob is (verified, cached) or will be once put."""
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    later = sha256_bytes(b"put later")
    where = store.path(later)
    assert where == tmp_path / "cache" / later[:2] / later[2:] and not where.exists()
    store.put(b"put later")
    assert where.read_bytes() == b"put later"
    store.cache.delete(later)
    assert store.path(later).read_bytes() == b"put later"  # fetched back into the cache
