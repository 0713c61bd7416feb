"""``bildwerk publish`` end to end on a real run: every published file checked by tools
others wrote (c2pa Reader, exiftool, the imwatermark decoder, an XML parser), then
re-publish, rights, --sync and the failure paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from bildwerk.catalog.models import Event, Publication
from bildwerk.config.channels import PRESETS
from bildwerk.errors import UserError
from bildwerk.publish.keys import dev_init
from bildwerk.publishers import FolderTarget, TargetUnavailableError
from bildwerk.scaffold import init_workspace
from bildwerk.workspace import Workspace
from tests.conftest import allow_loopback
from tests.publish.test_c2pa import FakeCA
from tests.publish.test_verify_cli import cli

c2pa = pytest.importorskip("c2pa")

BRIEF = """\
campaign: spring-drop
name: Spring Drop
backend: studio
locales:
  en-US: {{headline: "Fresh drop", subline: "New colours this week", cta: "Shop now"}}
  ar-AE: {{headline: "وصل حديثاً", subline: "ألوان جديدة", cta: "تسوّق الآن"}}
channels: [display_mrec, web_hero]
prompt:
  template: "packshot of the {{product}} on a {{surface}}"
  slots:
    product: [{product}]
    surface: [pastel podium]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
rights:
  expires: 2029-06-30
"""
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
IMAGE_NS = "http://www.google.com/schemas/sitemap-image/1.1"
DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"


# 2 locales x (display_mrec + web_hero widths, from the layout-derived ladders) x 3 formats
FILES = 2 * sum(len(PRESETS[c].rendition_widths()) for c in ("display_mrec", "web_hero")) * 3
HERO_FILES = 2 * len(PRESETS["web_hero"].rendition_widths()) * 3  # `public`: sidecar each


def make_workspace(root: Path) -> tuple[Workspace, str]:
    init_workspace(root, name="acme")
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    brief = root / "campaigns" / "spring.yaml"
    brief.write_text(BRIEF.format(product=product), encoding="utf-8")
    ws = Workspace(root)
    result = ws.run(brief, workers=1)
    assert result.failed == 0
    return ws, result.run_id


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run, nothing approved or published yet (copied per test)."""
    root = tmp_path_factory.mktemp("pub") / "acme"
    _, run_id = make_workspace(root)
    return root, run_id


@pytest.fixture(scope="module")
def published(ran: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run approved and published to the scaffolded folder target `site`."""
    src, run_id = ran
    root = tmp_path_factory.mktemp("published") / "acme"
    shutil.copytree(src, root)
    ws = Workspace(root)
    assert len(ws.approve_run(run_id, actor="tester", include_review=True).approved) == 4
    dev_init(root, org="acme")
    report = ws.publisher("tester").publish(run_id, ["site"])
    assert len(report.published) == 4 and report.dev_keys
    return root


def fresh(ran: tuple[Path, str], tmp_path: Path, *, approve: bool = True) -> tuple[Workspace, str]:
    src, run_id = ran
    root = tmp_path / "acme"
    shutil.copytree(src, root)
    ws = Workspace(root)
    if approve:
        ws.approve_run(run_id, actor="tester", include_review=True)
        dev_init(root, org="acme")
    return ws, run_id


def width_of(f: Path) -> int:
    """A published file's width, from its name (``…-<width>w-<hash>.<ext>``)."""
    found = re.search(r"-(\d+)w-", f.name)
    assert found is not None, f.name
    return int(found.group(1))


def images(root: Path) -> list[Path]:
    return sorted(f for f in (root / "public" / "img").iterdir() if f.suffix != ".c2pa")


def sidecar(f: Path) -> bytes | None:
    """The remote manifest store published next to ``f`` (public profile), if any."""
    path = f.with_name(f.name + ".c2pa")
    return path.read_bytes() if path.is_file() else None


XMP_ASSET_ID = rb"bildwerk:assetId(?:>|=\")(cr_[0-9a-f]+)"


# -- what the published files say, read by independent tools ----------------------------


def test_every_rendition_is_trusted_with_the_master_as_ingredient(published: Path) -> None:
    from bildwerk.publish.c2pa_read import verify

    files = images(published)
    assert {f.suffix for f in files} == {".avif", ".webp", ".jpg"}
    assert len(files) == FILES
    # web_hero is `public` (credentials in a sidecar), display_mrec `ads` (embedded)
    remote = [f for f in files if sidecar(f) is not None]
    assert len(remote) == HERO_FILES and all("-web-hero-" in f.name for f in remote)
    assert len(list((published / "public" / "img").glob("*.c2pa"))) == HERO_FILES
    anchors = published / "keys" / "dev-root.pem"
    for f in files:
        fmt = {".jpg": "jpeg"}.get(f.suffix, f.suffix[1:])
        store = sidecar(f)
        result = verify(f.read_bytes(), fmt, trust_anchors=anchors, source=str(f), manifest=store)
        assert result.state == "Trusted", (f.name, result.failures)
        assert result.actions == ("c2pa.opened", "c2pa.resized", "c2pa.converted")
        assert [(i.relationship, i.format) for i in result.ingredients] == [
            ("parentOf", "image/png")
        ]
        parent = result.ingredients[0]  # both profiles: the master by reference and hash
        assert parent.manifest and parent.manifest.startswith("urn:c2pa:")
        assert not parent.carried and parent.sha256 and len(parent.sha256) == 64
        assert result.digital_source_type == DST + "compositeSynthetic"
        assert result.authors == ("Acme",) and result.do_not_train
    # the SDK itself, without our wrapper: Valid without anchors
    with c2pa.Reader(str(files[0])) as reader:
        assert reader.get_validation_state() in ("Valid", "Trusted")


def _width(f: Path) -> int:
    """The width a published file's name states (``...-<width>w-<hash>.<ext>``)."""
    found = re.search(r"-(\d+)w-[0-9a-f]{8}\.", f.name)
    assert found, f.name
    return int(found.group(1))


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_exiftool_reads_the_rights_fields_from_every_format(published: Path) -> None:
    """Public and ads files carry the ``rights`` set; public files under 640 px the
    ``minimal`` one. Neither carries the generation record, a title or the alt text."""
    files = images(published)
    picks = {}
    for suffix in (".jpg", ".webp", ".avif"):
        mine = sorted((f for f in files if f.suffix == suffix), key=_width)
        public = [f for f in mine if "-display-mrec-" not in f.name]  # not the ads channel
        picks[public[0]], picks[mine[-1]] = "minimal", "rights"
    assert {_width(f) < 640 for f, level in picks.items() if level == "minimal"} == {True}
    raw = subprocess.run(
        ["exiftool", "-j", "-G1", "-struct", *map(str, picks)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for tags in json.loads(raw):
        where = tags["SourceFile"]
        level = picks[Path(where)]
        assert tags["XMP-iptcExt:DigitalSourceType"] == DST + "compositeSynthetic", where
        assert tags["XMP-xmpRights:WebStatement"] == "https://acme.example.com/image-licence"
        rights = {
            "XMP-dc:Creator": ["Acme Studio"],
            "XMP-photoshop:Credit": "Acme",
            "XMP-dc:Rights": "© 2026 Acme",
        }
        if level == "rights":
            assert {key: tags.get(key) for key in rights} == rights, where
            assert tags["XMP-plus:LicenseEndDate"].startswith("2029:06:30"), where
            assert str(tags["XMP-bildwerk:AssetId"]).startswith("cr_"), where
        else:
            assert not set(rights) & set(tags), where
        # the page carries title and alt text; no generation record outside the team
        assert not {"XMP-dc:Title", "XMP-dc:Description"} & set(tags), where
        assert not {"XMP-bildwerk:Seed", "XMP-bildwerk:Prompt", "XMP-bildwerk:JobKey"} & set(tags)
        assert "GPS" not in " ".join(tags) and "ICC_Profile:ProfileDescription" not in tags
        assert "IPTC:By-line" not in tags  # lean files: XMP alone


def test_reference_decoder_reads_the_asset_id_from_the_published_jpeg(published: Path) -> None:
    imwatermark = pytest.importorskip("imwatermark")
    cv2 = pytest.importorskip("cv2")
    # the profiles' choice: ads (display_mrec) marks every JPEG, public (web_hero) those
    # from 1080 px; the narrower public JPEGs stay unmarked
    jpgs = [f for f in images(published) if f.suffix == ".jpg"]
    marked = [f for f in jpgs if "-display-mrec-" in f.name or width_of(f) >= 1080]
    assert marked and len(marked) < len(jpgs)
    for f in marked:
        with Image.open(f) as im:
            asset_id = re.search(XMP_ASSET_ID, im.info["xmp"])
            rgb = np.asarray(im.convert("RGB"))
        assert asset_id is not None
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        bits = imwatermark.WatermarkDecoder("bits", 32).decode(bgr, "dwtDct")
        payload = f"{int(''.join(str(int(b)) for b in bits), 2):08x}"
        assert payload == asset_id.group(1)[3:11].decode(), f.name


def test_sitemap_uses_only_what_google_reads(published: Path) -> None:
    tree = ET.parse(published / "public" / "sitemap-images.xml")
    root = tree.getroot()
    assert root.tag == f"{{{SITEMAP_NS}}}urlset"
    allowed = {
        f"{{{SITEMAP_NS}}}urlset", f"{{{SITEMAP_NS}}}url", f"{{{SITEMAP_NS}}}loc",
        f"{{{IMAGE_NS}}}image", f"{{{IMAGE_NS}}}loc",
        "{http://www.w3.org/1999/xhtml}link",  # hreflang alternates, as Google documents
    }  # fmt: skip
    assert {el.tag for el in root.iter()} <= allowed
    urls = root.findall(f"{{{SITEMAP_NS}}}url")
    pages = sorted(u.findtext(f"{{{SITEMAP_NS}}}loc") or "" for u in urls)
    assert pages == [
        "http://localhost:8000/spring-drop/ar-AE/",
        "http://localhost:8000/spring-drop/en-US/",
    ]
    for url in urls:
        locs = [i.findtext(f"{{{IMAGE_NS}}}loc") for i in url.findall(f"{{{IMAGE_NS}}}image")]
        assert 1 <= len(locs) <= 1000
        for loc in locs:
            assert (
                loc
                and (published / "public" / loc.removeprefix("http://localhost:8000/")).is_file()
            )
    robots = (published / "public" / "robots.txt").read_text()
    assert "Sitemap: http://localhost:8000/sitemap-images.xml" in robots


def test_landing_page_json_ld_and_markup(published: Path) -> None:
    html = (published / "public" / "spring-drop" / "en-US" / "index.html").read_text()
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(blocks) == 2
    for block in blocks:
        data = json.loads(block)
        assert data["@context"] == "https://schema.org" and data["@type"] == "ImageObject"
        assert data["contentUrl"].startswith("http://localhost:8000/img/")
        assert data["license"] == "https://acme.example.com/image-licence"
        assert data["acquireLicensePage"] == "https://acme.example.com/licensing"
        assert data["creditText"] == "Acme" and data["copyrightNotice"] == "© 2026 Acme"
        # JSON-LD names the schema.org enumeration member for the IPTC code in the files
        assert data["digitalSourceType"] == "https://schema.org/CompositeSyntheticDigitalSource"
    assert html.count("<picture>") == 2
    assert html.count('fetchpriority="high"') == 2  # the hero <img> and its preload
    assert '<link rel="preload" as="image" imagesrcset=' in html
    assert html.count('loading="lazy"') == 1  # the MREC
    for tag in re.findall(r"<img [^>]*>", html):
        assert re.search(r'width="\d+" height="\d+"', tag) and 'alt="' in tag
    ar = (published / "public" / "spring-drop" / "ar-AE" / "index.html").read_text()
    assert '<html lang="ar-AE" dir="rtl">' in ar


def test_folder_target_serves_cache_headers(published: Path) -> None:
    headers = json.loads((published / "public" / "_headers.json").read_text())
    img = next(k for k in headers if k.startswith("img/") and k.endswith(".avif"))
    assert headers[img] == {
        "Cache-Control": "public, max-age=31536000, immutable",
        "Content-Type": "image/avif",
    }
    assert headers["sitemap-images.xml"]["Cache-Control"] == "public, max-age=0, must-revalidate"


# -- idempotence, rights, sync -----------------------------------------------------------


def test_republish_changes_nothing(published: Path, tmp_path: Path) -> None:
    root = tmp_path / "acme"
    shutil.copytree(published, root)
    before = {f.name: f.read_bytes() for f in images(root)}
    report = Workspace(root).publisher("tester").publish("latest", ["site"])
    assert (report.uploaded, report.stamped, report.unchanged) == (0, 0, FILES)
    assert {f.name: f.read_bytes() for f in images(root)} == before


def test_revoked_and_expired_creatives_come_down_everywhere(
    published: Path, tmp_path: Path
) -> None:
    root = tmp_path / "acme"
    shutil.copytree(published, root)
    ws = Workspace(root)
    pub = ws.publisher("legal")
    with ws.db.session() as s:
        live = s.scalars(select(Publication).where(Publication.asset_id.is_not(None))).all()
        ids = sorted({p.asset_id for p in live if p.asset_id})
    revoked, expired = ids[0], ids[1]
    pub.set_rights(revoked, revoke="model release withdrawn")
    pub.set_rights(expired, expires_on=dt.date.today() - dt.timedelta(days=1))
    report = pub.sync()
    assert report.removed == {"site": sorted([revoked, expired])}
    left = " ".join(f.name for f in images(root))
    sitemap = (root / "public" / "sitemap-images.xml").read_text()
    pages = "".join(p.read_text() for p in (root / "public").glob("*/*/index.html"))
    with ws.db.session() as s:
        gone = s.scalars(select(Publication).where(Publication.asset_id.in_([revoked, expired])))
        keys = [p.key for p in gone]
        assert keys and all(k.split("/")[-1] not in left for k in keys)
        assert all(k not in sitemap and k not in pages for k in keys)
        events = s.scalars(select(Event).where(Event.type == "asset.unpublished")).all()
        assert {(e.subject, e.actor) for e in events} == {(revoked, "legal"), (expired, "legal")}
        assert any("withdrawn" in e.payload["reason"] for e in events)
    assert len(images(root)) == FILES - len([k for k in keys if not k.endswith(".c2pa")])
    assert not any(k.endswith(".c2pa") and (root / "public" / k).exists() for k in keys)
    again = pub.publish("latest", ["site"])  # neither comes back
    assert set(again.skipped) == {revoked, expired}
    assert pub.sync().removed == {}


# -- bad input: clear errors, nothing half-published ---------------------------------------


def test_nothing_approved_or_unknown_target(ran: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = fresh(ran, tmp_path, approve=False)
    with pytest.raises(UserError, match="no approved creative"):
        ws.publisher("t").publish(run_id, ["site"])
    with pytest.raises(UserError, match=r"no target named 'cdn' \(targets: site\)"):
        ws.publisher("t").publish(run_id, ["cdn"])


def test_missing_keys_are_explained(ran: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = fresh(ran, tmp_path, approve=False)
    ws.approve_run(run_id, actor="t", include_review=True)
    with pytest.raises(UserError, match="no signing credentials") as info:
        ws.publisher("t").publish(run_id, ["site"])
    assert "keys dev-init" in (info.value.hint or "")
    assert not (ws.root / "public").exists()


@pytest.mark.parametrize("defect", ["expired", "no digitalSignature", "mismatched key"])
def test_bad_production_credentials_publish_nothing(
    defect: str,
    ran: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, run_id = fresh(ran, tmp_path)
    ca = FakeCA()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good_chain, good_key = ca.leaf(tmp_path / "a")
    code, _, err = cli(
        ["keys", "use", "--cert", str(good_chain), "--key", str(good_key), "-w", str(ws.root)],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "signing:" in (ws.root / "bildwerk.yaml").read_text()
    if defect == "expired":
        chain, key = ca.leaf(tmp_path / "b", days=(-30, -1))
    elif defect == "no digitalSignature":
        chain, key = ca.leaf(tmp_path / "b", digital_signature=False)
    else:
        chain, key = tmp_path / "b" / "chain.pem", ca.leaf(tmp_path / "b")[1]
        chain.write_bytes(good_chain.read_bytes())  # a key of another certificate
    shutil.copy(chain, good_chain)
    shutil.copy(key, good_key)
    code, _, err = cli(["publish", run_id, "--to", "site", "-w", str(ws.root)], capsys, monkeypatch)
    assert code == 2
    assert "Traceback" not in err and str(good_chain.parent) in err
    assert not (ws.root / "public").exists()


def test_failed_upload_takes_back_what_it_put(
    ran: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, run_id = fresh(ran, tmp_path)
    real_put = FolderTarget.put
    calls = {"n": 0}

    def flaky(self: FolderTarget, key: str, data: bytes, **kw: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 10:
            raise TargetUnavailableError(self.name, "disk full", hint="free some space")
        return real_put(self, key, data, **kw)

    monkeypatch.setattr(FolderTarget, "put", flaky)
    with pytest.raises(TargetUnavailableError, match="disk full"):
        ws.publisher("t").publish(run_id, ["site"])
    assert not list((ws.root / "public").glob("img/*"))
    with ws.db.session() as s:
        assert s.scalars(select(Publication)).first() is None
        assert s.scalars(select(Event).where(Event.type == "publish.failed")).first()
    monkeypatch.setattr(FolderTarget, "put", real_put)
    report = ws.publisher("t").publish(run_id, ["site"])  # resumes; stamps are cached
    assert report.uploaded == FILES and report.stamped == 0


# -- webhook ---------------------------------------------------------------------------


class Hook:
    """A local CMS endpoint that records requests and answers with queued statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((dict(self.headers), body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bildwerk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook([])
    yield h
    h.server.shutdown()


def add_webhook(root: Path, url: str) -> None:
    allow_loopback(root)  # the CMS stand-in is on 127.0.0.1
    with (root / "bildwerk.yaml").open("a", encoding="utf-8") as fh:
        fh.write(
            f"  cms:\n    type: webhook\n    url: {url}\n    secret_env: TEST_CMS_SECRET\n"
            "    origin: site\n    max_attempts: 2\n    timeout: 2\n"
        )


def test_webhook_gets_signed_event_then_unpublish(
    ran: tuple[Path, str], tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, run_id = fresh(ran, tmp_path)
    # the scaffold's commented examples end the file inside `targets:`
    add_webhook(ws.root, hook.url)
    monkeypatch.setenv("TEST_CMS_SECRET", "s3cret")
    ws = Workspace(ws.root)
    hook.statuses[:] = [500, 500]
    with pytest.raises(UserError, match="500"):
        ws.publisher("t").publish(run_id, ["cms"])
    assert len(images(ws.root)) == FILES  # the origin is complete; only the CMS is behind
    report = ws.publisher("t").publish(run_id, ["cms"])  # re-run retries the notification
    assert report.uploaded == 0
    headers, body = hook.requests[-1]
    assert (
        headers["X-Bildwerk-Signature"]
        == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    )
    assert headers["Idempotency-Key"] == hook.requests[0][0]["Idempotency-Key"]
    event = json.loads(body)
    assert event["type"] == "bildwerk.published" and len(event["assets"]) == 4
    hero = next(a for a in event["assets"] if a["lcp"])
    assert "<picture>" in hero["html"] and hero["preload_html"]
    assert all(r["url"].startswith("http://localhost:8000/img/") for r in hero["renditions"])
    ws.publisher("legal").set_rights(hero["asset_id"], revoke="withdrawn")
    done = ws.publisher("legal").sync()
    assert done.notified == [hero["asset_id"]]
    gone = json.loads(hook.requests[-1][1])
    assert gone["type"] == "bildwerk.unpublished"
    assert gone["assets"] == [{"asset_id": hero["asset_id"], "reason": "revoked: withdrawn"}]


def test_webhook_without_its_secret(ran: tuple[Path, str], tmp_path: Path, hook: Hook) -> None:
    ws, run_id = fresh(ran, tmp_path)
    add_webhook(ws.root, hook.url)
    with pytest.raises(UserError, match="TEST_CMS_SECRET"):
        Workspace(ws.root).publisher("t").publish(run_id, ["cms"])
    assert not (ws.root / "public").exists()


# -- the published landing page in headless Chromium -----------------------------------


@pytest.mark.parametrize(("viewport", "width"), [(375, 599), (768, 768), (1440, 1440)])
def test_published_page_in_chromium(published: Path, viewport: int, width: int) -> None:
    """The page `publish` wrote, served from another origin (URLs rebased to it): the hero
    takes the srcset candidate for the viewport, preloaded once, and nothing shifts."""
    from tests.publish import browser

    if browser.find_chromium() is None:
        pytest.skip(browser.SKIP_REASON)
    public = published / "public"
    html = (public / "spring-drop" / "en-US" / "index.html").read_text(encoding="utf-8")
    with browser.serve(public) as server:
        page = browser.load(
            server,
            html.replace("http://localhost:8000/", server.base_url + "/"),
            width=viewport,
            height=900,
            name=f"probe-{viewport}.html",
        )
    probe, why = page.probe, page.describe()
    assert probe["innerWidth"] == viewport, why
    hero = probe["images"][0]
    assert re.search(rf"-web-hero-{width}w-[0-9a-f]{{8}}\.avif$", hero["currentSrc"]), why
    assert hero["fetchpriority"] == "high" and hero["loading"] is None, why
    assert [p for p in page.requests if "-web-hero-" in p] == [
        hero["currentSrc"].removeprefix(server.base_url)
    ], why
    assert probe["layoutShift"] == 0 and probe["shifts"] == [], why


# -- S3 through the same line ----------------------------------------------------------


def test_publish_to_s3_and_sync(
    ran: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket target declared in bildwerk.yaml (moto's S3 server, credentials from the
    standard AWS environment): the same files, headers and pages as a folder."""
    import httpx

    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        httpx.put(f"{endpoint}/assets", timeout=10).raise_for_status()
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            monkeypatch.setenv(name, value)
        ws, run_id = fresh(ran, tmp_path)
        allow_loopback(ws.root)
        with (ws.root / "bildwerk.yaml").open("a", encoding="utf-8") as fh:
            fh.write(
                f"  bucket:\n    type: s3\n    url: s3://assets/campaigns\n"
                f"    endpoint_url: {endpoint}\n"
            )
        ws = Workspace(ws.root)
        report = ws.publisher("t").publish(run_id, ["bucket"])
        assert report.uploaded == FILES
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        keys = fs.find("assets/campaigns")
        images = [k for k in keys if "/img/" in k and not k.endswith(".c2pa")]
        assert len(images) == FILES
        sidecars = [k for k in keys if k.endswith(".c2pa")]  # no public base URL: relative
        assert len(sidecars) == HERO_FILES and all(k[: -len(".c2pa")] in images for k in sidecars)
        served = httpx.get(fs.url(sidecars[0]), timeout=10)
        assert served.headers["Content-Type"] == "application/c2pa"
        assert sidecars[0].rsplit("/", 1)[-1].encode() in fs.cat(sidecars[0][: -len(".c2pa")])
        assert "assets/campaigns/sitemap-images.xml" in keys
        served = httpx.get(fs.url(images[0]), timeout=10)
        assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert served.headers["Content-Type"].startswith("image/")
        page = fs.cat("assets/campaigns/spring-drop/en-US/index.html").decode()
        assert f"{endpoint}/assets/campaigns/img/" in page
        victim = report.published[0]
        ws.publisher("legal").set_rights(victim, revoke="withdrawn")
        assert ws.publisher("legal").sync().removed == {"bucket": [victim]}
        fs.invalidate_cache()
        left = [k for k in fs.find("assets/campaigns") if "/img/" in k]
        assert len(left) < FILES + HERO_FILES  # the victim's files and sidecars are gone
        with ws.db.session() as s:
            gone = s.scalars(select(Publication).where(Publication.asset_id == victim)).all()
            assert gone and all(p.state == "removed" for p in gone)
            assert not any(p.key.split("/")[-1] in " ".join(left) for p in gone)
    finally:
        server.stop()


def test_verify_names_the_asset_its_watermark_belongs_to(
    published: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = images(published)
    # public marks JPEGs from 1080 px: the widest web-hero JPEG carries it
    jpg = max((f for f in files if f.suffix == ".jpg" and "-web-hero-" in f.name), key=width_of)
    code, out, err = cli(["verify", str(jpg), "-w", str(published), "--json"], capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert report["c2pa"]["state"] == "Trusted"
    assert report["watermark"]["asset_id"] == report["xmp"]["asset_id"]
    assert report["watermark"]["match"] > 0.3
    # the same pixels without the mark: bits decode to something, but nothing matches
    rng = np.random.default_rng(5)
    with Image.open(jpg) as im:
        w, h = im.size
    noise = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    plain = tmp_path / "plain.jpg"
    Image.fromarray(noise).save(plain, quality=90)
    code, out, err = cli(
        ["verify", str(plain), "-w", str(published), "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["c2pa"]["state"] == "absent" and report["watermark"]["asset_id"] is None


def test_watermark_lookup_needs_a_real_match(published: Path, tmp_path: Path) -> None:
    """A payload prefix that happens to name an asset is not enough: the mark's strength
    decides (unmarked pixels stay near 0, marked ones well above the threshold)."""
    from bildwerk.publish.inspect import verify_file

    heroes = [f for f in images(published) if f.suffix == ".jpg" and "-web-hero-" in f.name]
    jpg = max(heroes, key=width_of)  # marked: public marks JPEGs from 1080 px
    with Image.open(jpg) as im:
        owner = re.search(XMP_ASSET_ID, im.info["xmp"])
        assert owner is not None
        im.convert("RGB").save(tmp_path / "copy.png")
    asset = owner.group(1).decode()
    rng = np.random.default_rng(9)
    with Image.open(jpg) as im:
        size = im.size
    unmarked = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(unmarked).save(tmp_path / "other.png")
    always = lambda _hex: [asset]  # noqa: E731 - a lookup that claims every payload
    marked = verify_file(tmp_path / "copy.png", lookup=always)["watermark"]
    assert marked["asset_id"] == asset and marked["match"] > 0.3
    other = verify_file(tmp_path / "other.png", lookup=always)["watermark"]
    assert other["asset_id"] is None and other["match"] is None


# -- renditions too small for the mark; signing through a callback (KMS/HSM) -------------

TINY_BRIEF = """\
campaign: tiny
backend: studio
locales:
  en-US: {{headline: "Hi", cta: "Go"}}
channels:
  - {{name: leaderboard, width: 728, height: 90, overrides: {{widths: [728], delivery: ads}}}}
prompt:
  template: "packshot of the {{product}}"
  slots:
    product: [{product}]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
"""


def test_rendition_too_small_for_the_watermark(tmp_path: Path) -> None:
    root = tmp_path / "acme"
    init_workspace(root, name="acme")
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    brief = root / "campaigns" / "tiny.yaml"
    brief.write_text(TINY_BRIEF.format(product=product), encoding="utf-8")
    ws = Workspace(root)
    run_id = ws.run(brief, workers=1).run_id
    for row in ws.review(run_id, all_states=True):  # the gate may frown at a 90 px banner
        ws.decide(row["id"], "approved", actor="t", reason="test", override=True)
    dev_init(root, org="acme")
    with pytest.raises(UserError, match=r"no invisible watermark in .*728×90") as info:
        ws.publisher("t").publish(run_id, ["site"])
    assert "when_possible" in (info.value.hint or "")
    assert not (root / "public").exists()
    brand = root / "brand" / "brand.yaml"
    brand.write_text(
        brand.read_text().replace(
            "do_not_train: true", "do_not_train: true\n  watermark: when_possible"
        )
    )
    report = Workspace(root).publisher("t").publish(run_id, ["site"])
    assert report.uploaded == 3 and any("without watermark" in w for w in report.warnings)


_KMS_KEY: list[Path] = []


def kms_sign(data: bytes) -> bytes:
    """Stands in for a KMS: the private key never reaches bildwerk, only signatures."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(_KMS_KEY[0].read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def test_publish_signs_through_a_callback(ran: tuple[Path, str], tmp_path: Path) -> None:
    from bildwerk.publish.c2pa_read import verify

    ws, run_id = fresh(ran, tmp_path)
    kms_dir = tmp_path / "kms"
    kms_dir.mkdir()
    key = ws.root / "keys" / "dev-key.pem"
    _KMS_KEY[:] = [kms_dir / "key.pem"]
    key.rename(_KMS_KEY[0])  # no key file left in the workspace
    ws.use_signer(
        ws.root / "keys" / "dev-chain.pem", None, callback="tests.publish.test_publish:kms_sign"
    )
    report = Workspace(ws.root).publisher("t").publish(run_id, ["site"])
    assert report.uploaded == FILES and not report.dev_keys
    f = images(ws.root)[0]
    fmt = {".jpg": "jpeg"}.get(f.suffix, f.suffix[1:])
    result = verify(
        f.read_bytes(), fmt, trust_anchors=ws.root / "keys" / "dev-root.pem", manifest=sidecar(f)
    )
    assert result.state == "Trusted", result.failures
