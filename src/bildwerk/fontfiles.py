"""Finding font files: the folders searched (``$BILDWERK_FONT_PATH`` first, then the
user's and the system's), an index of what is there, and which face of a CJK collection
suits a locale's region."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection

ENV_FONT_PATH = "BILDWERK_FONT_PATH"
SYSTEM_FONT_DIRS: tuple[str, ...] = (
    "~/.local/share/fonts",
    "~/.fonts",
    "/usr/local/share/fonts",
    "/usr/share/fonts",
)
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


# --- finding files -----------------------------------------------------------------------


def search_dirs() -> tuple[Path, ...]:
    """Directories searched for fallback fonts: ``$BILDWERK_FONT_PATH`` first, then the
    user's and the system's font folders."""
    extra = [p for p in os.environ.get(ENV_FONT_PATH, "").split(os.pathsep) if p]
    return tuple(Path(p).expanduser() for p in (*extra, *SYSTEM_FONT_DIRS))


@lru_cache(maxsize=8)
def index_fonts(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """File name → path of every font under ``dirs``; earlier directories win."""
    found: dict[str, Path] = {}
    for root in dirs:
        for path in _walk_fonts(root):
            found.setdefault(path.name, path)
    return found


def _walk_fonts(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for folder, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            if name.lower().endswith(_FONT_SUFFIXES):
                yield Path(folder) / name


def first_present(index: dict[str, Path], names: Iterable[str]) -> Path | None:
    return next((index[n] for n in names if n in index), None)


# --- CJK faces ---------------------------------------------------------------------------


def cjk_region(locale: str, text: str = "") -> str:
    """Which regional CJK face suits ``locale`` (JP, KR, SC, TC or HK).

    Han characters are drawn differently per region, so a Japanese ad must not use the
    Simplified Chinese face. Non-CJK locales guess from the text (kana → JP, hangul → KR).
    """
    lang, *rest = locale.replace("_", "-").lower().split("-")
    tags = set(rest)
    if lang == "ja":
        return "JP"
    if lang == "ko":
        return "KR"
    if lang == "zh":
        if tags & {"hk", "mo"}:
            return "HK"
        return "TC" if tags & {"hant", "tw"} else "SC"
    if any(0x3040 <= ord(c) <= 0x30FF for c in text):
        return "JP"
    if any(0xAC00 <= ord(c) <= 0xD7AF or 0x1100 <= ord(c) <= 0x11FF for c in text):
        return "KR"
    return "SC"


@lru_cache(maxsize=8)
def cjk_faces(path: Path) -> dict[str, int]:
    """Region → face index inside a CJK collection, read from the face names."""
    faces: dict[str, int] = {}
    if path.suffix.lower() not in (".ttc", ".otc"):
        return faces
    collection = TTCollection(str(path), lazy=True)
    try:
        for i, font in enumerate(collection.fonts):
            family = font["name"].getDebugName(1) or ""
            if "Mono" in family:
                continue
            for region in ("JP", "KR", "SC", "TC", "HK"):
                if f"CJK {region}" in family:
                    faces.setdefault(region, i)
    finally:
        collection.close()
    return faces
