"""Which writing system a text is in: chooses OCR thresholds and legibility rules."""

from __future__ import annotations

_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"),
    (0x08A0, 0x08FF, "arabic"),
    (0xFB50, 0xFDFF, "arabic"),
    (0xFE70, 0xFEFF, "arabic"),
    (0x3040, 0x30FF, "cjk"),
    (0x3400, 0x4DBF, "cjk"),
    (0x4E00, 0x9FFF, "cjk"),
    (0xAC00, 0xD7AF, "cjk"),
    (0xFF00, 0xFFEF, "cjk"),
)


def script_of(text: str) -> str:
    """The dominant non-Latin script among the letters, else 'latin'."""
    counts: dict[str, int] = {}
    for ch in text:
        cp = ord(ch)
        for lo, hi, name in _RANGES:
            if lo <= cp <= hi:
                counts[name] = counts.get(name, 0) + 1
                break
    letters = sum(1 for ch in text if ch.isalpha())
    if counts:
        name, n = max(counts.items(), key=lambda kv: kv[1])
        if n >= 0.3 * max(1, letters):
            return name
    return "latin"
