"""SEO outputs: alt text, <picture> markup, preload, JSON-LD, image sitemaps, landing page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from bildwerk.errors import UserError
from bildwerk.publish.alttext import alt_text, caption_text, localized_alt, looks_like_filename
from bildwerk.publish.seo import (
    IMAGE_NS,
    SITEMAP_NS,
    PageHead,
    PublishedImage,
    Rendition,
    json_ld,
    json_ld_script,
    landing_page,
    picture_html,
    preload_link,
    schema_digital_source,
    sitemaps,
)

pytestmark = pytest.mark.timeout(60)

CDN = "https://cdn.example.com/img"
Tag = tuple[str, dict[str, str | None]]


class Tags(HTMLParser):
    """Start tags in document order, plus the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[Tag] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    p.close()
    return p


def image(slug: str = "trail-runner", *, lcp: bool = False, **kw: object) -> PublishedImage:
    widths = (480, 768, 1080)
    renditions = [
        Rendition(fmt, w, w * 5 // 4, f"{CDN}/{slug}-feed-{w}w-0123abcd.{ext}")
        for fmt, ext in (("jpeg", "jpg"), ("avif", "avif"), ("webp", "webp"))
        for w in widths
    ]
    fields: dict[str, object] = {
        "asset_id": f"v-{slug}",
        "slug": slug,
        "alt": alt_text("Fresh drop", {"surface": "pastel podium"}, "Trail Runner X", "en-US"),
        "title": "Trail Runner X on a pastel podium",
        "width": 1080,
        "height": 1350,
        "sizes": "(max-width: 600px) 100vw, 600px",
        "lcp": lcp,
        "renditions": renditions,
        "creator": "ACME Shoes",
        "credit_text": "ACME Shoes / generated with bildwerk",
        "copyright_notice": "© 2026 ACME Shoes",
        "license_url": "https://acme.example/license",
        "acquire_license_page": "https://acme.example/press",
        "page_url": "https://acme.example/drop",
    }
    fields.update(kw)
    return PublishedImage(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- alt text


def test_alt_text_describes_product_scene_and_headline() -> None:
    alt = alt_text(
        "Fresh drop",
        {"surface": "pastel podium", "light": "soft morning light"},
        "Trail Runner X",
        "en-US",
    )
    assert alt == "Trail Runner X, pastel podium, soft morning light. “Fresh drop”"
    assert not looks_like_filename(alt)


def test_alt_text_uses_locale_quotes_and_humanizes_file_like_values() -> None:
    alt = alt_text("Neu eingetroffen", {"bg": "assets/pastel_podium-3fa9c1d2e.png"}, None, "de-DE")
    assert alt == "Pastel podium. „Neu eingetroffen“"
    assert ".png" not in alt and "_" not in alt and "3fa9c1d2e" not in alt


def test_alt_text_drops_duplicates_and_keeps_headline_when_long() -> None:
    slots = {"product": "Trail Runner X"} | {f"s{i}": f"detail number {i} " * 3 for i in range(8)}
    alt = alt_text("وصل حديثاً", slots, "Trail Runner X", "ar-AE")
    assert alt.count("Trail Runner X") == 1
    assert alt.endswith("«وصل حديثاً»")
    assert len(alt) <= 150


def test_alt_text_needs_something_to_say() -> None:
    assert alt_text("Sale", {}, None, None) == "Sale"
    with pytest.raises(UserError, match="alt text"):
        alt_text("  ", {}, None, "en")


@pytest.mark.parametrize("name", ["hero_01.png", "IMG_2041", "trail-runner-3fa9c1d2", "a/b.jpg"])
def test_published_image_refuses_file_name_alt(name: str) -> None:
    assert looks_like_filename(name)
    with pytest.raises(UserError, match="file name"):
        image(alt=name)


# --------------------------------------------------------------------------- markup


def test_picture_sources_ordered_avif_webp_then_img() -> None:
    tags = parse(picture_html(image())).tags
    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = tags[1:]
    assert avif["type"] == "image/avif" and webp["type"] == "image/webp"
    for attrs, ext in ((avif, "avif"), (webp, "webp"), (img, "jpg")):
        assert attrs["sizes"] == "(max-width: 600px) 100vw, 600px"
        srcset = attrs["srcset"] or ""
        assert re.fullmatch(rf"(\S+\.{ext} \d+w)(, \S+\.{ext} \d+w)*", srcset), srcset
        assert [c.split()[1] for c in srcset.split(", ")] == ["480w", "768w", "1080w"]
    assert img["src"] == f"{CDN}/trail-runner-feed-1080w-0123abcd.jpg"
    assert (img["width"], img["height"]) == ("1080", "1350")


def test_hero_is_eager_with_high_priority_others_lazy() -> None:
    hero = dict(parse(picture_html(image(lcp=True))).tags[-1][1])
    assert hero["fetchpriority"] == "high" and "loading" not in hero
    other = dict(parse(picture_html(image())).tags[-1][1])
    assert other["loading"] == "lazy" and other["decoding"] == "async"
    assert "fetchpriority" not in other


def test_attributes_are_escaped() -> None:
    tricky = 'The "Runner" <b>&</b> co'
    img = image(alt=tricky, sizes='100vw" onload="x')
    tags = parse(picture_html(img)).tags
    assert tags[-1][1]["alt"] == tricky
    assert tags[-1][1]["sizes"] == '100vw" onload="x'
    assert all("onload" not in attrs for _, attrs in tags)


def test_srcset_urls_with_commas_and_spaces_stay_one_candidate() -> None:
    r = [Rendition("jpeg", 480, 600, "https://x.example/a, b.jpg")]
    img = image(renditions=r)
    assert dict(parse(picture_html(img)).tags[-1][1])["srcset"] == (
        "https://x.example/a%2C%20b.jpg 480w"
    )


def test_preload_link_matches_the_avif_source() -> None:
    img = image(lcp=True)
    ((tag, link),) = parse(preload_link(img)).tags
    avif = parse(picture_html(img)).tags[1][1]
    assert tag == "link" and link["rel"] == "preload" and link["as"] == "image"
    assert link["type"] == "image/avif"
    assert link["imagesrcset"] == avif["srcset"] and link["imagesizes"] == avif["sizes"]


# --------------------------------------------------------------------------- JSON-LD


def test_json_ld_has_image_metadata_fields() -> None:
    data = json.loads(json.dumps(json_ld(image())))
    assert data["@context"] == "https://schema.org" and data["@type"] == "ImageObject"
    assert data["contentUrl"] == f"{CDN}/trail-runner-feed-1080w-0123abcd.jpg"
    # schema.org's range for width/height is Distance or QuantitativeValue, not a number
    pixel = {"@type": "QuantitativeValue", "unitCode": "E37"}
    assert (data["width"], data["height"]) == ({**pixel, "value": 1080}, {**pixel, "value": 1350})
    assert data["creator"] == {"@type": "Organization", "name": "ACME Shoes"}
    for field in ("creditText", "copyrightNotice", "license", "acquireLicensePage"):
        assert data[field]
    assert data["name"] == "Trail Runner X on a pastel podium"
    assert data["description"].startswith("Trail Runner X")
    # the IPTCDigitalSourceEnumeration member, not the IPTC URI (which schema.org rejects)
    assert data["digitalSourceType"] == "https://schema.org/TrainedAlgorithmicMediaDigitalSource"


def test_json_ld_leaves_out_unknown_fields_and_script_cannot_break_out() -> None:
    img = image(title="</script><script>alert(1)</script>", license_url=None)
    assert "license" not in json_ld(img)
    script = json_ld_script(img)
    assert script.count("</script>") == 1 and script.endswith("</script>")
    ((attrs, text),) = parse(script).scripts
    assert attrs["type"] == "application/ld+json"
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>"


# --------------------------------------------------------------------------- sitemaps

ALLOWED = {
    f"{{{SITEMAP_NS}}}urlset",
    f"{{{SITEMAP_NS}}}url",
    f"{{{SITEMAP_NS}}}loc",
    f"{{{IMAGE_NS}}}image",
    f"{{{IMAGE_NS}}}loc",
}


def test_sitemap_uses_only_what_google_reads_and_escapes() -> None:
    pages = [
        ("https://acme.example/drop?utm=a&b=c", [f"{CDN}/a.jpg", f"{CDN}/ü b.jpg"]),
        ("https://acme.example/other", [f"{CDN}/c.jpg"]),
        ("https://acme.example/drop?utm=a&b=c", [f"{CDN}/a.jpg", f"{CDN}/d.jpg"]),  # merged
    ]
    ((name, data),) = sitemaps(pages, base_url="https://acme.example")
    assert name == "sitemap-images.xml"
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"&amp;b=c" in data
    root = ET.fromstring(data)
    assert {el.tag for el in root.iter()} <= ALLOWED
    urls = root.findall(f"{{{SITEMAP_NS}}}url")
    assert [u.findtext(f"{{{SITEMAP_NS}}}loc") for u in urls] == [
        "https://acme.example/drop?utm=a&b=c",
        "https://acme.example/other",
    ]
    first = [el.text for el in urls[0].iter(f"{{{IMAGE_NS}}}loc")]
    assert first == [f"{CDN}/a.jpg", f"{CDN}/%C3%BC%20b.jpg", f"{CDN}/d.jpg"]


def test_sitemap_caps_images_per_page_and_reports_drops() -> None:
    drops: list[tuple[str, int]] = []
    images = [f"{CDN}/{i}.jpg" for i in range(1500)]
    ((_, data),) = sitemaps(
        [("https://acme.example/p", images)],
        base_url="https://acme.example",
        on_drop=lambda page, n: drops.append((page, n)),
    )
    locs = [el.text for el in ET.fromstring(data).iter(f"{{{IMAGE_NS}}}loc")]
    assert locs == images[:1000]
    assert drops == [("https://acme.example/p", 500)]


def test_120k_images_split_into_an_index_and_files_of_at_most_50k_urls() -> None:
    pages = [(f"https://acme.example/p/{i}", [f"{CDN}/{i}.avif"]) for i in range(120_000)]
    files = sitemaps(pages, base_url="https://acme.example/maps/")
    names = [n for n, _ in files]
    assert names == [
        "sitemap-images.xml",
        "sitemap-images-1.xml",
        "sitemap-images-2.xml",
        "sitemap-images-3.xml",
    ]
    index = ET.fromstring(files[0][1])
    assert index.tag == f"{{{SITEMAP_NS}}}sitemapindex"
    assert {el.tag for el in index.iter()} == {
        f"{{{SITEMAP_NS}}}sitemapindex",
        f"{{{SITEMAP_NS}}}sitemap",
        f"{{{SITEMAP_NS}}}loc",
    }
    assert [el.text for el in index.iter(f"{{{SITEMAP_NS}}}loc")] == [
        f"https://acme.example/maps/{n}" for n in names[1:]
    ]
    seen: list[str] = []
    for _, data in files[1:]:
        assert len(data) <= 50 * 1024 * 1024
        root = ET.fromstring(data)
        assert {el.tag for el in root.iter()} <= ALLOWED
        urls = root.findall(f"{{{SITEMAP_NS}}}url")
        assert len(urls) <= 50_000
        seen += [el.text or "" for el in root.iter(f"{{{IMAGE_NS}}}loc")]
    assert len(seen) == len(set(seen)) == 120_000


def test_sitemap_splits_on_bytes_too() -> None:
    pages = [(f"https://acme.example/p/{i}", [f"{CDN}/{i}.jpg"]) for i in range(200)]
    files = sitemaps(pages, base_url="https://acme.example", max_bytes=8192)
    assert len(files) > 2
    assert all(len(data) <= 8192 for _, data in files[1:])
    total = sum(len(ET.fromstring(d).findall(f"{{{SITEMAP_NS}}}url")) for _, d in files[1:])
    assert total == 200


def test_sitemap_refuses_relative_urls() -> None:
    with pytest.raises(UserError, match="absolute"):
        sitemaps([("/drop", [])], base_url="https://acme.example")


# --------------------------------------------------------------------------- landing page


def test_landing_page_hero_preload_json_ld_and_no_layout_shift() -> None:
    imgs = [image("a"), image("hero", lcp=True), image("b")]
    html = landing_page(imgs, title="Spring <drop>", lang="ar", dir="rtl")
    doc = parse(html)
    html_attrs = doc.tags[0][1]
    assert (html_attrs["lang"], html_attrs["dir"]) == ("ar", "rtl")
    names = [t for t, _ in doc.tags]
    assert names.index("link") < names.index("body")
    (link,) = [a for t, a in doc.tags if t == "link"]
    assert link["rel"] == "preload" and "hero-feed-480w" in (link["imagesrcset"] or "")
    imgs_html = [a for t, a in doc.tags if t == "img"]
    assert "hero" in (imgs_html[0]["src"] or "")  # the hero comes first
    assert [a.get("fetchpriority") for a in imgs_html] == ["high", None, None]
    assert [a.get("loading") for a in imgs_html] == [None, "lazy", "lazy"]
    assert all(a["width"] and a["height"] for a in imgs_html)
    assert re.search(r"picture img \{[^}]*width: 100%; height: auto;", html)
    lds = [
        json.loads(text) for attrs, text in doc.scripts if attrs["type"] == "application/ld+json"
    ]
    assert sorted(d["identifier"] for d in lds) == ["v-a", "v-b", "v-hero"]
    assert "<title>Spring &lt;drop&gt;</title>" in html


def test_landing_page_without_hero_has_no_preload() -> None:
    doc = parse(landing_page([image("a")], title="T", lang="en", dir="ltr"))
    assert not [a for t, a in doc.tags if t == "link"]
    assert [a.get("loading") for t, a in doc.tags if t == "img"] == ["lazy"]


# --------------------------------------------------------------------------- site head


SITE = "https://shop.example.com"
SITE_COPY = {
    "en-US": ("Summer, bottled.", "Up to 30% off this week.", "ltr"),
    "ar-AE": ("الصيف في زجاجة", "خصم يصل إلى ٣٠٪", "rtl"),
    "ja-JP": ("夏を、ボトルに。", "今週だけ最大30%オフ", "ltr"),
}


def site_pages(*, with_og: bool = True) -> dict[str, bytes]:
    """The real site builder over a campaign in three locales: a hero, two feed images of
    the same scene copy (same alt unless made unique) and an og_image creative."""
    from bildwerk.publish.site import PublishedFile, image_fields, site_files

    files = []
    channels = [("web_hero", True), ("instagram_feed", False), ("instagram_feed", False)]
    if with_og:
        channels.append(("og_image", False))
    for locale, (headline, subline, direction) in SITE_COPY.items():
        for n, (channel, lcp) in enumerate(channels):
            img = image(
                f"s-{locale}-{n}",
                lcp=lcp,
                alt=localized_alt(headline, subline, {"surface": "pastel podium"}, "can", locale),
                caption=caption_text(headline, subline),
                lang=locale,
                subject="Can",
            )
            fields = {
                **image_fields(img), "campaign": "summer", "campaign_name": "Summer Sale",
                "locale": locale, "direction": direction, "channel": channel,
                "headline": headline, "subline": subline,
            }  # fmt: skip
            for r in img.renditions:
                files.append(PublishedFile(fields, r.format, r.width, r.height, r.url))
    return site_files(files, site_url=SITE, site_name="acme", favicon=b"\x89PNG fake")


def head_of(html: bytes) -> tuple[list[Tag], dict[str, str]]:
    tags = parse(html.decode()).tags
    meta = {
        str(a.get("name") or a.get("property")): str(a["content"])
        for t, a in tags
        if t == "meta" and a.get("content")
    }
    return tags, meta


def test_pages_have_description_canonical_hreflang_and_favicon() -> None:
    pages = site_pages()
    tags, meta = head_of(pages["summer/ar-AE/index.html"])
    links = [a for t, a in tags if t == "link"]
    assert meta["description"] == "خصم يصل إلى ٣٠٪"
    assert {"rel": "canonical", "href": f"{SITE}/summer/ar-AE/"} in links
    alternates = {a["hreflang"]: a["href"] for a in links if a.get("rel") == "alternate"}
    assert alternates == {
        "en-US": f"{SITE}/summer/en-US/",
        "ar-AE": f"{SITE}/summer/ar-AE/",
        "ja-JP": f"{SITE}/summer/ja-JP/",
        "x-default": f"{SITE}/",
    }
    assert {"rel": "icon", "type": "image/png", "href": f"{SITE}/favicon.png"} in links
    assert pages["favicon.png"] == b"\x89PNG fake"
    assert ("html", {"lang": "ar-AE", "dir": "rtl"}) in tags
    h1 = re.search(r"<h1>(.*?)</h1>", pages["summer/ja-JP/index.html"].decode())
    assert h1 and h1[1] == "夏を、ボトルに。"


def test_open_graph_and_twitter_use_the_og_image_channel_else_the_hero() -> None:
    _, meta = head_of(site_pages()["summer/en-US/index.html"])
    assert meta["og:image"] == f"{CDN}/s-en-US-3-feed-1080w-0123abcd.jpg"  # the og_image one
    assert meta["twitter:card"] == "summary_large_image"
    assert meta["twitter:image"] == meta["og:image"]
    assert (meta["og:image:width"], meta["og:image:type"]) == ("1080", "image/jpeg")
    assert meta["og:url"] == f"{SITE}/summer/en-US/"
    _, meta = head_of(site_pages(with_og=False)["summer/en-US/index.html"])
    assert meta["og:image"] == f"{CDN}/s-en-US-0-feed-1080w-0123abcd.jpg"  # the hero


def test_alt_and_captions_are_in_the_page_language_and_unique() -> None:
    pages = site_pages()
    for locale in SITE_COPY:
        html = pages[f"summer/{locale}/index.html"].decode()
        alts = [str(a["alt"]) for t, a in parse(html).tags if t == "img"]
        assert len(alts) == len(set(alts)) == 4, alts
        captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", html)
        assert len(captions) == len(set(captions)) == 4, captions
        if locale != "en-US":  # no English word (the slot values) in these pages' alts
            assert not any(re.search(r"[A-Za-z]{3,}", a) for a in alts), alts
            assert "Summer Sale" not in html.split("<body>")[1]
            # the product name stays in the brief's language, marked as such
            body = html.split("<body>")[1]
            assert body.count(">Can<") == body.count('<span lang="en">Can</span>') == 4
    ja = [a["alt"] for t, a in parse(pages["summer/ja-JP/index.html"].decode()).tags if t == "img"]
    assert ja[0] == "商品写真：「夏を、ボトルに。」。今週だけ最大30%オフ"


def test_image_sitemap_lists_hreflang_alternates() -> None:
    root = ET.fromstring(site_pages()["sitemap-images.xml"])
    xhtml = "{http://www.w3.org/1999/xhtml}link"
    urls = root.findall(f"{{{SITEMAP_NS}}}url")
    assert len(urls) == 3
    for url in urls:
        links = {a.get("hreflang"): a.get("href") for a in url.findall(xhtml)}
        assert links["x-default"] == f"{SITE}/" and len(links) == 4
        assert url.findtext(f"{{{SITEMAP_NS}}}loc") in links.values()


def test_page_head_refuses_relative_urls() -> None:
    with pytest.raises(UserError, match="canonical URL '/summer/en-US/' is not absolute"):
        PageHead(canonical="/summer/en-US/")
    with pytest.raises(UserError, match="base_url or site_url"):
        PageHead(canonical=f"{SITE}/a/", alternates={"de": "/a/de/"})


def test_schema_org_source_type_for_every_iptc_code() -> None:
    iptc = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    assert schema_digital_source(iptc + "compositeWithTrainedAlgorithmicMedia") == (
        "https://schema.org/CompositeWithTrainedAlgorithmicMediaDigitalSource"
    )
    assert schema_digital_source(iptc + "algorithmicMedia") == (
        "https://schema.org/AlgorithmicMediaDigitalSource"
    )
