"""Choosing a blob store from a setting: a path or ``file://`` is a local folder,
any other URL an object store through fsspec."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from bildwerk.blobs.base import BlobStore, is_url

# name -> "module:Class"; the plugin registry registers these by the same targets
STORES: dict[str, str] = {
    "local": "bildwerk.blobs.local:LocalBlobStore",
    "object": "bildwerk.blobs.objectstore:ObjectBlobStore",
}


def store_class(name: str) -> Any:
    module, _, cls = STORES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


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
    store = store_class("object")(url, cache=cache, options=options)
    return store
