"""Blobs in an object store (S3 and S3-compatible, GCS, Azure, ``memory://``…) via fsspec,
with a local, verified read cache.

Keys are laid out as in the local store: ``<prefix>/ab/cdef…``.

Atomic uploads: on S3, GCS and Azure a single PUT (and a multipart upload, which is only
visible once completed) is atomic — readers see the whole object or none — so blobs are
uploaded straight to their key. On any other filesystem fsspec reaches (``memory://``,
``file://``, SFTP…), a write goes to a temp key named for its writer
(``ab/.tmp-<host>-<pid>-<rand>``) and is then moved into place.

The cache is a :class:`~bildwerk.blobs.local.LocalBlobStore`: ``put`` fills it, ``get``
and ``local_path`` read from it when they can and fill it when they cannot. Every read is
verified, the cache included: a damaged cache file is logged, dropped and fetched again,
so the cache can never serve bad bytes; a damaged object in the store raises
:class:`BlobCorruptError` naming its key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bildwerk.atomicio import sha256_bytes, sha256_file
from bildwerk.blobs.base import (
    BlobCorruptError,
    BlobMissingError,
    BlobStoreSpec,
    BlobStoreUnavailableError,
    check_digest,
    fan_out,
)
from bildwerk.blobs.local import QUARANTINE, LocalBlobStore
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.tempfiles import GRACE, PREFIX, is_stale, temp_name

log = logging.getLogger(__name__)
T = TypeVar("T")

ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_KEY = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{62})$")
_TEMP = re.compile(r"^[0-9a-f]{2}/(\.tmp-[^/]+)$")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bildwerk" / "blobs"


def _fsspec() -> Any:
    try:
        return importlib.import_module("fsspec")
    except ImportError:
        raise MissingExtraError("fsspec", "publish", "A blob store in an object store") from None


class ObjectBlobStore:
    """Blobs under ``<url>/ab/cdef…`` in any fsspec filesystem, read through a local
    verified cache."""

    def __init__(
        self,
        url: str,
        *,
        cache: Path | LocalBlobStore | None = None,
        options: Mapping[str, Any] | None = None,
        temp_grace: timedelta = GRACE,
    ) -> None:
        self._url = url.rstrip("/")
        self.options: dict[str, Any] = dict(options or {})
        self.temp_grace = temp_grace
        if isinstance(cache, LocalBlobStore):
            self.cache = cache
        else:
            self.cache = LocalBlobStore(cache or default_cache_dir(), temp_grace=temp_grace)
        scheme = self._url.split("://", 1)[0].lower()
        where = f"blob store {self._url}"
        from bildwerk.netguard import check_url, endpoint_urls, pinned_resolver

        if scheme in ("http", "https"):
            check_url(self._url, where)
        endpoints = endpoint_urls(self.options)
        kwargs = dict(self.options)
        if scheme in ("s3", "s3a"):
            kwargs.setdefault("use_listings_cache", False)  # other writers exist
            try:
                # checked here; s3fs connects only to these addresses (no DNS rebinding)
                resolver = pinned_resolver(where, endpoints)
            except ImportError:
                raise MissingExtraError("s3fs", "publish", f"The blob store {self._url}") from None
            config = dict(kwargs.get("config_kwargs") or {})
            connector = {**dict(config.get("connector_args") or {}), "resolver": resolver}
            kwargs["config_kwargs"] = {**config, "connector_args": connector}
        else:
            for endpoint in endpoints:
                check_url(endpoint, where)
        try:
            self.fs, root = _fsspec().core.url_to_fs(self._url, **kwargs)
        except ImportError as exc:
            package = exc.name or "s3fs"
            raise MissingExtraError(package, "publish", f"The blob store {self._url}") from None
        except ValueError as exc:
            raise UserError(
                f"blob store {self._url}: {exc}",
                hint="use a path or an fsspec URL such as s3://bucket/prefix",
            ) from None
        self._root = str(root).rstrip("/")
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        self.atomic_put = bool(names & ATOMIC_PUT)

    # --- identity ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    def spec(self) -> BlobStoreSpec:
        return BlobStoreSpec(self._url, cache=self.cache.root, options=dict(self.options))

    def key(self, digest: str) -> str:
        """The object's path inside the filesystem (no scheme)."""
        return f"{self._root}/{fan_out(digest)}"

    def where(self, digest: str) -> str:
        """The object's URL, for messages."""
        return f"{self._url}/{fan_out(digest)}"

    def _io(self, what: str, fn: Callable[[], T]) -> T:
        """Run a filesystem call; errors other than not-found become errors for people."""
        try:
            return fn()
        except (FileNotFoundError, UserError):
            raise
        except PermissionError as exc:
            raise BlobStoreUnavailableError(
                self._url,
                f"{what}: access denied ({exc})",
                hint="check the credentials (AWS_* variables, blob_options) and that they "
                "may read and write this bucket",
            ) from exc
        except Exception as exc:  # botocore and friends: classify by what they say
            raise BlobStoreUnavailableError(
                self._url, f"{what} failed: {type(exc).__name__}: {exc}"
            ) from exc

    # --- writing -----------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        key = self.key(digest)
        if self._size(key) != len(data):
            if self.atomic_put:
                self._io(f"upload {digest}", lambda: self.fs.pipe_file(key, data))
            else:
                tmp = f"{self._root}/{digest[:2]}/{temp_name()}"
                try:
                    self._io(f"upload {digest}", lambda: self.fs.pipe_file(tmp, data))
                    self._io(f"move {digest} into place", lambda: self.fs.mv(tmp, key))
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.fs.rm_file(tmp)
                    raise
        try:
            self.cache.put(data)
        except OSError as exc:  # the blob is safe in the store; only the cache is short
            log.warning("could not cache blob %s in %s: %s", digest, self.cache.root, exc)
        return digest

    def delete(self, digest: str) -> None:
        key = self.key(digest)
        with contextlib.suppress(FileNotFoundError):
            self._io(f"delete {digest}", lambda: self.fs.rm_file(key))
        self.cache.delete(digest)

    def quarantine(self, digest: str) -> str:
        """Move the object to ``<url>/quarantine/``; a verified cached copy (if any) is
        uploaded again, so the store heals itself."""
        key = self.key(digest)
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        rel = f"{QUARANTINE}/{digest}.{stamp}"
        self._io(f"quarantine {digest}", lambda: self.fs.mv(key, f"{self._root}/{rel}"))
        good = self._cached(digest)
        if good is not None:
            self.put(good)
        else:
            self.cache.delete(digest)
        return f"{self._url}/{rel}"

    # --- reading -----------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        return self._size(self.key(digest)) is not None

    def get(self, digest: str) -> bytes:
        cached = self._cached(digest)
        if cached is not None:
            return cached
        data = self._fetch(digest)
        try:
            self.cache.put(data)
        except OSError as exc:
            log.warning("could not cache blob %s in %s: %s", digest, self.cache.root, exc)
        return data

    def local_path(self, digest: str) -> Path:
        path = self.cache.path(digest)
        with contextlib.suppress(FileNotFoundError):
            actual = sha256_file(path)
            if actual == digest:
                return path
            self._evict(digest, actual)
        self.cache.put(self._fetch(digest))
        return self.cache.local_path(digest)

    def path(self, digest: str) -> Path:
        """Transitional, for callers written for the local store, whose ``path`` is a
        location, not a promise: the verified cached copy when the blob exists, else the
        cache file a later ``put`` will write. New code should call ``local_path``."""
        try:
            return self.local_path(digest)
        except BlobMissingError:
            return self.cache.path(digest)

    def export(self, digest: str, dest: Path) -> Path:
        """Place a verified blob at ``dest``, from the local cache (filled on demand)."""
        self.local_path(digest)
        return self.cache.export(digest, dest)

    def verify(self, digest: str) -> None:
        """Stream the object from the store (not the cache) and hash it."""
        key = self.key(digest)

        def digest_of() -> str:
            h = hashlib.sha256()
            with self.fs.open(key, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()

        try:
            actual = self._io(f"read {digest}", digest_of)
        except FileNotFoundError:
            raise BlobMissingError(digest, self.where(digest)) from None
        if actual != digest:
            raise BlobCorruptError(digest, self.where(digest), actual)

    def iter_digests(self) -> Iterator[str]:
        for rel in self._listing():
            m = _KEY.match(rel)
            if m:
                yield m.group(1) + m.group(2)

    def modified(self, digest: str) -> datetime:
        key = self.key(digest)
        try:
            when = self._io(f"look up {digest}", lambda: self.fs.modified(key))
        except FileNotFoundError:
            raise BlobMissingError(digest, self.where(digest)) from None
        return _aware(when)

    def stale_temps(self) -> list[str]:
        stale = [f"{self._url}/{rel}" for rel in self._stale_remote_temps()]
        return stale + self.cache.stale_temps()

    def sweep_temp(self) -> int:
        removed = 0
        for rel in self._stale_remote_temps():
            path = f"{self._root}/{rel}"
            with contextlib.suppress(FileNotFoundError):
                self._io(f"delete {rel}", partial(self.fs.rm_file, path))
                removed += 1
        return removed + self.cache.sweep_temp()

    # --- helpers -----------------------------------------------------------------------

    def _size(self, key: str) -> int | None:
        """The object's size, None when there is no object at ``key``."""
        try:
            info = self._io("look up", lambda: self.fs.info(key))
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        size = info.get("size")
        return int(size) if size is not None else None

    def _fetch(self, digest: str) -> bytes:
        key = self.key(digest)
        try:
            data: bytes = self._io(f"read {digest}", lambda: self.fs.cat_file(key))
        except FileNotFoundError:
            raise BlobMissingError(digest, self.where(digest)) from None
        actual = sha256_bytes(data)
        if actual != digest:
            raise BlobCorruptError(digest, self.where(digest), actual)
        return data

    def _cached(self, digest: str) -> bytes | None:
        """The verified cached bytes, or None (a damaged cache file is dropped)."""
        check_digest(digest)
        try:
            data = self.cache.path(digest).read_bytes()
        except FileNotFoundError:
            return None
        actual = sha256_bytes(data)
        if actual == digest:
            return data
        self._evict(digest, actual)
        return None

    def _evict(self, digest: str, actual: str) -> None:
        log.warning(
            "cached blob %s at %s is corrupt (content hashes to %s); dropped it and "
            "fetching it again from %s",
            digest,
            self.cache.path(digest),
            actual,
            self._url,
        )
        self.cache.delete(digest)

    def _listing(self) -> list[str]:
        """Every key under the store's prefix, relative to it."""
        try:
            found = self._io("list", lambda: self.fs.find(self._root))
        except FileNotFoundError:
            return []
        root = self._root.lstrip("/") + "/"
        rels = []
        for path in found:
            p = str(path).lstrip("/")
            if p.startswith(root):
                rels.append(p[len(root) :])
        return rels

    def _stale_remote_temps(self) -> list[str]:
        now = datetime.now(UTC)
        stale = []
        for rel in self._listing():
            m = _TEMP.match(rel)
            if not m or not m.group(1).startswith(PREFIX):
                continue
            age: timedelta | None
            try:
                age = now - _aware(self.fs.modified(f"{self._root}/{rel}"))
            except FileNotFoundError:
                continue
            except Exception:  # no modification time here: age unknown, keep it
                age = None
            if is_stale(m.group(1), age, grace=self.temp_grace):
                stale.append(rel)
        return stale


def _aware(when: Any) -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"not a datetime: {when!r}")
    return when if when.tzinfo else when.replace(tzinfo=UTC)
