"""Briefs people pick or upload from the web app: names inside the workspace only, and
uploads checked in full before they are kept.

An upload is stored beside the workspace's own briefs (``campaigns/``) so its relative
paths (``../assets/...``) mean what they mean for them, under a name carrying its content
hash, so the file a queued run re-reads is the file that was checked.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.errors import ConfigError, NotFoundError, UserError

if TYPE_CHECKING:
    from bildwerk.workspace import Workspace

MAX_BRIEF_BYTES = 1024 * 1024
BRIEF_DIR = "campaigns"
SUFFIXES = (".yaml", ".yml")
_SAFE = re.compile(r"[^a-z0-9._-]+")


def briefs(ws: Workspace) -> list[str]:
    """The workspace's briefs, as paths relative to it."""
    folder = ws.root / BRIEF_DIR
    if not folder.is_dir():
        return []
    return sorted(
        str(p.relative_to(ws.root))
        for p in folder.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def workspace_brief(ws: Workspace, ref: str) -> Path:
    """The brief ``ref`` names (relative to the workspace); refuses anything outside it
    (``..``, absolute paths, links out) and anything that is not a YAML file."""
    if "\x00" in ref or not ref.strip():
        raise UserError(f"brief {ref!r} is not a file name", hint="e.g. campaigns/summer.yaml")
    candidate = (ws.root / ref).resolve()
    if not candidate.is_relative_to(ws.root) or Path(ref).is_absolute():
        raise UserError(
            f"brief {ref!r} is outside the workspace",
            hint="name a brief under campaigns/, e.g. campaigns/summer.yaml",
        )
    if candidate.suffix not in SUFFIXES:
        raise UserError(f"brief {ref!r} is not a YAML file (.yaml or .yml)")
    if not candidate.is_file():
        raise NotFoundError(f"no brief {ref!r} in the workspace", hint="see the list of briefs")
    return candidate


def save_upload(ws: Workspace, filename: str, data: bytes) -> Path:
    """Keep an uploaded brief once it reads as a valid brief (the same checks as ``run``);
    an invalid one raises the error ``bildwerk plan`` would, and nothing is kept."""
    if len(data) > MAX_BRIEF_BYTES:
        raise UserError(
            f"{filename}: {len(data):,} bytes is over the {MAX_BRIEF_BYTES:,}-byte limit "
            "for a brief", hint="a brief is a small YAML file; keep images in assets/",
        )  # fmt: skip
    if Path(filename).suffix.lower() not in SUFFIXES:
        raise UserError(f"{filename}: upload a YAML brief (.yaml or .yml)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{filename}: a brief must be UTF-8 text") from None
    stem = _SAFE.sub("-", Path(filename).stem.lower()).strip("-.")[:60] or "brief"
    digest = hashlib.sha256(data).hexdigest()[:12]
    folder = ws.root / BRIEF_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stem}-{digest}.yaml"
    if final.is_file() and final.read_bytes() == data:
        return final
    trial = folder / f".upload-{digest}-{os.getpid()}.yaml"
    atomic_write_bytes(trial, data)
    try:
        ws.read(trial)
        os.replace(trial, final)
    except ConfigError as exc:
        if exc.path.resolve() != trial.resolve():
            raise  # a file the brief refers to
        raise ConfigError(filename, exc.detail, line=exc.line, field=exc.field,
                          hint=exc.hint) from None  # fmt: skip
    finally:
        trial.unlink(missing_ok=True)
    return final
