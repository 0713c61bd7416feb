"""The generated landing page in real headless Chromium: the srcset candidate each viewport
loads, the preload matching it, and zero layout shift (CLS 0).

Markup tests (test_seo.py) prove the attributes are there; only a browser proves they
add up: that ``sizes`` picks the intended width, that the preload is not a wasted second
download, and that the reserved boxes really keep the page still. Skipped only when no
Chromium is installed (``scripts/system-deps.sh --test`` installs it, CI included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bildwerk.config.channels import PRESETS
from bildwerk.publish import alttext, seo
from bildwerk.stages.render import render
from tests.publish import browser

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(browser.find_chromium() is None, reason=browser.SKIP_REASON),
]

VIEWPORT_HEIGHT = 900
EXT = {"avif": "avif", "webp": "webp", "jpeg": "jpg", "png": "png"}


def master(width: int, height: int, seed: int) -> Image.Image:
    """A synthetic creative: colour gradient, a few shapes, light grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 220 + 20, y / height * 180 + 40, (x + y) / (width + height) * 255])
    rgb = rgb.transpose(1, 2, 0) + rng.normal(0, 2, (height, width, 3))
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    s = min(width, height)
    draw.ellipse(
        (width * 0.55, height * 0.2, width * 0.55 + s * 0.5, height * 0.2 + s * 0.5), "#f4f1ea"
    )
    draw.rectangle((width * 0.08, height * 0.7, width * 0.4, height * 0.8), "#1d1d1f")
    return img


def publish(folder: Path, slug: str, channel: str, *, lcp: bool, seed: int) -> seo.PublishedImage:
    """Render ``channel``'s renditions of a fresh master into ``folder/img`` as
    ``{slug}-{channel}-{width}w.{ext}`` and describe them as the publish stage would."""
    preset = PRESETS[channel]
    width, height = preset.master_size
    renditions = []
    (folder / "img").mkdir(exist_ok=True)
    for r in render(master(width, height, seed), preset):
        name = f"img/{slug}-{channel}-{r.width}w.{EXT[r.format]}"
        (folder / name).write_bytes(r.data)
        renditions.append(seo.Rendition(r.format, r.width, r.height, f"/{name}"))
    label = slug.replace("-", " ").title()
    return seo.PublishedImage(
        asset_id=f"v-{slug}",
        slug=slug,
        alt=alttext.alt_text("Fresh drop", {"surface": "pastel podium"}, label, "en-US"),
        title=f"{label} on a pastel podium",
        width=width,
        height=height,
        sizes=preset.sizes,
        lcp=lcp,
        renditions=renditions,
        creator="Acme Shoes",
    )


@dataclass(frozen=True)
class Site:
    server: browser.Server
    html: str
    hero: seo.PublishedImage


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The landing page with a web_hero hero and two grid images, served over HTTP."""
    folder = tmp_path_factory.mktemp("site")
    hero = publish(folder, "trail-runner", "web_hero", lcp=True, seed=1)
    images = [
        hero,
        publish(folder, "court-classic", "instagram_feed", lcp=False, seed=2),
        publish(folder, "city-loafer", "og_image", lcp=False, seed=3),
    ]
    html = seo.landing_page(images, title="Spring drop", lang="en", description="New colours")
    (folder / "index.html").write_text(html, encoding="utf-8")
    with browser.serve(folder) as server:
        yield Site(server, html, hero)


def expected_candidate(
    img: seo.PublishedImage, fmt: str, viewport: int, dpr: float
) -> seo.Rendition:
    """The srcset rule for ``sizes="100vw"``: the narrowest candidate at least as wide as
    the viewport's device pixels, else the widest."""
    assert img.sizes == "100vw", "this rule is only right for full-width images"
    candidates = img.by_format()[fmt]
    return next((r for r in candidates if r.width >= viewport * dpr), candidates[-1])


def path(url: str) -> str:
    return urlsplit(url).path


@pytest.mark.parametrize(
    ("viewport", "dpr", "width"),
    [(375, 2, 768), (412, 1.75, 768), (768, 1, 768), (1350, 1, 1440)],
    ids=["iphone-375@2", "lighthouse-mobile-412@1.75", "tablet-768", "lighthouse-desktop-1350"],
)
def test_hero_loads_the_srcset_candidate_and_nothing_shifts(
    site: Site, viewport: int, dpr: float, width: int
) -> None:
    page = browser.load(site.server, site.html, width=viewport, height=VIEWPORT_HEIGHT, dpr=dpr)
    probe, why = page.probe, page.describe()
    assert probe["innerWidth"] == viewport, why
    assert probe["devicePixelRatio"] == dpr, why

    hero, *grid = probe["images"]
    expected = expected_candidate(site.hero, "avif", viewport, dpr)
    assert expected.width == width  # the rule itself, pinned for these viewports
    assert width < viewport * dpr / 0.9  # the layout-derived ladder: < 10 % wider
    literal = f"/img/trail-runner-web_hero-{width}w.avif"
    assert path(hero["currentSrc"]) == expected.url == literal, why
    # density-corrected: a w-descriptor candidate's natural width is its sizes width
    assert hero["naturalWidth"] == pytest.approx(viewport, abs=1), why  # float density
    assert hero["loading"] is None and hero["fetchpriority"] == "high", why
    assert len(grid) == 2 and all(img["loading"] == "lazy" for img in grid), why
    # the box is reserved from width/height: it has the master's aspect ratio
    box = hero["box"]
    assert box["height"] == pytest.approx(box["width"] * 1080 / 1920, abs=1), why

    # the preload fetched it (initiator "link") and <img> reused that response: one
    # request for the hero, no second size or format downloaded
    hero_files = [p for p in page.requests if p.startswith("/img/trail-runner-")]
    assert hero_files == [expected.url], why
    fetched = [r for r in probe["resources"] if path(r["name"]) == expected.url]
    assert fetched == [{"name": hero["currentSrc"], "initiatorType": "link"}], why

    assert probe["layoutShift"] == 0, why
    assert probe["shifts"] == [], why


def test_probe_sees_layout_shift_when_images_lack_dimensions(site: Site) -> None:
    """Negative control: without width/height the grid images load into zero-height boxes
    and push their captions down, which the same probe must report."""

    def unsize(tag: re.Match[str]) -> str:
        return re.sub(r' (width|height)="\d+"', "", tag[0])

    stripped = re.sub(r'<img [^>]*loading="lazy"[^>]*>', unsize, site.html)
    assert stripped.count('width="') == 1, "only the hero keeps its dimensions"
    page = browser.load(
        site.server,
        stripped,
        width=375,
        height=VIEWPORT_HEIGHT,
        name="unsized.html",
        wait_lazy=True,  # at 375 px the grid images are near the viewport, so they load
    )
    images = page.probe["images"]
    assert all(img["naturalWidth"] > 0 for img in images), page.describe()
    assert page.probe["layoutShift"] > 0, page.describe()
