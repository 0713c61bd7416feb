"""Content-addressed blob stores: bytes kept once, under their sha256, verified on read.

``open_store(setting)`` gives a local folder store or an object store (S3…) with a local
cache; both keep the :class:`BlobStore` protocol. The object store imports fsspec
only when one is opened.
"""

from __future__ import annotations

from bildwerk.atomicio import sha256_bytes, sha256_file
from bildwerk.blobs.base import (
    BlobCorruptError,
    BlobError,
    BlobMissingError,
    BlobStore,
    BlobStoreSpec,
    BlobStoreUnavailableError,
    check_digest,
    is_url,
)
from bildwerk.blobs.local import LocalBlobStore
from bildwerk.blobs.objectstore import ObjectBlobStore
from bildwerk.blobs.stores import open_store

__all__ = [
    "BlobCorruptError",
    "BlobError",
    "BlobMissingError",
    "BlobStore",
    "BlobStoreSpec",
    "BlobStoreUnavailableError",
    "LocalBlobStore",
    "ObjectBlobStore",
    "check_digest",
    "is_url",
    "open_store",
    "sha256_bytes",
    "sha256_file",
]
