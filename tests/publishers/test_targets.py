"""Publish targets: CDN-origin folder, S3 (against a local moto server) and a signed,
retrying CMS webhook (against a local http.server)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from bildwerk.errors import MissingExtraError, UserError
from bildwerk.publish.delivery import SIDECAR_TYPE
from bildwerk.publish.seo import PublishedImage, Rendition
from bildwerk.publishers import (
    IMMUTABLE,
    REVALIDATE,
    FolderTarget,
    MemoryTarget,
    Notifier,
    PublishTarget,
    S3Target,
    TargetRejectedError,
    TargetUnavailableError,
    WebhookTarget,
    check_key,
    content_type_for,
    event_key,
    origin_key,
    publish_event,
)

pytestmark = pytest.mark.timeout(60)

SHA = hashlib.sha256(b"pixels").hexdigest()
CREDS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- keys


def test_origin_key_is_semantic_and_content_hashed() -> None:
    key = origin_key("Trail Runner X — Spring!", "web_hero", 1920, SHA, "jpeg")
    assert key == f"trail-runner-x-spring-web-hero-1920w-{SHA[:8]}.jpg"
    assert content_type_for(key) == "image/jpeg"
    with pytest.raises(ValueError, match="sha256"):
        origin_key("a", "b", 10, "abc", "avif")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("robots.txt", "text/plain; charset=utf-8"),  # issue 10.10: was octet-stream
        ("pages/en-us/index.html", "text/html; charset=utf-8"),
        ("sitemap.xml", "application/xml"),
        ("_headers.json", "application/json"),
        ("blob.bin", "application/octet-stream"),
    ],
)
def test_content_types_of_published_files(key: str, expected: str) -> None:
    assert content_type_for(key) == expected


@pytest.mark.parametrize("key", ["", "/abs.jpg", "a/../b.jpg", "a//b.jpg", ".hidden", "a\\b"])
def test_check_key_refuses_unsafe_keys(key: str) -> None:
    with pytest.raises(UserError, match="invalid publish key"):
        check_key(key)


# --------------------------------------------------------------------------- folder


def test_folder_layout_headers_and_no_temp_files(tmp_path: Path) -> None:
    site = FolderTarget(tmp_path / "site", "https://cdn.example.com/")
    keys = [
        f"img/{origin_key('shoe', 'feed', w, SHA, f)}" for w in (480, 768) for f in ("avif", "jpg")
    ]
    for k in keys:
        url = site.put(
            k, b"bytes " + k.encode(), content_type=content_type_for(k), cache_control=IMMUTABLE
        )
        assert url == f"https://cdn.example.com/{k}"
    site.put(
        "sitemap-images.xml", b"<urlset/>", content_type="application/xml", cache_control=REVALIDATE
    )

    root = tmp_path / "site"
    assert (root / keys[0]).read_bytes() == b"bytes " + keys[0].encode()
    assert sorted(p.name for p in root.rglob("*") if p.name.endswith(".tmp")) == []
    record = json.loads((root / "_headers.json").read_text())
    assert record[keys[0]] == {"Content-Type": "image/avif", "Cache-Control": IMMUTABLE}
    headers = (root / "_headers").read_text().splitlines()
    # hosts derive avif/jpeg types from the extension and default to REVALIDATE, so
    # img/ is one immutable pattern rule and the sitemap needs none
    assert headers[1:] == ["/img/*", f"  Cache-Control: {IMMUTABLE}"]
    assert all(line.startswith(("#", "/", "  ")) for line in headers)


def test_folder_headers_stay_a_few_pattern_rules_whatever_the_run_size(tmp_path: Path) -> None:
    """A run of 1000 renditions in four formats, each with its ``.c2pa`` sidecar as a
    remote-credentials profile publishes it, plus pages, sitemaps and robots.txt: one
    immutable ``/img/*`` rule, robots.txt explicitly ``text/plain`` (crawlers skip a
    robots file of another type), far below the 100 rules Cloudflare Pages reads."""
    site = FolderTarget(tmp_path, "https://cdn.example.com")
    with site.batch():
        for i in range(250):
            for fmt in ("avif", "webp", "jpg", "png"):
                key = f"img/{origin_key(f'shoe-{i}', 'feed', 480, SHA, fmt)}"
                site.put(key, b"x", content_type=content_type_for(key), cache_control=IMMUTABLE)
                site.put(f"{key}.c2pa", b"m", content_type=SIDECAR_TYPE, cache_control=IMMUTABLE)
        for key in ("index.html", "c/en-US/index.html", "c/ar-AE/index.html",
                    "sitemap-images.xml", "robots.txt"):  # fmt: skip
            site.put(key, b"x", content_type=content_type_for(key), cache_control=REVALIDATE)
    lines = (tmp_path / "_headers").read_text().splitlines()
    rules = [line for line in lines if line.startswith("/")]
    assert rules == ["/robots.txt", "/img/*"], lines
    i = lines.index("/robots.txt")
    assert lines[i + 1 : i + 3] == ["  Content-Type: text/plain; charset=utf-8", "/img/*"]


def test_folder_headers_collapse_to_one_rule_per_uniform_folder(tmp_path: Path) -> None:
    site = FolderTarget(tmp_path, "https://cdn.example.com")
    for w in (480, 768, 1080):
        site.put(f"img/a-{w}w.avif", b"x", content_type="image/avif", cache_control=IMMUTABLE)
    lines = (tmp_path / "_headers").read_text().splitlines()
    assert lines[1:] == ["/img/*", f"  Cache-Control: {IMMUTABLE}"]
    # a new instance picks the record up again
    again = FolderTarget(tmp_path, "https://cdn.example.com")
    again.delete("img/a-480w.avif")
    assert not again.exists("img/a-480w.avif") and again.exists("img/a-768w.avif")
    assert "img/a-480w.avif" not in json.loads((tmp_path / "_headers.json").read_text())


def test_folder_put_is_atomic_and_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = FolderTarget(tmp_path, "https://cdn.example.com")
    site.put("img/a.avif", b"old", content_type="image/avif", cache_control=IMMUTABLE)
    site.put("img/a.avif", b"old", content_type="image/avif", cache_control=IMMUTABLE)  # no-op
    with pytest.raises(TargetRejectedError, match="immutable"):
        site.put("img/a.avif", b"new", content_type="image/avif", cache_control=IMMUTABLE)

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TargetUnavailableError, match="disk full"):
        site.put("img/b.avif", b"b", content_type="image/avif", cache_control=IMMUTABLE)
    assert not (tmp_path / "img" / "b.avif").exists()
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
    assert (tmp_path / "img" / "a.avif").read_bytes() == b"old"


def test_folder_delete_drops_empty_folders(tmp_path: Path) -> None:
    site = FolderTarget(tmp_path / "out", "https://cdn.example.com")
    site.put("img/x/a.png", b"x", content_type="image/png", cache_control=IMMUTABLE)
    site.delete("img/x/a.png")
    site.delete("img/x/a.png")  # deleting twice is fine
    assert not (tmp_path / "out" / "img").exists() and (tmp_path / "out").is_dir()


# --------------------------------------------------------------------------- S3 (moto)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs", reason="S3 publishing needs the publish extra")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.put(f"{endpoint}/site", timeout=10).raise_for_status()  # moto takes unsigned calls
    yield endpoint
    server.stop()


def test_s3_sets_content_type_and_cache_control(moto_endpoint: str) -> None:
    target = S3Target("s3://site/cdn", endpoint_url=moto_endpoint, storage_options=CREDS)
    url = target.put(
        "img/a.avif", b"avif bytes", content_type="image/avif", cache_control=IMMUTABLE
    )
    assert url == f"{moto_endpoint}/site/cdn/img/a.avif"
    # the headers S3 serves to a CDN or browser: GET a presigned URL over plain HTTP
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True, **CREDS)
    served = httpx.get(fs.url("site/cdn/img/a.avif"), timeout=10)
    assert served.content == b"avif bytes"
    assert served.headers["Content-Type"] == "image/avif"
    assert served.headers["Cache-Control"] == IMMUTABLE
    assert target.exists("img/a.avif") and not target.exists("img")  # a prefix is no object
    target.delete("img/a.avif")
    assert not target.exists("img/a.avif")


def test_s3_public_base_url_and_missing_bucket(moto_endpoint: str) -> None:
    cdn = S3Target(
        "s3://site",
        endpoint_url=moto_endpoint,
        storage_options=CREDS,
        public_base_url="https://cdn.example.com/",
    )
    assert cdn.put("a.jpg", b"j", content_type="image/jpeg", cache_control=IMMUTABLE) == (
        "https://cdn.example.com/a.jpg"
    )
    missing = S3Target("s3://nope/x", endpoint_url=moto_endpoint, storage_options=CREDS)
    with pytest.raises(TargetRejectedError, match="bucket 'nope' not found"):
        missing.put("a.jpg", b"j", content_type="image/jpeg", cache_control=IMMUTABLE)


def test_s3_unreachable_fails_fast_and_clearly() -> None:
    pytest.importorskip("s3fs", reason="S3 publishing needs the publish extra")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    target = S3Target("s3://site/x", endpoint_url=endpoint, storage_options=CREDS, timeout=2)
    start = time.monotonic()
    with pytest.raises(TargetUnavailableError) as err:
        target.put("a.jpg", b"j", content_type="image/jpeg", cache_control=IMMUTABLE)
    assert time.monotonic() - start < 15
    assert endpoint in str(err.value) and "endpoint_url" in str(err.value)
    assert isinstance(err.value, UserError)


def test_s3_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"bildwerk\[publish\]"):
        S3Target("s3://site").exists("a.jpg")


# --------------------------------------------------------------------------- contract


@pytest.fixture(params=["memory", "folder", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> PublishTarget:
    if request.param == "memory":
        return MemoryTarget()
    if request.param == "folder":
        return FolderTarget(tmp_path, "https://cdn.example.com")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Target("s3://site/contract", endpoint_url=endpoint, storage_options=CREDS)


def test_every_target_keeps_the_contract(target: PublishTarget) -> None:
    assert isinstance(target, PublishTarget) and target.name
    key = f"img/{origin_key('shoe', 'feed', 480, SHA, 'webp')}"
    assert not target.exists(key)
    first = target.put(key, b"webp", content_type="image/webp", cache_control=IMMUTABLE)
    assert target.put(key, b"webp", content_type="image/webp", cache_control=IMMUTABLE) == first
    assert first.endswith(key) and target.exists(key)
    target.delete(key)
    assert not target.exists(key)


# --------------------------------------------------------------------------- webhook

SECRET = "s3cr3t-hook"


class Hook:
    """A CMS stand-in: checks the signature, then answers from a script of statuses."""

    def __init__(
        self, script: list[int], *, delay: float = 0.0, headers: dict[str, str] | None = None
    ):
        self.script = list(script)
        self.delay = delay
        self.extra = headers or {}
        self.calls: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls.append((dict(self.headers.items()), body))
                want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, self.headers.get("X-Bildwerk-Signature", ""))
                status = (hook.script.pop(0) if hook.script else 200) if ok else 401
                time.sleep(hook.delay)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                    self.send_response(status)
                    for k, v in hook.extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if status >= 400 else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bildwerk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    hooks: list[Hook] = []

    def make(script: list[int], **kw: Any) -> Hook:
        hooks.append(Hook(script, **kw))
        return hooks[-1]

    yield make
    for h in hooks:
        h.close()


def webhook(url: str, sleeps: list[float], **kw: Any) -> WebhookTarget:
    return WebhookTarget(url, SECRET, sleep=sleeps.append, rng=random.Random(7), **kw)


def event() -> dict[str, Any]:
    rs = [
        Rendition(f, 480, 600, f"https://cdn.example.com/img/a-480w.{f}") for f in ("avif", "jpeg")
    ]
    img = PublishedImage(
        asset_id="v1",
        slug="a",
        alt="Trail Runner X. “Fresh drop”",
        title="A",
        width=1080,
        height=1350,
        sizes="100vw",
        lcp=True,
        renditions=rs,
        creator="ACME",
    )
    return publish_event("run-1", [img], campaign="spring", sitemap_url=None)


def test_webhook_retries_5xx_with_backoff_and_one_idempotency_key(hook_factory: Any) -> None:
    hook = hook_factory([500, 500, 200])
    sleeps: list[float] = []
    target = webhook(hook.url, sleeps, backoff=0.2, max_backoff=1.0)
    assert isinstance(target, Notifier)
    target.notify(event())
    assert len(hook.calls) == 3
    keys = {h["Idempotency-Key"] for h, _ in hook.calls}
    assert keys == {event_key(event())}
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4
    headers, body = hook.calls[-1]
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    asset = sent["assets"][0]
    assert sent["run_id"] == "run-1" and asset["html"].startswith("<picture>")
    assert asset["preload_html"].startswith('<link rel="preload"')
    assert asset["renditions"][0] == {
        "format": "avif",
        "width": 480,
        "height": 600,
        "url": "https://cdn.example.com/img/a-480w.avif",
    }


def test_webhook_honours_retry_after(hook_factory: Any) -> None:
    hook = hook_factory([429, 200], headers={"Retry-After": "2"})
    sleeps: list[float] = []
    webhook(hook.url, sleeps, backoff=0.01, max_backoff=5).notify(event())
    assert sleeps == [2.0] and len(hook.calls) == 2


def test_webhook_4xx_is_a_user_error_without_retry(hook_factory: Any) -> None:
    hook = hook_factory([400])
    sleeps: list[float] = []
    with pytest.raises(TargetRejectedError, match="HTTP 400") as err:
        webhook(hook.url, sleeps).notify(event())
    assert isinstance(err.value, UserError) and err.value.status == 400
    assert len(hook.calls) == 1 and sleeps == []


def test_webhook_wrong_secret_names_the_secret(hook_factory: Any) -> None:
    hook = hook_factory([])
    target = WebhookTarget(hook.url, "wrong", sleep=lambda s: None)
    with pytest.raises(TargetRejectedError, match="HTTP 401") as err:
        target.notify(event())
    assert "secret" in str(err.value) and "wrong" not in str(err.value)
    assert "wrong" not in repr(target)


def test_webhook_timeouts_give_up_after_bounded_retries(hook_factory: Any) -> None:
    hook = hook_factory([], delay=1.0)
    sleeps: list[float] = []
    start = time.monotonic()
    with pytest.raises(TargetUnavailableError, match="gave up after 3 attempts: timed out") as err:
        webhook(hook.url, sleeps, timeout=0.2, max_attempts=3).notify(event())
    assert time.monotonic() - start < 5
    assert err.value.attempts == 3 and len(sleeps) == 2
    assert len({h["Idempotency-Key"] for h, _ in hook.calls}) == 1


def test_webhook_unreachable_is_clear_and_quick() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook?token=abc"
    sleeps: list[float] = []
    with pytest.raises(TargetUnavailableError, match="could not connect") as err:
        webhook(url, sleeps, timeout=1, max_attempts=2).notify(event())
    message = str(err.value)
    assert url.split("?")[0] in message and "token" not in message
    assert "reachable" in message and len(sleeps) == 1


def test_webhook_refuses_plain_http_and_empty_secret() -> None:
    with pytest.raises(UserError, match="plain http"):
        WebhookTarget("http://cms.example.com/hook", SECRET)
    with pytest.raises(UserError, match="secret is empty"):
        WebhookTarget("https://cms.example.com/hook", " ")
    assert WebhookTarget("http://cms.internal/hook", SECRET, allow_insecure=True).name
