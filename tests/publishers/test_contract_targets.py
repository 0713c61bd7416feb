"""Every built-in publish target passes the contracts of ``bildwerk.testing``: the memory,
folder and S3 (a local moto server) storage targets, and the webhook notifier (a local
``http.server``)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from moto.server import ThreadedMotoServer

from bildwerk.publishers import FolderTarget, MemoryTarget, S3Target, WebhookTarget
from bildwerk.testing import NotifierContract, PublishTargetContract
from bildwerk.testing.common import extra_modules

pytestmark = pytest.mark.timeout(60)

CREDS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}
HOOK_SECRET = "contract-hook-s3cr3t"


class TestMemory(PublishTargetContract):
    registered_name = None  # built in code (tests, dry runs), not a configurable type

    def make_target(self) -> MemoryTarget:
        return MemoryTarget("https://cdn.example.com")

    def read(self, target: Any, key: str, url: str) -> bytes:
        data: bytes = target.objects[key][0]
        return data

    def headers(self, target: Any, key: str, url: str) -> Mapping[str, str]:
        _, content_type, cache_control = target.objects[key]
        return {"Content-Type": content_type, "Cache-Control": cache_control}


class TestFolder(PublishTargetContract):
    registered_name = "folder"

    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path / "site"

    def make_target(self) -> FolderTarget:
        return FolderTarget(self.root, "https://cdn.example.com")

    def read(self, target: Any, key: str, url: str) -> bytes:
        assert url == f"https://cdn.example.com/{url.split('.com/', 1)[1]}"
        return (self.root / key).read_bytes()

    def headers(self, target: Any, key: str, url: str) -> Mapping[str, str]:
        record = json.loads((self.root / FolderTarget.RECORD).read_text(encoding="utf-8"))
        headers: dict[str, str] = record[key]
        return headers


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


class TestS3(PublishTargetContract):
    registered_name = "s3"
    extra_modules = extra_modules("publish")

    @pytest.fixture(autouse=True)
    def _bucket(self, moto_endpoint: str) -> None:
        self.endpoint = moto_endpoint
        self.prefix = f"contract-{uuid.uuid4().hex[:8]}"

    def make_target(self) -> S3Target:
        return S3Target(
            f"s3://site/{self.prefix}", endpoint_url=self.endpoint, storage_options=CREDS
        )

    def read(self, target: Any, key: str, url: str) -> bytes:
        # the bytes a CDN would fetch: a plain HTTP GET of the URL put returned
        return self._get(url).content

    def headers(self, target: Any, key: str, url: str) -> Mapping[str, str]:
        return dict(self._get(url).headers)

    def _get(self, url: str) -> httpx.Response:
        """GET the object over plain HTTP, as a CDN would: through a presigned URL for
        the same path (the bucket is private)."""
        s3fs = pytest.importorskip("s3fs")
        prefix = f"{self.endpoint}/site/{self.prefix}/"
        assert url.startswith(prefix), url
        fs = s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True, **CREDS)
        path = f"site/{self.prefix}/{unquote(url.removeprefix(prefix))}"
        response = httpx.get(fs.url(path), timeout=10)
        response.raise_for_status()
        return response


# --------------------------------------------------------------------------- webhook


class Receiver:
    """A CMS stand-in on 127.0.0.1: records each POSTed body, answers 204."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bildwerk?token=t0k"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


class TestWebhook(NotifierContract):
    registered_name = "webhook"
    secrets = (HOOK_SECRET, "t0k")  # the HMAC secret, and a token in the URL's query

    @pytest.fixture(autouse=True)
    def _receiver(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def make_notifier(self) -> WebhookTarget:
        return WebhookTarget(self.receiver.url, HOOK_SECRET, timeout=5, max_attempts=1)

    def received(self) -> list[Any]:
        return [json.loads(body) for body in self.receiver.bodies]
