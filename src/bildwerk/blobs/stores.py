"""Choosing a blob store from a setting: a path or ``file://`` is a local folder; a URL
whose scheme names a registered store (``bildwerk.blob_stores`` entry points) opens that
store; any other URL is an object store through fsspec."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from bildwerk.blobs.base import BlobStore, is_url


def store_class(name: str) -> Any:
    """A blob-store class by its registered name (built-ins: ``local``, ``object``)."""
    from bildwerk.registry import blob_stores

    return blob_stores.load(name)


def open_store(
    url_or_path: str | Path,
    *,
    cache: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> BlobStore:
    """The store at ``url_or_path``; ``cache`` (a folder) and ``options`` (fsspec storage
    options) only matter for object stores."""
    if not is_url(url_or_path):
        store: BlobStore = store_class("local")(Path(url_or_path))
        return store
    url = str(url_or_path)
    parsed = urlparse(url)
    if parsed.scheme.lower() == "file":
        store = store_class("local")(Path(url2pathname(parsed.path)))
        return store
    from bildwerk.registry import blob_stores

    scheme = parsed.scheme.lower()
    name = scheme if scheme in blob_stores.names() and scheme != "local" else "object"
    store = store_class(name)(url, cache=cache, options=options)
    return store
