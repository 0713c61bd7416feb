"""The published pages and the run's contact sheet under third-party auditors: axe-core in
headless Chromium (no serious or critical violations) and the W3C Nu checker (0 errors).

The pages come from the real site builder (``site_files``) over files rendered by the
real render stage, served from 127.0.0.1; the contact sheet from ``write_report``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bildwerk.config.channels import Channel
from bildwerk.publish import alttext, seo
from bildwerk.publish.site import PublishedFile, favicon_png, image_fields, site_files
from bildwerk.stages.render import render
from bildwerk.stages.report import write_report
from tests.publish import audit, browser
from tests.publish.test_landing_browser import master

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(audit.missing() is not None, reason=str(audit.missing())),
]

EXT = {"avif": "avif", "webp": "webp", "jpeg": "jpg", "png": "png"}
# Small channels: the audits read markup, so two widths each keep the encodes cheap.
HERO = Channel(name="web_hero", width=960, height=540, lcp=True, hero=True, widths=(480,))
FEED = Channel(name="instagram_feed", width=432, height=540, widths=(216,))
OG = Channel(name="og_image", width=600, height=315, widths=(300,))
COPY = {
    "en-US": ("Summer, bottled.", "Up to 30% off our bestsellers this week.", "ltr"),
    "ar-AE": ("الصيف في زجاجة", "خصم يصل إلى ٣٠٪ على الأكثر مبيعاً هذا الأسبوع", "rtl"),
}


@dataclass(frozen=True)
class Site:
    server: browser.Server
    folder: Path
    pages: dict[str, bytes]


def _published(folder: Path, base: str) -> list[PublishedFile]:
    files = []
    (folder / "img").mkdir(exist_ok=True)
    for n, (locale, (headline, subline, direction)) in enumerate(COPY.items()):
        for k, (channel, product) in enumerate(
            ((HERO, "can"), (FEED, "can"), (FEED, "serum"), (OG, "can"))
        ):
            seed = 10 * n + k
            slots = {"surface": "pastel podium", "mood": "warm sunset"}
            img = seo.PublishedImage(
                asset_id=f"a{seed:02d}",
                slug=f"summer-{product}-{locale.lower()}",
                alt=alttext.localized_alt(headline, subline, slots, product, locale),
                title=f"Summer Sale — {headline}",
                caption=alttext.caption_text(headline, subline),
                lang=locale,
                width=channel.width,
                height=channel.height,
                sizes=channel.sizes,
                lcp=channel.lcp,
                renditions=[seo.Rendition("jpeg", 1, 1, "-")],
                creator="Acme",
            )
            fields: dict[str, Any] = {
                **image_fields(img), "campaign": "summer-sale", "campaign_name": "Summer Sale",
                "locale": locale, "direction": direction, "channel": channel.name,
                "headline": headline, "subline": subline,
            }  # fmt: skip
            for r in render(master(*channel.master_size, seed), channel):
                key = f"img/{img.slug}-{channel.name}-{r.width}w.{EXT[r.format]}"
                (folder / key).write_bytes(r.data)
                files.append(PublishedFile(fields, r.format, r.width, r.height, f"{base}/{key}"))
    return files


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("audit-site")
    logo = folder.parent / "logo.png"
    Image.new("RGBA", (120, 40), (200, 30, 60, 255)).save(logo)
    with browser.serve(folder) as server:
        pages = site_files(
            _published(folder, server.base_url),
            site_url=server.base_url,
            site_name="acme",
            favicon=favicon_png(logo),
        )
        for key, data in pages.items():
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_bytes(data)
        yield Site(server, folder, pages)


def _manifest(folder: Path) -> dict[str, Any]:
    """A run manifest with a few variants, their thumbnails written into ``folder``."""
    variants = []
    for i, (locale, (headline, _, _)) in enumerate(COPY.items()):
        for status in ("pass", "warn"):
            vid = f"v{i}{status}"
            thumb = f"renditions/{vid}-480.webp"
            (folder / "renditions").mkdir(exist_ok=True)
            master(480, 600, i).save(folder / thumb, "WEBP")
            variants.append({
                "id": vid, "channel": "instagram_feed", "segment": "city", "locale": locale,
                "seed": 1200 + i, "slots": {"product": "can", "surface": "pastel podium"},
                "copy": {"headline": headline}, "prompt": "studio packshot of the can",
                "cached": False, "master": {"path": f"masters/{vid}.png", "width": 1080,
                                            "height": 1350},
                "qa": {"status": status, "checks": [
                    {"name": "contrast", "verdict": status, "reason": "4.8:1"}]},
                "decision": {"state": "approved", "rank": 1, "reasons": []},
                "renditions": [{"format": "webp", "width": 480, "height": 600, "path": thumb,
                                "bytes": 21000, "within_budget": True, "budget": 250000,
                                "quality": 80}],
            })  # fmt: skip
    return {
        "campaign": "summer-sale", "run_id": "20260101-000000-abcd", "created_at": "2026-01-01",
        "backend": "studio", "brief_sha256": "0" * 64, "strategy": "fractional",
        "full_matrix": 12, "variants": variants, "failed": [], "refused": [],
    }  # fmt: skip


@pytest.fixture(scope="module")
def sheet(site: Site) -> Path:
    run = site.folder / "run"
    run.mkdir()
    path = run / "report.html"
    path.write_text(write_report(_manifest(run)), encoding="utf-8")
    return path


@pytest.mark.parametrize("locale", list(COPY))
def test_landing_page_has_no_serious_axe_violations(site: Site, locale: str) -> None:
    for width in (412, 1350):
        found = audit.axe(f"{site.server.base_url}/summer-sale/{locale}/", width=width)
        assert audit.serious(found) == [], (locale, width, found)


def test_contact_sheet_has_no_serious_axe_violations(site: Site, sheet: Path) -> None:
    found = audit.axe(f"{site.server.base_url}/run/report.html")
    assert audit.serious(found) == [], found


def test_axe_finds_nameless_thumbnail_links(site: Site, sheet: Path) -> None:
    """Negative control: the old sheet's thumbnails (links whose only content is an
    image without alt text) are what axe reports as serious ``link-name``."""
    html = sheet.read_text(encoding="utf-8")
    old = re.sub(r'(<a href="masters/[^"]+"><img [^>]*?) alt="[^"]*"', r'\1 alt=""', html)
    assert old != html
    (sheet.parent / "old.html").write_text(old, encoding="utf-8")
    found = audit.axe(f"{site.server.base_url}/run/old.html")
    assert any(s.startswith("link-name (serious)") for s in audit.serious(found)), found


def test_pages_and_sheet_pass_the_nu_checker(site: Site, sheet: Path) -> None:
    pages = [site.folder / k for k in site.pages if k.endswith(".html")]
    assert len(pages) == 3  # two locales and the index
    assert audit.nu_errors([*pages, sheet]) == []


def test_nu_checker_reports_errors(site: Site) -> None:
    """Negative control: a duplicate ``id`` and an ``<img>`` without ``alt`` are errors."""
    bad = site.folder / "bad.html"
    bad.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>x</title></head>'
        '<body><p id="a">a</p><p id="a"><img src="x.png"></p></body></html>',
        encoding="utf-8",
    )
    assert len(audit.nu_errors([bad])) >= 2
