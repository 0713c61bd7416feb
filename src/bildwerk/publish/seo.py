"""SEO outputs for published images: ``<picture>`` markup, a preload hint for the hero,
schema.org JSON-LD, image sitemaps and a demo landing page.

Everything here is pure string building from :class:`PublishedImage`, so a page, a CMS
webhook body and a sitemap all describe the same renditions the same way. Markup aims at
Core Web Vitals: modern formats first, ``width``/``height`` on every ``<img>`` (no layout
shift), lazy loading everywhere except the one LCP hero, which is preloaded instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape as _html_escape
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from xml.sax.saxutils import escape as _xml_escape

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bildwerk.config.ladder import LANDING_GRID_SIZES
from bildwerk.errors import UserError
from bildwerk.publish.alttext import SOURCE_LANGUAGE, looks_like_filename

_log = logging.getLogger("bildwerk.publish.seo")

IPTC_DIGITAL_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_DIGITAL_SOURCE + "trainedAlgorithmicMedia"
"""A generated scene as-is (IPTC digital source type, also used in XMP and C2PA)."""
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    IPTC_DIGITAL_SOURCE + "compositeWithTrainedAlgorithmicMedia"
)
"""A generated scene combined with other media, e.g. a brand overlay with logo and copy."""
SCHEMA_ORG = "https://schema.org/"
PIXEL_UNIT = "E37"  # UN/CEFACT common code for "pixel", as schema.org QuantitativeValue wants

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
IMAGE_NS = "http://www.google.com/schemas/sitemap-image/1.1"
XHTML_NS = "http://www.w3.org/1999/xhtml"
MAX_SITEMAP_URLS = 50_000
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_IMAGES_PER_URL = 1000
MAX_URL_LENGTH = 2048

MIME = {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}
_FALLBACK_ORDER = ("jpeg", "png", "webp", "avif")  # what every browser can show in <img>
_SOURCE_ORDER = ("avif", "webp")  # smallest first: the browser takes the first it supports
_PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9/\-._~!$&'()*+,;=:@%]*)?$")


class Rendition(NamedTuple):
    """One published file of an image: its format, pixel size and public URL."""

    format: str
    width: int
    height: int
    url: str


@dataclass(frozen=True, kw_only=True)
class PublishedImage:
    """An image as the web sees it: where its renditions live and what to say about it.

    ``width``/``height`` are the master's, so ``<img>`` reserves the right box before any
    byte arrives; ``sizes`` is the channel's ``sizes`` string; ``lcp`` marks the hero.
    """

    asset_id: str
    slug: str
    alt: str
    title: str
    width: int
    height: int
    sizes: str
    lcp: bool
    renditions: Sequence[Rendition]
    creator: str
    creator_type: Literal["Organization", "Person"] = "Organization"
    credit_text: str | None = None
    copyright_notice: str | None = None
    license_url: str | None = None
    acquire_license_page: str | None = None
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA
    page_url: str | None = None
    lang: str | None = None  # BCP 47 language of alt and caption (the page's locale)
    caption: str | None = None  # the figure caption, in ``lang``; else the title
    subject: str | None = None  # product name, in SOURCE_LANGUAGE (shown with its lang)

    def __post_init__(self) -> None:
        object.__setattr__(self, "renditions", tuple(Rendition(*r) for r in self.renditions))
        where = f"asset {self.asset_id}"
        if not self.alt.strip() or looks_like_filename(self.alt):
            raise UserError(
                f"{where}: alt text {self.alt!r} is empty or a file name",
                hint="build it with alt_text() from the headline, slots and product label",
            )
        if self.width < 1 or self.height < 1:
            raise UserError(f"{where}: width and height must be positive")
        if not self.renditions:
            raise UserError(f"{where}: no renditions to publish", hint="run the render stage")
        unknown = sorted({r.format for r in self.renditions} - MIME.keys())
        if unknown:
            raise UserError(f"{where}: unknown rendition format(s) {unknown}")

    def by_format(self) -> dict[str, list[Rendition]]:
        """Renditions grouped by format, each group narrowest first, one per width."""
        groups: dict[str, dict[int, Rendition]] = {}
        for r in self.renditions:
            groups.setdefault(r.format, {}).setdefault(r.width, r)
        return {f: [g[w] for w in sorted(g)] for f, g in groups.items()}

    def fallback(self) -> Rendition:
        """The widest rendition in the most compatible format: ``<img src>`` and
        ``contentUrl`` (what crawlers index)."""
        groups = self.by_format()
        fmt = next(f for f in _FALLBACK_ORDER if f in groups)
        return groups[fmt][-1]


# --------------------------------------------------------------------------- markup


def _attr(value: str | int) -> str:
    return _html_escape(str(value), quote=True)


def _srcset(renditions: Sequence[Rendition]) -> str:
    # commas and spaces separate srcset candidates, so they must not appear raw in URLs
    return ", ".join(
        f"{r.url.replace(' ', '%20').replace(',', '%2C')} {r.width}w" for r in renditions
    )


def picture_html(
    img: PublishedImage, *, hero: bool | None = None, alt_lang: str | None = None
) -> str:
    """``<picture>`` with AVIF and WebP ``<source>``s and a JPEG ``<img>`` fallback.

    ``hero`` defaults to ``img.lcp``: the hero loads eagerly with ``fetchpriority="high"``
    (lazy loading the LCP image delays it); every other image is lazy and decodes async.
    ``alt_lang`` marks an alt text in another language than the page's.
    """
    hero = img.lcp if hero is None else hero
    groups = img.by_format()
    fallback = img.fallback()
    lines = ["<picture>"]
    for fmt in _SOURCE_ORDER:
        if fmt in groups and fmt != fallback.format:
            lines.append(
                f'  <source type="{MIME[fmt]}" srcset="{_attr(_srcset(groups[fmt]))}"'
                f' sizes="{_attr(img.sizes)}">'
            )
    loading = 'fetchpriority="high"' if hero else 'loading="lazy" decoding="async"'
    lang_attr = f' lang="{_attr(alt_lang)}"' if alt_lang else ""
    lines.append(
        f'  <img src="{_attr(fallback.url)}" srcset="{_attr(_srcset(groups[fallback.format]))}"'
        f' sizes="{_attr(img.sizes)}" width="{img.width}" height="{img.height}"'
        f' alt="{_attr(img.alt)}"{lang_attr} {loading}>'
    )
    lines.append("</picture>")
    return "\n".join(lines)


def preload_link(img: PublishedImage) -> str:
    """``<link rel=preload>`` for the hero, in its first ``<source>`` format, so the
    browser fetches the LCP image while it still parses ``<head>``. Browsers without
    that format skip the hint and fall back through ``<picture>`` as usual."""
    groups = img.by_format()
    fmt = next(f for f in (*_SOURCE_ORDER, *_FALLBACK_ORDER) if f in groups)
    return (
        f'<link rel="preload" as="image" imagesrcset="{_attr(_srcset(groups[fmt]))}"'
        f' imagesizes="{_attr(img.sizes)}" type="{MIME[fmt]}" fetchpriority="high">'
    )


def json_ld(img: PublishedImage) -> dict[str, Any]:
    """schema.org ``ImageObject`` with the fields Google's image metadata reads (creator,
    credit, copyright, licence) and ``digitalSourceType`` as the schema.org enumeration
    member (``https://schema.org/TrainedAlgorithmicMediaDigitalSource``) for the IPTC code
    the stamp stage writes into XMP/C2PA, so every channel discloses AI generation alike.
    ``width``/``height`` are ``QuantitativeValue``s in pixels (schema.org's range for
    them is Distance or QuantitativeValue; a bare number does not validate)."""
    content = img.fallback()
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "ImageObject",
        "identifier": img.asset_id,
        "contentUrl": content.url,
        "encodingFormat": MIME[content.format],
        "width": _pixels(content.width),
        "height": _pixels(content.height),
        "name": img.title,
        "description": img.alt,
        "creator": {"@type": img.creator_type, "name": img.creator},
        "creditText": img.credit_text,
        "copyrightNotice": img.copyright_notice,
        "license": img.license_url,
        "acquireLicensePage": img.acquire_license_page,
        "digitalSourceType": schema_digital_source(img.digital_source_type),
        "inLanguage": img.lang,
        "url": img.page_url,
    }
    return {k: v for k, v in data.items() if v is not None}


def _pixels(n: int) -> dict[str, Any]:
    return {"@type": "QuantitativeValue", "value": n, "unitCode": PIXEL_UNIT}


def schema_digital_source(code: str) -> str:
    """The schema.org ``IPTCDigitalSourceEnumeration`` member for an IPTC digital source
    type URI (``…/digitalsourcetype/trainedAlgorithmicMedia`` ->
    ``https://schema.org/TrainedAlgorithmicMediaDigitalSource``); other values pass."""
    if not code.startswith(IPTC_DIGITAL_SOURCE):
        return code
    name = code.removeprefix(IPTC_DIGITAL_SOURCE)
    return f"{SCHEMA_ORG}{name[:1].upper()}{name[1:]}DigitalSource"


def json_ld_script(img: PublishedImage) -> str:
    """JSON-LD in a ``<script>`` element; ``<``, ``>`` and ``&`` are escaped so no value
    can close the element early."""
    text = json.dumps(json_ld(img), ensure_ascii=False, indent=1)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/ld+json">\n{text}\n</script>'


# --------------------------------------------------------------------------- sitemaps


def _sitemap_url(url: str, what: str) -> str:
    """An absolute http(s) URL, percent-encoded (RFC 3986) and XML-escaped."""
    if _PLAIN_URL.match(url) and len(url) <= MAX_URL_LENGTH:  # fast path: nothing to encode
        return _xml_escape(url, {'"': "&quot;", "'": "&apos;"})
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{what} {url!r} is not an absolute http(s) URL", hint="check base URLs")
    host = parts.hostname.encode("idna").decode("ascii")
    netloc = host + (f":{parts.port}" if parts.port else "")
    safe = "/:@!$&'()*+,;=%~-._"
    encoded = urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=safe),
            quote(parts.query, safe=safe + "?"),
            "",
        )
    )
    if len(encoded) > MAX_URL_LENGTH:
        raise UserError(f"{what} is longer than {MAX_URL_LENGTH} characters: {encoded[:80]}…")
    return _xml_escape(encoded, {'"': "&quot;", "'": "&apos;"})


def sitemaps(
    pages: Sequence[tuple[str, Sequence[str]]],
    *,
    base_url: str,
    max_urls: int = MAX_SITEMAP_URLS,
    max_images_per_page: int = MAX_IMAGES_PER_URL,
    max_bytes: int = MAX_SITEMAP_BYTES,
    name: str = "sitemap-images",
    on_drop: Callable[[str, int], None] | None = None,
    alternates: Mapping[str, Mapping[str, str]] | None = None,
) -> list[tuple[str, bytes]]:
    """Image sitemap files as ``(filename, bytes)``; the first is always the entry point
    (``{name}.xml``) to list in robots.txt or Search Console.

    Only what Google still reads: ``url/loc`` and ``image:image/image:loc`` (caption,
    title, licence and geo tags are deprecated). A page keeps its first
    ``max_images_per_page`` images (put the important ones first); each dropped tail is
    logged and passed to ``on_drop(page_url, n_dropped)``, because repeating a page's
    ``<url>`` to carry more images would list a duplicate URL. Pages listed twice are
    merged. Above ``max_urls`` URLs or ``max_bytes`` per file, ``{name}.xml`` becomes a
    sitemap index pointing at ``{name}-1.xml``, ``{name}-2.xml``… under ``base_url``.
    ``alternates`` maps a page URL to its language versions (hreflang -> URL, itself
    and ``x-default`` included), written as ``xhtml:link`` as Google documents.
    """
    if not 1 <= max_urls <= MAX_SITEMAP_URLS:
        raise ValueError(f"max_urls must be within 1..{MAX_SITEMAP_URLS}")
    if not 1 <= max_images_per_page <= MAX_IMAGES_PER_URL:
        raise ValueError(f"max_images_per_page must be within 1..{MAX_IMAGES_PER_URL}")
    if not 4096 <= max_bytes <= MAX_SITEMAP_BYTES:
        raise ValueError(f"max_bytes must be within 4096..{MAX_SITEMAP_BYTES}")
    base = _sitemap_url(base_url.rstrip("/") + "/", "base_url")

    links: dict[str, str] = {}
    for page_url, versions in (alternates or {}).items():
        links[_sitemap_url(page_url, "page URL")] = "".join(
            f'<xhtml:link rel="alternate" hreflang="{_xml_escape(lang)}"'
            f' href="{_sitemap_url(url, f"hreflang {lang} URL")}"/>'
            for lang, url in sorted(versions.items())
        )
    merged: dict[str, dict[str, None]] = {}  # insertion-ordered sets
    for page_url, images in pages:
        bucket = merged.setdefault(_sitemap_url(page_url, "page URL"), {})
        for image_url in images:
            bucket.setdefault(_sitemap_url(image_url, f"image URL on {page_url}"), None)

    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}" '
    head += f'xmlns:image="{IMAGE_NS}"'
    head += f' xmlns:xhtml="{XHTML_NS}">\n' if links else ">\n"
    tail = "</urlset>\n"
    frame = len(head.encode()) + len(tail.encode())
    chunks: list[list[str]] = [[]]
    size = frame
    for loc, image_set in merged.items():
        images = list(image_set)
        if len(images) > max_images_per_page:
            dropped = len(images) - max_images_per_page
            _log.warning(
                "sitemap: %s has %d images; dropped the last %d", loc, len(images), dropped
            )
            if on_drop is not None:
                on_drop(loc, dropped)
            images = images[:max_images_per_page]
        entry = (
            f"<url><loc>{loc}</loc>"
            + links.get(loc, "")
            + "".join(f"<image:image><image:loc>{i}</image:loc></image:image>" for i in images)
        )
        entry += "</url>\n"
        n = len(entry.encode())
        if chunks[-1] and (len(chunks[-1]) >= max_urls or size + n > max_bytes):
            chunks.append([])
            size = frame
        chunks[-1].append(entry)
        size += n

    files = [(head + "".join(c) + tail).encode() for c in chunks]
    if len(files) == 1:
        return [(f"{name}.xml", files[0])]
    if len(files) > MAX_SITEMAP_URLS:
        raise UserError(f"{len(files)} sitemap files exceed one index's {MAX_SITEMAP_URLS}")
    names = [f"{name}-{i}.xml" for i in range(1, len(files) + 1)]
    index = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">\n'
    index += "".join(f"<sitemap><loc>{base}{n}</loc></sitemap>\n" for n in names)
    index += "</sitemapindex>\n"
    return [(f"{name}.xml", index.encode()), *zip(names, files, strict=True)]


# --------------------------------------------------------------------------- landing page

_env = Environment(
    loader=PackageLoader("bildwerk", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, kw_only=True)
class PageHead:
    """What a page says about itself to search engines and link previews.

    ``canonical`` and the ``alternates`` (hreflang -> URL, this page included) must be
    absolute: Google ignores relative canonical and hreflang links, and Open Graph
    images must be absolute too. The publish target's ``site_url`` (``base_url`` of a
    folder) provides them, so a target without a public URL cannot have SEO pages.
    ``x_default`` is the page for languages not listed (the site's index).
    """

    canonical: str
    alternates: Mapping[str, str] = dataclasses.field(default_factory=dict)
    x_default: str | None = None
    site_name: str | None = None
    favicon: str | None = None  # URL of the favicon (PNG from the brand logo)
    share_image: PublishedImage | None = None  # Open Graph / Twitter card image

    def __post_init__(self) -> None:
        for what, url in (
            ("canonical URL", self.canonical),
            *((f"hreflang {k} URL", v) for k, v in self.alternates.items()),
            ("x-default URL", self.x_default or "https://x/"),
        ):
            if not url.startswith(("https://", "http://")):
                raise UserError(
                    f"page {self.canonical!r}: {what} {url!r} is not absolute",
                    hint="give the target a public base_url or site_url in bildwerk.yaml",
                )


def landing_page(
    images: Sequence[PublishedImage],
    *,
    title: str,
    lang: str,
    dir: Literal["ltr", "rtl", "auto"] = "ltr",
    description: str | None = None,
    heading: str | None = None,
    head: PageHead | None = None,
) -> str:
    """A demo landing page: the first LCP image as hero (preloaded, eager), the rest lazy
    in a grid, JSON-LD per image. Every ``<img>`` has ``width``/``height`` and the CSS
    scales with ``height: auto``, so nothing shifts while images load (CLS 0).

    Alt texts and captions are made unique within the page (a repeat gets `` (2)``…),
    since screen-reader users and image search cannot tell identical ones apart; text
    whose ``lang`` differs from the page's is marked with its own ``lang``."""
    if not images:
        raise UserError("nothing to put on the landing page", hint="approve some variants")
    hero = next((i for i in images if i.lcp), None)
    ordered = ([hero] if hero else []) + [i for i in images if i is not hero]
    alts = _unique([i.alt for i in ordered])
    captions = _unique(
        [i.caption or i.title for i in ordered],
        [f"{i.subject or ''} {i.width}×{i.height}" for i in ordered],
    )
    ordered = [
        dataclasses.replace(i, alt=a, caption=c)
        for i, a, c in zip(ordered, alts, captions, strict=True)
    ]
    share = head.share_image if head and head.share_image else (ordered[0] if ordered else None)
    return _env.get_template("landing.html").render(
        title=title,
        heading=heading or title,
        lang=lang,
        dir=dir,
        description=description,
        head=head,
        share=_share(share, head) if head and share else None,
        preload=Markup(preload_link(ordered[0])) if hero else None,
        hero=_item(ordered[0], hero=True, lang=lang) if hero else None,
        items=[_item(i, hero=False, lang=lang) for i in ordered[1 if hero else 0 :]],
        scripts=[Markup(json_ld_script(i)) for i in ordered],
    )


def _unique(texts: Sequence[str], shown_with: Sequence[str] | None = None) -> list[str]:
    """``texts`` with every repeat numbered: ``a, a, b`` -> ``a, a (2), b``; a text is a
    repeat only if what it is ``shown_with`` (e.g. product and size) repeats too."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i, t in enumerate(texts):
        key = (t, shown_with[i] if shown_with else "")
        n = seen[key] = seen.get(key, 0) + 1
        out.append(t if n == 1 else f"{t} ({n})")
    return out


def _share(img: PublishedImage, head: PageHead) -> dict[str, Any]:
    """Open Graph / Twitter card image: the widest JPEG (every scraper decodes it)."""
    r = img.fallback()
    return {
        "url": urljoin(head.canonical, r.url),
        "type": MIME[r.format],
        "width": r.width,
        "height": r.height,
        "alt": img.alt,
    }


def _item(img: PublishedImage, *, hero: bool, lang: str) -> dict[str, Any]:
    if not hero:
        img = dataclasses.replace(img, sizes=GRID_SIZES)
    foreign = img.lang is not None and _language(img.lang) != _language(lang)
    return {
        "picture": Markup(picture_html(img, hero=hero, alt_lang=img.lang if foreign else None)),
        "caption": img.caption or img.title,
        "caption_lang": img.lang if foreign else None,
        "subject": img.subject,
        "subject_lang": SOURCE_LANGUAGE if _language(lang) != SOURCE_LANGUAGE else None,
        "size": f"{img.width} × {img.height}",
        "img": img,
    }


def _language(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


#: The landing grid's ``sizes`` (its layout is described where the ladders use it).
GRID_SIZES = LANDING_GRID_SIZES
