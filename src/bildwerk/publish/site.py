"""The pages a storage target serves next to its images: a landing page per campaign and
locale, an index of them, image sitemaps and robots.txt.

Built only from what is published on the target (its publication rows), so pages never
point at files that were taken down, and rebuilding them is idempotent.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image

from bildwerk.publish import seo


@dataclass(frozen=True)
class PublishedFile:
    """One published rendition as a page needs it: the image it belongs to and its URL."""

    image: Mapping[str, Any]  # PublishedImage fields except renditions (see image_fields)
    format: str
    width: int
    height: int
    url: str


# PublishedImage fields stored per publication; renditions and page_url are per target.
_IMAGE_KEYS = tuple(
    f.name for f in fields(seo.PublishedImage) if f.name not in ("renditions", "page_url")
)


def image_fields(img: seo.PublishedImage) -> dict[str, Any]:
    """What is stored with each publication so pages can be rebuilt without the brief."""
    return {k: getattr(img, k) for k in _IMAGE_KEYS}


def page_url(site_url: str, campaign: str, locale: str) -> str:
    """The landing page of a campaign in a locale, where its images appear."""
    return f"{site_url}/{campaign}/{locale}/"


def images_from(files: Iterable[PublishedFile], page_urls: Mapping[str, str]) -> list[Any]:
    """Group files into :class:`seo.PublishedImage`s, in first-seen order."""
    grouped: dict[str, tuple[Mapping[str, Any], list[seo.Rendition]]] = {}
    for f in files:
        entry = grouped.setdefault(f.image["asset_id"], (f.image, []))
        entry[1].append(seo.Rendition(f.format, f.width, f.height, f.url))
    out = []
    for asset_id, (stored, renditions) in grouped.items():
        known = {k: v for k, v in stored.items() if k in _IMAGE_KEYS}
        out.append(
            seo.PublishedImage(**known, renditions=renditions, page_url=page_urls.get(asset_id))
        )
    return out


@dataclass(frozen=True)
class Page:
    """A landing page: one campaign in one locale."""

    campaign: str
    campaign_name: str
    locale: str
    direction: str
    images: list[str] = field(default_factory=list)  # asset ids

    @property
    def key(self) -> str:
        return f"{self.campaign}/{self.locale}/index.html"


FAVICON = "favicon.png"
FAVICON_SIZE = 48  # Google Search shows favicons from a multiple of 48 px


def favicon_png(logo: Path) -> bytes:
    """The brand logo fitted into a transparent square PNG (deterministic bytes)."""
    with Image.open(logo) as src:
        mark = src.convert("RGBA")
    mark.thumbnail((FAVICON_SIZE, FAVICON_SIZE), Image.Resampling.LANCZOS)
    icon = Image.new("RGBA", (FAVICON_SIZE, FAVICON_SIZE), (0, 0, 0, 0))
    icon.paste(mark, ((FAVICON_SIZE - mark.width) // 2, (FAVICON_SIZE - mark.height) // 2))
    out = io.BytesIO()
    icon.save(out, "PNG", optimize=True)
    return out.getvalue()


def site_files(
    files: Sequence[PublishedFile],
    *,
    site_url: str,
    site_name: str,
    favicon: bytes | None = None,
) -> dict[str, bytes]:
    """Every page of the site by key: landing pages, ``index.html``, sitemaps, robots.txt
    and the favicon. Empty when nothing is published (the caller then removes the old
    pages).

    Each landing page is written in its locale: title, heading, description, alt texts
    and captions come from the brief's copy for that locale (see ``describe``). Pages of
    one campaign point at each other with hreflang (in the pages and the sitemap), and
    at the index as ``x-default``. Canonical and hreflang URLs are absolute, from
    ``site_url``; one that is not absolute stops the publish with a clear message."""
    pages: dict[tuple[str, str], Page] = {}
    for f in files:
        img = f.image
        where = (img["campaign"], img["locale"])
        if where not in pages:
            pages[where] = Page(
                img["campaign"], img.get("campaign_name") or img["campaign"], img["locale"],
                img.get("direction", "ltr"),
            )  # fmt: skip
        if img["asset_id"] not in pages[where].images:
            pages[where].images.append(img["asset_id"])
    if not pages:
        return {}
    stored = {f.image["asset_id"]: f.image for f in files}
    urls = {p.key: page_url(site_url, p.campaign, p.locale) for p in pages.values()}
    asset_page = {a: urls[p.key] for p in pages.values() for a in p.images}
    images = {i.asset_id: i for i in images_from(files, asset_page)}
    home = f"{site_url}/"
    icon = f"{site_url}/{FAVICON}" if favicon else None
    out: dict[str, bytes] = {}
    sitemap_pages = []
    alternates: dict[str, dict[str, str]] = {}
    for page in pages.values():
        if page.locale:
            alternates.setdefault(page.campaign, {})[page.locale] = urls[page.key]
    for page in sorted(pages.values(), key=lambda p: p.key):
        members = [images[a] for a in page.images]
        members.sort(key=lambda i: (not i.lcp, i.asset_id))  # the hero leads
        lead = stored[members[0].asset_id]
        share = next((i for i in members if stored[i.asset_id].get("channel") == "og_image"), None)
        heading = lead.get("headline") or page.campaign_name
        description = lead.get("subline") or lead.get("headline") or members[0].alt
        links = alternates.get(page.campaign, {}) if page.locale else {}
        html = seo.landing_page(
            members,
            title=f"{heading} · {site_name}",
            heading=heading,
            lang=page.locale or "en",
            dir="rtl" if page.direction == "rtl" else "ltr",
            description=description,
            head=seo.PageHead(
                canonical=urls[page.key],
                alternates=links if len(links) > 1 else {},
                x_default=home if len(links) > 1 else None,
                site_name=site_name,
                favicon=icon,
                share_image=share or members[0],
            ),
        )
        out[page.key] = html.encode()
        sitemap_pages.append((urls[page.key], [i.fallback().url for i in members]))
    page_links = {
        url: {**links, "x-default": home}
        for links in alternates.values()
        if len(links) > 1
        for url in links.values()
    }
    for name, data in seo.sitemaps(sitemap_pages, base_url=site_url, alternates=page_links):
        out[name] = data
    out["index.html"] = _index(site_name, sorted(pages.values(), key=lambda p: p.key), icon)
    if favicon:
        out[FAVICON] = favicon
    out["robots.txt"] = (
        f"User-agent: *\nAllow: /\nSitemap: {site_url}/sitemap-images.xml\n".encode()
    )
    return out


def _index(site_name: str, pages: Sequence[Page], icon: str | None) -> bytes:
    items = "\n".join(
        f'<li><a href="{escape(p.campaign)}/{escape(p.locale)}/" hreflang="{escape(p.locale)}">'
        f"{escape(p.campaign_name)} — {escape(p.locale)}"
        f"</a> ({len(p.images)} images)</li>"
        for p in pages
    )
    link = f'<link rel="icon" type="image/png" href="{escape(icon)}">\n' if icon else ""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(site_name)}</title>\n"
        f'<meta name="description" content="{escape(site_name)}: campaign pages by locale">\n'
        f"{link}</head>\n<body>\n<main>\n<h1>{escape(site_name)}</h1>\n"
        f"<ul>\n{items}\n</ul>\n</main>\n</body>\n</html>\n"
    ).encode()
