"""Network limits and the SSRF guard (issue 10, item 6), against misbehaving servers on
127.0.0.1 only. Host names are resolved by a patched ``socket.getaddrinfo``: no test
looks anything up outside this machine."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bildwerk import netguard
from bildwerk.backends.remote.client import RemoteClient
from bildwerk.config.settings import Settings
from bildwerk.errors import ServiceError, UserError
from bildwerk.httpretry import DeadlineExceeded, ResponseTooLargeError, RetryingClient, RetryPolicy
from bildwerk.netguard import BlockedAddressError, Limits, NetPolicy
from bildwerk.publishers import TargetRejectedError, WebhookTarget

LOOPBACK = NetPolicy.build(["127.0.0.1"])
NOTHING_INSIDE = NetPolicy.build([])
ONCE = RetryPolicy(max_attempts=1)


class RawServer:
    """A TCP server on 127.0.0.1 whose ``handle(conn)`` does whatever a test needs."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/x"
        self.requests: list[bytes] = []
        self._handle = handle
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.requests.append(conn.recv(65536))
                self._handle(conn)
            except OSError:
                pass  # the client hung up: that is the point of most tests here

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handle: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(handle))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def client(limits: Limits, network: NetPolicy = LOOPBACK) -> RetryingClient:
    return RetryingClient("test", policy=ONCE, limits=limits, network=network)


def ok(body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode() + body


# --------------------------------------------------------------------------- limits


def test_a_hung_server_costs_the_deadline_not_the_read_timeout(serve: Any) -> None:
    server = serve(lambda conn: time.sleep(10))
    started = time.monotonic()
    with client(Limits(connect=1, read=60, deadline=1.0)) as http:
        outcome = http.send("GET", server.url)
    assert isinstance(outcome.error, httpx.TimeoutException)
    assert time.monotonic() - started < 4


def test_a_trickling_server_is_stopped_at_the_overall_deadline(serve: Any) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            conn.sendall(b"x")
            time.sleep(0.2)  # each read is quick: per-read timeouts never fire

    server = serve(trickle)
    started = time.monotonic()
    with client(Limits(connect=1, read=5, deadline=1.5)) as http:
        outcome = http.send("GET", server.url)
    assert isinstance(outcome.error, DeadlineExceeded)
    assert "1.5 s deadline" in str(outcome.error) and server.url in str(outcome.error)
    assert time.monotonic() - started < 4


def test_a_reply_over_the_cap_is_refused_as_announced_and_as_streamed(serve: Any) -> None:
    announced = serve(lambda conn: conn.sendall(ok(b"", "").replace(b": 0", b": 99999999")))

    def endless(conn: socket.socket) -> None:  # no Content-Length: read until close
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while True:
            conn.sendall(b"\0" * 65536)

    streamed = serve(endless)
    with client(Limits(max_bytes=1024 * 1024)) as http:
        with pytest.raises(ResponseTooLargeError, match="1 MB limit") as info:
            http.send("GET", announced.url)
        assert "announces 99999999 bytes" in str(info.value)
        assert info.value.exit_code == 3 and info.value.url == announced.url
        with pytest.raises(
            ResponseTooLargeError, match=re.escape("network.image_api.max_response_mb")
        ):
            http.send("GET", streamed.url)


def test_a_2_gb_reply_costs_the_cap_not_the_body(serve: Any, tmp_path: Path) -> None:
    """The client runs under a 1 GB address-space limit: reading the body whole (the old
    behaviour) dies with MemoryError; streaming under a 16 MB cap stops early."""
    total = 2 * 1024**3

    def huge(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        chunk = b"\0" * (1 << 20)
        for _ in range(total >> 20):
            conn.sendall(chunk)

    server = serve(huge)
    script = textwrap.dedent(
        f"""
        import resource
        from bildwerk.httpretry import RetryingClient, RetryPolicy, ResponseTooLargeError
        from bildwerk.netguard import Limits, NetPolicy
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        http = RetryingClient(
            "big", policy=RetryPolicy(max_attempts=1),
            limits=Limits(max_bytes=16 << 20), network=NetPolicy.build(["127.0.0.1"]),
        )
        try:
            http.send("GET", {server.url!r})
        except ResponseTooLargeError as exc:
            print("capped:", exc.message)
        """
    )
    # the header announces 2 GB: refused before reading
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "capped:" in done.stdout and "16 MB limit" in done.stdout

    def no_length(conn: socket.socket) -> None:  # read until close: counted as it streams
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        chunk = b"\0" * (1 << 20)
        for _ in range(total >> 20):
            conn.sendall(chunk)

    streamed = serve(no_length)
    done = subprocess.run(
        [sys.executable, "-c", script.replace(server.url, streamed.url)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "capped:" in done.stdout and "more than" in done.stdout


def test_garbage_is_a_transport_error_and_a_remote_error(serve: Any) -> None:
    server = serve(lambda conn: conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n"))
    with client(Limits()) as http:
        outcome = http.send("GET", server.url)
    assert isinstance(outcome.error, httpx.TransportError)


def test_a_webhook_reply_is_capped_at_the_webhook_limit(serve: Any) -> None:
    def big(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while True:
            conn.sendall(b"x" * 65536)

    server = serve(big)
    policy = NetPolicy.build(["127.0.0.1"], {"webhook": Limits(max_bytes=256 * 1024)})
    hook = WebhookTarget(server.url, "s3cret", network=policy, max_attempts=1)
    with pytest.raises(ResponseTooLargeError, match=re.escape("network.webhook.max_response_mb")):
        hook.notify({"type": "t"})


# --------------------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://0.0.0.0:9/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_inside_addresses_are_refused_before_connecting(url: str) -> None:
    with (
        client(Limits(), NOTHING_INSIDE) as http,
        pytest.raises(BlockedAddressError, match=re.escape("network.allow_hosts")) as info,
    ):
        http.send("GET", url)
    assert info.value.exit_code == 2


def test_a_redirect_to_a_private_address_is_not_followed(serve: Any) -> None:
    server = serve(
        lambda conn: conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/admin\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    )
    with client(Limits()) as http:
        outcome = http.send("GET", server.url)
    assert outcome.response is not None and outcome.response.status_code == 302
    assert len(server.requests) == 1
    hook = WebhookTarget(server.url, "s3cret", network=LOOPBACK, max_attempts=1)
    with pytest.raises(TargetRejectedError, match=re.escape("redirected to http://10.0.0.1/admin")):
        hook.notify({"type": "t"})


def test_a_url_a_reply_names_goes_through_the_guard() -> None:
    """OpenAI's result ``url`` is fetched by the same client: an inside address is refused."""
    from bildwerk.backends.openai_images import OpenAIImagesBackend
    from bildwerk.backends.remote.apikeys import Secret

    profile = OpenAIImagesBackend.profile
    remote = RemoteClient(
        profile, "https://api.example.test", Secret("sk-x"), network=NOTHING_INSIDE
    )
    with pytest.raises(BlockedAddressError, match=re.escape("169.254.169.254")):
        remote.request("GET", "http://169.254.169.254/latest/meta-data/", auth=False)
    remote.close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """``socket.getaddrinfo`` answering from a table (and counting): no real DNS."""
    table: dict[str, list[str]] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            calls.append(host)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, int(port)))
                for addr in table[host]
            ]
        try:
            socket.inet_aton(str(host))
        except OSError:
            raise socket.gaierror(f"test DNS: {host} unknown") from None
        return real(host, port, *args, **kwargs)  # literal addresses only

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    table["__calls__"] = calls  # type: ignore[assignment]
    return table


def test_a_name_resolving_to_loopback_is_refused_without_the_allow_list(
    fake_dns: dict[str, list[str]], serve: Any
) -> None:
    server = serve(lambda conn: conn.sendall(ok(b"inside")))
    fake_dns["rebind.example"] = ["127.0.0.1"]
    url = f"http://rebind.example:{server.port}/x"
    with (
        client(Limits(), NOTHING_INSIDE) as http,
        pytest.raises(BlockedAddressError, match=r"rebind\.example \(127\.0\.0\.1\)"),
    ):
        http.send("GET", url)
    assert server.requests == []
    # an answer mixing a public and an inside address is refused whole
    fake_dns["mixed.example"] = ["8.8.8.8", "127.0.0.1"]
    with client(Limits(), NOTHING_INSIDE) as http, pytest.raises(BlockedAddressError):
        http.send("GET", f"http://mixed.example:{server.port}/x")


def test_the_checked_address_is_the_one_connected_with_the_host_name_kept(
    fake_dns: dict[str, list[str]], serve: Any
) -> None:
    """Resolved once per connection; the socket goes to that address; Host stays the name."""
    server = serve(lambda conn: conn.sendall(ok(b"hello")))
    fake_dns["cms.example"] = ["127.0.0.1"]
    allowed = NetPolicy.build(["cms.example"])
    with client(Limits(), allowed) as http:
        outcome = http.send("GET", f"http://cms.example:{server.port}/x")
    assert outcome.response is not None and outcome.response.content == b"hello"
    assert fake_dns["__calls__"] == ["cms.example"]  # type: ignore[comparison-overlap]
    assert f"host: cms.example:{server.port}".encode() in server.requests[0].lower()


def test_networks_in_the_allow_list(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["minio.lan"] = ["10.20.0.5"]
    policy = NetPolicy.build(["10.20.0.0/16"])
    assert netguard.resolve("minio.lan", 9000, policy) == ["10.20.0.5"]
    with pytest.raises(BlockedAddressError):
        netguard.resolve("minio.lan", 9000, NOTHING_INSIDE)
    with pytest.raises(ServiceError, match="cannot resolve"):
        netguard.resolve("nowhere.example", 80, policy)


def test_s3_endpoints_and_blob_stores_are_checked_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("s3fs")
    from bildwerk.blobs.objectstore import ObjectBlobStore
    from bildwerk.publishers.s3 import S3Target

    netguard.configure(NOTHING_INSIDE)
    target = S3Target("s3://b/p", endpoint_url="http://169.254.169.254")
    with pytest.raises(BlockedAddressError, match="S3 target"):
        target.exists("k")
    with pytest.raises(BlockedAddressError, match="blob store"):
        ObjectBlobStore("s3://b/p", options={"client_kwargs": {"endpoint_url": "http://10.0.0.9"}})


# --------------------------------------------------------------------------- settings


def test_settings_make_the_policy_and_workers_get_it() -> None:
    settings = Settings.model_validate(
        {
            "network": {
                "allow_hosts": ["127.0.0.1", "minio.lan", "10.0.0.0/8"],
                "image_api": {"read_timeout": 30, "deadline": 90, "max_response_mb": 32},
                "webhook": {"max_response_mb": 1},
            }
        }
    )
    policy = settings.network.policy()
    assert policy.limits_for("image_api") == Limits(10.0, 30.0, 90.0, 32 << 20)
    assert policy.limits_for("webhook").max_bytes == 1 << 20
    assert policy.host_allowed("MINIO.lan")
    assert NetPolicy.from_json(policy.to_json()) == policy
    netguard.configure(policy)
    assert netguard.current_policy() is policy
    with pytest.raises(ValueError, match="deadline"):
        Settings.model_validate({"network": {"image_api": {"deadline": 0}}})


def test_configured_timeouts_reach_the_remote_client() -> None:
    from bildwerk.backends.openai_images import OpenAIImagesBackend

    netguard.configure(NetPolicy.build([], {"image_api": Limits(3, 7, 11, 5 << 20)}))
    backend = OpenAIImagesBackend(api_key="sk-x", base_url="https://api.example.test")
    remote = backend.client()
    assert remote.limits == Limits(3, 7, 11, 5 << 20)
    backend.close()


def test_the_tsa_url_is_checked(tmp_path: Path) -> None:
    from bildwerk.config.publishing import SigningSettings
    from bildwerk.publish.stamp import load_identity

    netguard.configure(NOTHING_INSIDE)
    signing = SigningSettings(cert=Path("c.pem"), key=Path("k.pem"), tsa_url="http://10.9.9.9/tsa")
    with pytest.raises(UserError, match=re.escape("signing.tsa_url")):
        load_identity(tmp_path, signing)


def test_s3_connects_only_to_the_address_it_checked(
    fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding against s3fs: the endpoint's name answers 127.0.0.1 when checked and
    an inside address afterwards; the upload still goes to the checked address, and no
    socket is ever pointed anywhere else (a guard refuses it before a packet leaves)."""
    pytest.importorskip("s3fs")
    import httpx
    from moto import settings as moto_settings
    from moto.s3 import utils as moto_s3_utils
    from moto.server import ThreadedMotoServer

    from bildwerk.publishers.s3 import S3Target

    # a named endpoint (not an IP) is path-style to moto only with this switch
    monkeypatch.setattr(moto_settings, "S3_IGNORE_SUBDOMAIN_BUCKETNAME", True)
    monkeypatch.setattr(moto_s3_utils, "S3_IGNORE_SUBDOMAIN_BUCKETNAME", True)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        port = server.get_host_and_port()[1]
        httpx.put(f"http://127.0.0.1:{port}/site", timeout=10).raise_for_status()
        answers = iter([["127.0.0.1"]])

        def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            addresses = next(answers, ["10.9.9.9"])  # the first answer, then a rebind
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in addresses]

        elsewhere: list[object] = []
        real_connect = socket.socket.connect

        def guarded(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple) and address[0] != "127.0.0.1":
                elsewhere.append(address)
                raise ConnectionRefusedError("test guard: only 127.0.0.1")
            return real_connect(sock, address)

        lookup = socket.getaddrinfo
        monkeypatch.setattr(
            socket,
            "getaddrinfo",
            lambda host, *a, **k: (
                rebinding(host, *a, **k) if host == "minio.example" else lookup(host, *a, **k)
            ),
        )
        monkeypatch.setattr(socket.socket, "connect", guarded)
        netguard.configure(NetPolicy.build(["minio.example"]))
        target = S3Target(
            "s3://site/p",
            endpoint_url=f"http://minio.example:{port}",
            storage_options={"key": "k", "secret": "s"},
        )
        target.put("img/a.jpg", b"jpeg", content_type="image/jpeg", cache_control="no-cache")
        assert target.exists("img/a.jpg")
        assert elsewhere == []
    finally:
        server.stop()
