"""A CDN-origin folder target, with Netlify / Cloudflare Pages ``_headers``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.errors import UserError
from bildwerk.publishers.base import (
    REVALIDATE,
    TargetRejectedError,
    TargetUnavailableError,
    check_key,
    content_type_for,
)
from bildwerk.tempfiles import PREFIX, is_stale

_log = logging.getLogger("bildwerk.publishers.folder")

# --------------------------------------------------------------------------- folder


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers see old bytes or new, never half a file (see :mod:`bildwerk.atomicio`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


class FolderTarget:
    """A CDN-origin folder (Netlify, Cloudflare Pages, any static host or rsync source).

    Headers live beside the files: ``_headers.json`` (the record, one entry per key) and
    ``_headers`` in the Netlify / Cloudflare Pages format, generated from it with only
    what differs from the hosts' defaults, and one ``/dir/*`` rule for a folder whose
    files all agree (Cloudflare Pages reads at most 100 rules; keep immutable renditions
    in their own folder, e.g. ``img/``). One publisher per folder at a time (the publisher holds
    the target's lease).

    Inside :meth:`batch` the header files are written once, when the batch ends, not after
    every file; they are merged with the record on disk then, and entries of files no
    longer there are dropped. :meth:`sweep` deletes temp files a killed writer left in the
    served tree.
    """

    HEADERS = "_headers"
    RECORD = "_headers.json"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"publish folder {self.root} is a file", hint="pick a directory")
        self._headers: dict[str, dict[str, str]] = self._read_record()
        self._pending: dict[str, dict[str, str] | None] = {}  # key -> entry, None: deleted
        self._batched = 0

    def _read_record(self) -> dict[str, dict[str, str]]:
        record = self.root / self.RECORD
        if not record.is_file():
            return {}
        data = json.loads(record.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Write the header files once, when the block ends (also when it raises: they
        then describe what is on disk)."""
        if self._batched == 0:
            self._headers = self._read_record()  # another publisher may have written since
        self._batched += 1
        try:
            yield
        finally:
            self._batched -= 1
            if self._batched == 0:
                self.flush()

    def flush(self) -> None:
        """Merge this target's changes into the record on disk and write both files."""
        if not self._pending:
            return
        merged = self._read_record()
        for key, entry in self._pending.items():
            if entry is None:
                merged.pop(key, None)
            else:
                merged[key] = entry
        self._pending.clear()
        self._headers = {k: v for k, v in merged.items() if (self.root / k).is_file()}
        self._save_headers()

    def sweep(self) -> int:
        """Delete temp files (``.tmp-host-pid-…``) whose writer is gone from the served
        tree; returns how many. Another live writer's temp is kept."""
        if not self.root.is_dir():
            return 0
        now = datetime.now(UTC)
        swept = 0
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(PREFIX):
                    continue
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    if is_stale(name, max(now - mtime, timedelta(0))):
                        path.unlink()
                        swept += 1
        return swept

    @property
    def name(self) -> str:
        return f"folder {self.root}"

    def url(self, key: str) -> str:
        return f"{self.base_url}/{quote(key)}"

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        check_key(key)
        if key in (self.HEADERS, self.RECORD):
            raise UserError(f"{key!r} is reserved for the headers of {self.name}")
        path = self.root / key
        try:
            same = path.is_file() and path.read_bytes() == data
            if (
                path.is_file()
                and not same
                and "immutable" in self._headers.get(key, {}).get("Cache-Control", "")
            ):
                raise TargetRejectedError(
                    self.name,
                    f"{key} is published as immutable and would change bytes",
                    hint="content-hashed names (origin_key) never need overwriting",
                )
            if not same:
                _write_atomic(path, data)
            entry = {"Content-Type": content_type, "Cache-Control": cache_control}
            if self._headers.get(key) != entry or key in self._pending:
                self._headers[key] = entry
                self._changed(key, entry)
        except OSError as exc:
            raise TargetUnavailableError(
                self.name, f"cannot write {key}: {exc}", hint="check the folder is writable"
            ) from exc
        return self.url(key)

    def delete(self, key: str) -> None:
        path = self.root / check_key(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:  # drop emptied folders, never the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            with contextlib.suppress(OSError):
                parent.rmdir()
        if self._headers.pop(key, None) is not None or key in self._pending:
            self._changed(key, None)

    def exists(self, key: str) -> bool:
        return (self.root / check_key(key)).is_file()

    def _changed(self, key: str, entry: dict[str, str] | None) -> None:
        self._pending[key] = entry
        if self._batched == 0:
            self.flush()

    def _save_headers(self) -> None:
        record = json.dumps(self._headers, indent=1, sort_keys=True, ensure_ascii=False)
        _write_atomic(self.root / self.RECORD, record.encode())
        lines = ["# Generated by bildwerk from _headers.json; edits here are overwritten."]
        for path, headers in _header_rules(self._headers):
            lines.append(path)
            lines.extend(f"  {k}: {v}" for k, v in headers.items())
        _write_atomic(self.root / self.HEADERS, ("\n".join(lines) + "\n").encode())


MAX_RULES = 100
"""Cloudflare Pages reads at most 100 ``_headers`` rules (Netlify has no stated limit)."""


def _explicit(key: str, entry: Mapping[str, str]) -> dict[str, str]:
    """The headers a host would not send by itself: Netlify and Cloudflare Pages derive
    the content type from the extension and default to ``REVALIDATE``, so only other
    values need a rule. robots.txt keeps its ``text/plain`` explicitly: crawlers ignore a
    robots file served as anything else. A ``.c2pa`` sidecar is left to the host's type
    (``application/octet-stream``): C2PA readers fetch it by the URL its image names and
    do not check the type, while a rule per sidecar (their folder also holds the images)
    would pass the 100 rules hosts read; S3 targets still set ``application/c2pa``."""
    out = dict(entry)
    derived = content_type_for(key) if not key.endswith(".c2pa") else out.get("Content-Type")
    if out.get("Content-Type") == derived and not key.endswith(".txt"):
        del out["Content-Type"]
    if out.get("Cache-Control") == REVALIDATE:
        del out["Cache-Control"]
    return out


def _header_rules(entries: Mapping[str, Mapping[str, str]]) -> list[tuple[str, Mapping[str, str]]]:
    """Pattern rules for the record: headers equal to the host's defaults are left out,
    and a folder whose files all agree gets one ``/dir/*`` rule (content-hashed images
    share one immutable ``/img/*`` rule, whatever the run size). Rules never overlap:
    hosts merge every matching rule's values into one header."""
    rules: list[tuple[str, Mapping[str, str]]] = []
    explicit = {k: _explicit(k, v) for k, v in entries.items()}
    explicit = {k: v for k, v in explicit.items() if v}

    def walk(prefix: str, keys: list[str]) -> None:
        subdirs: dict[str, list[str]] = {}
        for k in keys:
            head, sep, _ = k[len(prefix) :].partition("/")
            if sep:
                subdirs.setdefault(head, []).append(k)
            else:
                rules.append(("/" + quote(k), explicit[k]))
        for d, under in sorted(subdirs.items()):
            sub = f"{prefix}{d}/"
            inside = [k for k in entries if k.startswith(sub)]  # files without a rule too
            if (
                len(under) == len(inside)
                and len({tuple(sorted(explicit[k].items())) for k in under}) == 1
            ):
                rules.append(("/" + quote(sub) + "*", explicit[under[0]]))
            else:
                walk(sub, under)

    walk("", sorted(explicit))
    if len(rules) > MAX_RULES:
        _log.warning(
            "_headers: %d rules, more than the %d Cloudflare Pages reads; keep files with "
            "their own headers in fewer folders", len(rules), MAX_RULES,
        )  # fmt: skip
    return rules
