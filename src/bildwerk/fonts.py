"""Font resolution: brand fonts first, then a system fallback chain that covers most scripts.

A creative's copy may be Latin, Cyrillic, Greek, Arabic, Hebrew or CJK, and a brand font
rarely covers all of them. For each text we pick the first font in the chain whose cmap
covers every visible character, so nothing renders as tofu.

Noto's script fonts (Arabic, Hebrew, Thai...) deliberately leave out Latin letters, digits
and most punctuation: they are meant to be paired with Noto Sans. Pillow cannot fall back
between fonts inside one shaped string, so we merge the script font with a Latin subset of
Noto Sans once per process (fontTools) and shape with the merged face. Real copy such as
``خصم 20% على Nike؟`` then renders in one consistent family instead of dropping to DejaVu.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import fontTools
from fontTools.merge import Merger
from fontTools.subset import Options as SubsetOptions
from fontTools.subset import Subsetter
from fontTools.ttLib import TTFont, TTLibError
from PIL import ImageFont, features

from bildwerk.atomicio import atomic_write_bytes, sha256_file
from bildwerk.config.brand import BrandKit
from bildwerk.errors import ConfigError
from bildwerk.fontfiles import (
    cjk_faces,
    cjk_region,
    first_present,
    index_fonts,
    search_dirs,
)

log = logging.getLogger(__name__)

Role = Literal["headline", "body", "cta"]
Weight = Literal["bold", "regular"]

ENV_FONT_CACHE = "BILDWERK_FONT_CACHE"
BUILTIN = "pillow-default"
_MERGE_RECIPE = "merge-v1"  # bump when the merged-face recipe changes (part of fingerprint)

# Latin glyphs borrowed from Noto Sans by script fonts: Latin, punctuation, currency.
_COMPANION_RANGES: tuple[range, ...] = (
    range(0x0020, 0x0250),
    range(0x2000, 0x2070),
    range(0x20A0, 0x20C1),
    range(0x2100, 0x2123),
)

# Candidate file names per weight; the first one found wins (bold falls back to regular).
_LATIN: dict[Weight, tuple[str, ...]] = {
    "bold": ("NotoSans-Bold.ttf", "NotoSans-Regular.ttf"),
    "regular": ("NotoSans-Regular.ttf",),
}
_SCRIPTS: dict[str, tuple[str, ...]] = {
    "arabic": ("Arabic",),
    "hebrew": ("Hebrew",),
    "thai": ("Thai",),
    "devanagari": ("Devanagari",),
    "bengali": ("Bengali",),
    "tamil": ("Tamil",),
    "armenian": ("Armenian",),
    "georgian": ("Georgian",),
}
_CJK: dict[Weight, tuple[str, ...]] = {
    "bold": ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Regular.ttc"),
    "regular": ("NotoSansCJK-Regular.ttc",),
}
_DEJAVU: dict[Weight, tuple[str, ...]] = {
    "bold": ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"),
    "regular": ("DejaVuSans.ttf",),
}
# Languages whose own script font should be tried before Noto Sans.
_LOCALE_SCRIPT = {
    "ar": "arabic",
    "fa": "arabic",
    "ur": "arabic",
    "ps": "arabic",
    "ckb": "arabic",
    "he": "hebrew",
    "yi": "hebrew",
    "th": "thai",
    "hi": "devanagari",
    "mr": "devanagari",
    "ne": "devanagari",
    "bn": "bengali",
    "ta": "tamil",
    "hy": "armenian",
    "ka": "georgian",
    "ja": "cjk",
    "zh": "cjk",
    "ko": "cjk",
}


def layout_engine() -> ImageFont.Layout:
    """RAQM (HarfBuzz shaping + FriBiDi) when Pillow has it; BASIC cannot shape Arabic."""
    return ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


def _ignorable(ch: str) -> bool:
    """Characters that need no glyph: spaces, joiners, bidi marks, variation selectors."""
    cp = ord(ch)
    return (
        ch.isspace()
        or unicodedata.category(ch) == "Cf"
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
    )


def needed_codepoints(text: str) -> frozenset[int]:
    return frozenset(ord(c) for c in text if not _ignorable(c))


def without_missing(text: str, missing: str) -> str:
    """``text`` without the characters no font can draw (an emoji, say), so they are
    left out rather than drawn as tofu boxes; the QA check ``text_glyphs`` reports them.
    Spaces the removal doubles are collapsed."""
    if not missing:
        return text
    lost = set(missing)
    out: list[str] = []
    dropping = False
    for c in text:
        # a dropped emoji's joiners and variation selectors go with it
        if c in lost or (dropping and (c == "\u200d" or 0xFE00 <= ord(c) <= 0xFE0F)):
            dropping = True
            continue
        dropping = False
        out.append(c)
    kept = "".join(out)
    lines = [" ".join(part for part in line.split(" ") if part) for line in kept.split("\n")]
    return "\n".join(lines)


@dataclass(frozen=True)
class FontChoice:
    """One face to render a text with.

    ``path`` None means Pillow's built-in font (last resort). ``companion`` is a Latin
    font merged in for the glyphs a script font lacks. ``missing`` lists characters no
    font in the chain covers; they will render as boxes, so callers should warn.
    """

    path: Path | None
    index: int = 0
    companion: Path | None = None
    missing: str = ""

    @property
    def name(self) -> str:
        if self.path is None:
            return BUILTIN
        base = self.path.name + (f"#{self.index}" if self.index else "")
        return f"{base}+{self.companion.name}" if self.companion else base

    def load(self, size: int) -> ImageFont.FreeTypeFont:
        """The face at ``size`` px; cached, so calling this in a fitting loop is cheap."""
        return _load_font(self.path, self.index, self.companion, max(1, int(size)))

    def coverage(self) -> frozenset[int]:
        return _coverage(self.path, self.index, self.companion)

    def covers(self, text: str) -> bool:
        return needed_codepoints(text) <= self.coverage()


# --- loading and caches ------------------------------------------------------------------


@lru_cache(maxsize=512)
def _load_font(
    path: Path | None, index: int, companion: Path | None, size: int
) -> ImageFont.FreeTypeFont:
    if path is None:
        font = ImageFont.load_default(size)
        if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
            raise RuntimeError("Pillow has no FreeType support; bildwerk needs it for text")
        return font
    engine = layout_engine()
    if companion is not None:
        data = io.BytesIO(_merged_face(path, companion))
        return ImageFont.truetype(data, size, layout_engine=engine)
    return ImageFont.truetype(str(path), size, index=index, layout_engine=engine)


@lru_cache(maxsize=64)
def _cmap(path: Path, index: int) -> frozenset[int]:
    with TTFont(str(path), fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def _builtin_coverage() -> frozenset[int]:
    """Pillow's bundled face covers printable ASCII; assume no more."""
    return frozenset(range(0x20, 0x7F))


@lru_cache(maxsize=64)
def _coverage(path: Path | None, index: int, companion: Path | None) -> frozenset[int]:
    if path is None:
        return _builtin_coverage()
    own = _cmap(path, index)
    if companion is None:
        return own
    return own | (_cmap(companion, 0) & _companion_codepoints())


@lru_cache(maxsize=1)
def _companion_codepoints() -> frozenset[int]:
    return frozenset(cp for r in _COMPANION_RANGES for cp in r)


def merge_cache_dir() -> Path:
    """Where merged script+Latin faces are kept between processes:
    ``$BILDWERK_FONT_CACHE``, else ``$XDG_CACHE_HOME/bildwerk/fonts`` (~/.cache)."""
    explicit = os.environ.get(ENV_FONT_CACHE)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "bildwerk" / "fonts"


@lru_cache(maxsize=16)
def _merged_face(script: Path, latin: Path) -> bytes:
    """Script font + the Latin glyphs it lacks, as font file bytes.

    Merging takes about a second, so the result is also kept on disk, named by the
    inputs' hashes; merging is deterministic, so a cached face equals a fresh one. An
    unwritable cache only costs time.
    """
    key = hashlib.sha256(
        f"{file_sha256(script)}:{file_sha256(latin)}:{_MERGE_RECIPE}:{fontTools.version}".encode()
    ).hexdigest()[:24]
    cached = merge_cache_dir() / f"{script.stem}+{latin.stem}-{key}.ttf"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _merge(script, latin)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, data)
    except OSError as exc:
        log.debug("cannot cache merged font in %s: %s", cached.parent, exc)
    return data


def _merge(script: Path, latin: Path) -> bytes:
    """The script font goes first so its metrics and shaping rules win; the Latin font is
    subset to what the script font does not have, which keeps merging under a second."""
    script_font = TTFont(str(script), recalcTimestamp=False)
    wanted = sorted(_companion_codepoints() - _cmap(script, 0))
    latin_font = TTFont(str(latin), recalcTimestamp=False)
    options = SubsetOptions()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = Subsetter(options)
    subsetter.populate(unicodes=wanted)
    subsetter.subset(latin_font)
    parts = []
    for font in (script_font, latin_font):
        buf = io.BytesIO()
        font.save(buf)
        buf.seek(0)
        parts.append(buf)
    stamp = max(script_font["head"].modified, latin_font["head"].modified)
    merged = Merger().merge(parts)
    merged["head"].created = merged["head"].modified = stamp  # merger stamps "now"
    out = io.BytesIO()
    merged.recalcTimestamp = False
    merged.save(out)
    return out.getvalue()


def _try_merge(script: Path, latin: Path) -> bool:
    """Whether the script+Latin merge works here; a failed merge drops the pairing."""
    try:
        _merged_face(script, latin)
    except Exception as exc:  # fontTools raises many types on odd font versions
        log.warning(
            "cannot merge %s with %s (%s); using %s alone",
            script.name,
            latin.name,
            exc,
            script.name,
        )
        return False
    return True


@lru_cache(maxsize=32)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_sha256(path: Path) -> str:
    """sha256 of a font file, cached by size and mtime (CJK collections are 20 MB)."""
    st = path.stat()
    return _file_sha256(path, st.st_size, st.st_mtime_ns)


# --- the font set ------------------------------------------------------------------------


class FontSet:
    """Fonts for one brand: resolves a face per role, script and locale.

    Brand font files are checked when the set is built, so a typo in ``brand.yaml`` is
    reported up front as a :class:`ConfigError` naming the brand file and the field.
    """

    def __init__(
        self,
        brand: BrandKit | None = None,
        brand_file: Path | str | None = None,
        *,
        dirs: Sequence[Path] | None = None,
    ) -> None:
        self._dirs = tuple(dirs) if dirs is not None else search_dirs()
        self._index = index_fonts(self._dirs)
        self._brand: dict[str, Path] = {}
        if brand is not None:
            where = Path(brand_file) if brand_file is not None else brand.root / "brand.yaml"
            self._brand = _check_brand_fonts(brand, where)

    @classmethod
    def from_brand(cls, brand: BrandKit, brand_path: Path | str | None = None) -> FontSet:
        """The set for ``brand``; ``brand_path`` (the brand yaml) is named in errors and
        defaults to ``brand.yaml`` in the brand's folder."""
        return cls(brand, brand_path)

    def find(self, name: str) -> Path | None:
        """Where a font file of this name was found on the search path, if anywhere."""
        return self._index.get(name)

    @property
    def brand_fonts(self) -> dict[str, Path]:
        """Field name ('headline', 'body') → resolved brand font file."""
        return dict(self._brand)

    def chain(self, role: Role, locale: str = "en", text: str = "") -> list[FontChoice]:
        """Every candidate face for ``role`` in order of preference, Pillow's font last."""
        weight: Weight = "regular" if role == "body" else "bold"
        fields = ("body",) if role == "body" else ("headline", "body")
        out = [FontChoice(self._brand[f]) for f in fields if f in self._brand]
        out.extend(self._system_chain(weight, locale, text))
        out.append(FontChoice(None))
        return _dedupe(out)

    def for_text(self, text: str, role: Role, locale: str = "en") -> FontChoice:
        """The first face in the chain that has a glyph for every character of ``text``.

        When none covers everything, the face covering the most characters is returned
        with ``missing`` set, so the caller can warn instead of failing.
        """
        need = needed_codepoints(text)
        best: FontChoice | None = None
        best_missing: frozenset[int] = need
        for choice in self.chain(role, locale, text):
            missing = need - choice.coverage()
            worse = choice.path is None or len(missing) >= len(best_missing)
            if (missing and worse) or not self._usable(choice):
                continue
            if not missing:
                return choice
            best, best_missing = choice, missing
        chosen = best if best is not None else FontChoice(None)
        lost = "".join(sorted({chr(c) for c in need - chosen.coverage()}))
        return FontChoice(chosen.path, chosen.index, chosen.companion, lost)

    def fingerprint(self) -> str:
        """Stable id of every font file this set may use: names and sha256 digests.

        Independent of where the files live, so two machines with the same fonts agree.
        Include it in job keys: a changed font changes the pixels.
        """
        files = sorted(
            {p for c in self._all_choices() for p in (c.path, c.companion) if p},
            key=lambda p: (p.name, str(p)),
        )
        parts = [f"{p.name}={file_sha256(p)}" for p in files]
        parts.append(f"engine={'raqm' if layout_engine() == ImageFont.Layout.RAQM else 'basic'}")
        parts.append(_MERGE_RECIPE)
        return ";".join(parts)

    # -- internals --

    def _usable(self, choice: FontChoice) -> bool:
        return (
            choice.companion is None
            or choice.path is None
            or _try_merge(choice.path, choice.companion)
        )

    def _all_choices(self) -> list[FontChoice]:
        out: list[FontChoice] = []
        for role in ("headline", "body"):
            out.extend(self.chain(role))
        return out

    def _system_chain(self, weight: Weight, locale: str, text: str) -> list[FontChoice]:
        latin = first_present(self._index, _LATIN[weight])
        groups: dict[str, list[FontChoice]] = {"latin": [FontChoice(latin)] if latin else []}
        for script, (tag,) in _SCRIPTS.items():
            groups[script] = self._script_choices(tag, weight, latin)
        cjk = first_present(self._index, _CJK[weight])
        if cjk is not None:
            region = cjk_region(locale, text)
            groups["cjk"] = [FontChoice(cjk, cjk_faces(cjk).get(region, 0))]
        order = list(groups)
        preferred = _LOCALE_SCRIPT.get(locale.replace("_", "-").split("-")[0].lower())
        if preferred in groups:
            order.remove(preferred)
            order.insert(0, preferred)
        out = [choice for key in order for choice in groups[key]]
        dejavu = first_present(self._index, _DEJAVU[weight])
        if dejavu is not None:
            out.append(FontChoice(dejavu))
        return out

    def _script_choices(self, tag: str, weight: Weight, latin: Path | None) -> list[FontChoice]:
        names = ([f"NotoSans{tag}-Bold.ttf"] if weight == "bold" else []) + [
            f"NotoSans{tag}-Regular.ttf"
        ]
        path = first_present(self._index, names)
        if path is None:
            return []
        paired = [FontChoice(path, companion=latin)] if latin is not None else []
        return [*paired, FontChoice(path)]


def _dedupe(choices: list[FontChoice]) -> list[FontChoice]:
    seen: set[FontChoice] = set()
    out: list[FontChoice] = []
    for c in choices:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _check_brand_fonts(brand: BrandKit, brand_file: Path) -> dict[str, Path]:
    """Resolve and open the brand's font files; any problem is the user's to fix."""
    out: dict[str, Path] = {}
    for field in ("headline", "body"):
        value: Path | None = getattr(brand.fonts, field)
        if value is None:
            continue
        path = brand.resolve(value)
        if not path.is_file():
            raise ConfigError(
                brand_file,
                f"font file not found: {path}",
                field=f"fonts.{field}",
                hint="fix the path (relative to the brand file) or remove the entry to use "
                "the Noto/DejaVu fallback fonts",
            )
        try:
            _cmap(path, 0)
        except (TTLibError, OSError, AssertionError, KeyError, ValueError) as exc:
            raise ConfigError(
                brand_file,
                f"not a usable font file: {path} ({exc})",
                field=f"fonts.{field}",
                hint="give a TrueType or OpenType font (.ttf, .otf, .ttc)",
            ) from None
        out[field] = path
    return out
