"""Alt text and captions for published images, in the page's language.

Alt text says what the image shows and the copy it carries (WCAG 1.1.1), never a file
name; pages in another language than the brief's slot values get a per-language
template filled with that locale's copy, so no foreign word lands in an ``alt`` that
cannot carry a ``lang`` of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bildwerk.errors import UserError

_ALT_MAX = 150

# Typographic quotes per language for the headline quoted in alt text; others get “…”.
_QUOTES: dict[str, tuple[str, str]] = {
    "de": ("„", "“"),
    "fr": ("«\u202f", "\u202f»"),
    "es": ("«", "»"),
    "it": ("«", "»"),
    "ru": ("«", "»"),
    "ar": ("«", "»"),
    "pl": ("„", "”"),
    "ja": ("「", "」"),
    "zh": ("“", "”"),
}
_IMAGE_EXT = re.compile(r"\.(?:avif|webp|jpe?g|png|gif|tiff?|heic|bmp|svg)$", re.IGNORECASE)
_HASHY = re.compile(r"(?:^|[_\-.])[0-9a-f]{8,}(?=$|[_\-.])", re.IGNORECASE)


def looks_like_filename(text: str) -> bool:
    """True for strings such as ``hero_01.png`` or ``sneaker-3fa9c1d2``: useless as alt."""
    t = text.strip()
    if _IMAGE_EXT.search(t):
        return True
    if not t or any(c.isspace() for c in t):
        return False
    return bool(re.search(r"[/\\_]|\.\d+$", t) or _HASHY.search(t))


def _humanize(value: str) -> str:
    """Turn a slot value or label into words; file-name-ish values lose path, extension,
    hashes and separators (``red_sneaker-3fa9c1d2.png`` -> ``red sneaker``)."""
    v = value.strip()
    if looks_like_filename(v):
        v = re.split(r"[/\\]", v)[-1]
        v = _IMAGE_EXT.sub("", v)
        v = _HASHY.sub(" ", v)
        v = re.sub(r"[_\-.]+", " ", v)
    return re.sub(r"\s+", " ", v).strip()


def alt_text(
    copy_headline: str,
    slots: Mapping[str, str],
    product_label: str | None,
    locale: str | None,
) -> str:
    """Alt text that says what the image shows and the text it carries (WCAG 1.1.1).

    ``Trail Runner X, pastel podium, soft light. “Fresh drop”``: product, then the scene
    from slot values (pass ``slots`` without the product slot when ``product_label`` names
    it; equal values are dropped anyway), then the headline set on the creative in the
    locale's quotation marks. Slot values are in the brief's language, the headline in the
    locale's. Scene details are dropped from the end to stay near 150 characters; the
    headline is never cut. Never a file name.
    """
    headline = re.sub(r"\s+", " ", copy_headline).strip()
    subject = _humanize(product_label) if product_label else ""
    seen = {subject.casefold()} if subject else set()
    details: list[str] = []
    for value in slots.values():
        v = _humanize(value)
        if v and v.casefold() not in seen:
            seen.add(v.casefold())
            details.append(v)
    lang = (locale or "").replace("_", "-").split("-")[0].lower()
    q_open, q_close = _QUOTES.get(lang, ("“", "”"))
    quoted = f"{q_open}{headline}{q_close}" if headline else ""
    parts = [subject, *details] if subject else details
    while parts:
        description = ", ".join(parts).rstrip(".")
        if parts[0].split()[0].islower():  # "red sneaker" -> "Red sneaker"; "iPhone" stays
            description = description[0].upper() + description[1:]
        alt = f"{description}. {quoted}" if quoted else description
        if len(alt) <= _ALT_MAX or len(parts) == 1:
            return alt
        parts = parts[:-1]
    if headline:
        return headline
    raise UserError(
        "cannot write alt text: no headline, product label or slot values",
        hint="give the locale a headline or the brief prompt slots",
    )


SOURCE_LANGUAGE = "en"
"""The language brief slot values (product, surface, mood) are written in."""

# Alt text for pages in another language than the slot values: what the image is and the
# copy it carries, all in the locale (the copy comes from the brief's locale section).
_ALT_TEMPLATES: dict[str, str] = {
    "ar": "صورة منتج: {quoted}. {subline}",
    "de": "Produktfoto: {quoted}. {subline}",
    "es": "Foto de producto: {quoted}. {subline}",
    "fr": "Photo de produit : {quoted}. {subline}",
    "it": "Foto del prodotto: {quoted}. {subline}",
    "ja": "商品写真：{quoted}。{subline}",
    "nl": "Productfoto: {quoted}. {subline}",
    "pt": "Foto do produto: {quoted}. {subline}",
    "zh": "产品照片：{quoted}。{subline}",
}


def localized_alt(
    headline: str,
    subline: str | None,
    slots: Mapping[str, str],
    product_label: str | None,
    locale: str | None,
) -> str:
    """Alt text in the page's language: :func:`alt_text` where the locale speaks the
    slot values' language (:data:`SOURCE_LANGUAGE`), else the locale's template
    (``_ALT_TEMPLATES``; unknown languages get the quoted headline and subline) filled
    with that locale's copy, so no foreign word lands in an ``alt`` that cannot carry a
    ``lang`` of its own."""
    lang = (locale or SOURCE_LANGUAGE).replace("_", "-").split("-")[0].lower()
    if lang == SOURCE_LANGUAGE:
        return alt_text(headline, slots, product_label, locale)
    q_open, q_close = _QUOTES.get(lang, ("“", "”"))
    text = re.sub(r"\s+", " ", headline).strip()
    quoted = f"{q_open}{text}{q_close}"
    template = _ALT_TEMPLATES.get(lang, "{quoted} {subline}")
    alt = template.format(quoted=quoted, subline=(subline or "").strip())
    return alt.strip().rstrip(".").strip() if not subline else alt.strip()


def subject_name(product_label: str | None) -> str | None:
    """A product slot value as a name for captions (``red_sneaker.png`` -> ``Red
    sneaker``), or None."""
    name = _humanize(product_label) if product_label else ""
    return name[:1].upper() + name[1:] if name else None


def caption_text(headline: str, subline: str | None) -> str:
    """A figure caption in the locale: the headline and, if any, the subline."""
    return f"{headline} — {subline}" if subline else headline
