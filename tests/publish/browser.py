"""Headless Chromium harness for browser acceptance tests, standard library only.

Drives the real ``chromium`` binary over the DevTools protocol on
``--remote-debugging-pipe`` (no selenium/playwright, nothing to pip install): the
viewport is set with ``Emulation.setDeviceMetricsOverride`` because ``--window-size`` in
headless mode clamps narrow windows (375 px comes out as a 500 px viewport). A probe
script injected into a copy of the page measures what the browser really did: which
srcset candidate each ``<img>`` loaded, the layout shift it recorded and which URLs it
fetched, and reports it back through a ``Runtime.addBinding`` callback.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BINDING = "__bildwerkProbe"

# Waits for window load and every eager <img>, lets the page settle, then reports. The
# layout-shift observer is buffered, so shifts from before this script ran count too.
PROBE_JS = """
<script>
(() => {
  const settleMs = %(settle_ms)d, waitLazy = %(wait_lazy)s;
  const shifts = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      shifts.push({value: e.value, startTime: e.startTime,
        sources: (e.sources || []).map((s) => s.node ? s.node.nodeName : null)});
    }
  });
  observer.observe({type: "layout-shift", buffered: true});
  const loaded = new Promise((r) =>
    document.readyState === "complete" ? r() : addEventListener("load", r, {once: true}));
  const done = (img) => img.complete ? Promise.resolve() : new Promise((r) => {
    img.addEventListener("load", r, {once: true});
    img.addEventListener("error", r, {once: true});
  });
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  loaded
    .then(() => Promise.all([...document.images]
      .filter((i) => waitLazy || i.loading !== "lazy").map(done)))
    .then(() => sleep(settleMs)).then(frames)
    .then(() => {
      observer.takeRecords().forEach((e) => e.hadRecentInput ||
        shifts.push({value: e.value, startTime: e.startTime, sources: []}));
      observer.disconnect();
      const images = [...document.images].map((img) => {
        const box = img.getBoundingClientRect();
        return {currentSrc: img.currentSrc, naturalWidth: img.naturalWidth,
          naturalHeight: img.naturalHeight, complete: img.complete,
          loading: img.getAttribute("loading"), fetchpriority: img.getAttribute("fetchpriority"),
          box: {x: box.x, y: box.y, width: box.width, height: box.height}};
      });
      return {innerWidth, innerHeight, devicePixelRatio, images, shifts,
        layoutShift: shifts.reduce((sum, s) => sum + s.value, 0),
        resources: performance.getEntriesByType("resource")
          .map((e) => ({name: e.name, initiatorType: e.initiatorType}))};
    })
    .catch((err) => ({error: String(err && err.stack || err)}))
    .then((result) => window.%(binding)s(JSON.stringify(result)));
})();
</script>
"""


class BrowserError(AssertionError):
    """A page load that produced no probe result; carries the Chromium stderr tail."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``BILDWERK_CHROMIUM`` overrides), else None."""
    override = os.environ.get("BILDWERK_CHROMIUM")
    if override:
        return override
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


SKIP_REASON = "chromium not installed (scripts/system-deps.sh --test installs it)"


@dataclass
class Server:
    """A folder served over HTTP; ``requests`` logs every path asked for, in order, so a
    test can count downloads from the server's side as well as the page's."""

    folder: Path
    base_url: str = ""
    requests: list[str] = field(default_factory=list)


class _Handler(SimpleHTTPRequestHandler):
    log: list[str]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append(self.path)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@contextmanager
def serve(folder: Path) -> Iterator[Server]:
    """Serve ``folder`` on an ephemeral localhost port from a background thread: over
    HTTP, not file://, so fetch priority, preload and resource timing behave as online."""
    server = Server(folder)
    # MIME types set explicitly: /etc/mime.types differs between machines
    types = {**_Handler.extensions_map, ".avif": "image/avif", ".webp": "image/webp"}
    handler = type("Handler", (_Handler,), {"log": server.requests, "extensions_map": types})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def with_probe(html: str, *, settle_ms: int = 500, wait_lazy: bool = False) -> str:
    """``html`` with the probe script inserted before ``</body>`` (appended if absent).

    The probe reports ``settle_ms`` after load and the eager images (``wait_lazy``: all
    images, for pages whose lazy ones are all near the viewport and so do load)."""
    flags = {"settle_ms": settle_ms, "wait_lazy": "true" if wait_lazy else "false"}
    script = PROBE_JS % {**flags, "binding": BINDING}
    head, sep, tail = html.rpartition("</body>")
    return head + script + sep + tail if sep else html + script


@dataclass(frozen=True)
class PageLoad:
    """What one page load measured: the probe's JSON, the server paths requested during
    the load, and the browser's stderr (for failure messages)."""

    probe: dict[str, Any]
    requests: list[str]
    stderr: str

    def describe(self) -> str:
        """Readable dump to append to assertion messages."""
        probe = json.dumps(self.probe, indent=1)
        return f"probe: {probe}\nserver requests: {self.requests}\nstderr tail:\n{self.stderr}"


class _Pipe:
    """DevTools protocol over Chromium's debugging pipe: NUL-terminated JSON messages,
    commands on fd 3, replies and events on fd 4."""

    def __init__(self, send_fd: int, recv_fd: int) -> None:
        self._send = os.fdopen(send_fd, "wb", buffering=0)
        self._recv = os.fdopen(recv_fd, "rb", buffering=0)
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        with self._recv:  # closed here, on EOF, never under a blocked read
            while chunk := self._recv.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._messages.put(json.loads(message))
        self._messages.put(None)  # browser gone

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BrowserError("timed out waiting for Chromium") from None
        if message is None:
            raise BrowserError("Chromium closed the DevTools pipe")
        return message

    def call(
        self, method: str, session: str | None = None, timeout: float = 10, **params: Any
    ) -> dict[str, Any]:
        """Send one command and return its result; events seen meanwhile are kept."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        try:
            self._send.write(json.dumps(command).encode() + b"\0")
        except OSError as exc:
            raise BrowserError(f"Chromium closed the DevTools pipe ({exc})") from None
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message.get("id") != self._next_id:
                self._events.append(message)
            elif "error" in message:
                raise BrowserError(f"{method} failed: {message['error']}")
            else:
                result: dict[str, Any] = message.get("result", {})
                return result

    def wait_for(self, method: str, timeout: float) -> dict[str, Any]:
        """Params of the first event ``method`` (earlier ones included)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event.get("method") == method:
                    params: dict[str, Any] = event.get("params", {})
                    return params
            self._events.append(self._next(deadline))

    def page_errors(self) -> list[str]:
        """JavaScript exceptions and console output seen so far."""
        out = []
        for event in self._events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(details.get("exception", {}).get("description") or str(details))
            elif event.get("method") == "Runtime.consoleAPICalled":
                args = (a.get("value", a.get("description")) for a in params.get("args", []))
                out.append(f"console.{params.get('type')}: " + " ".join(map(str, args)))
        return out

    def close(self) -> None:
        """Close our end; the reader stops at EOF once the browser has exited."""
        self._send.close()
        self._reader.join(timeout=5)


def _launch(binary: str, profile: Path, stderr: Any) -> tuple[subprocess.Popen[bytes], _Pipe]:
    """Start headless Chromium with the debugging pipe on its fds 3 (in) and 4 (out)."""
    # os.pipe() takes the lowest free fds, so 3 and 4 are in use here while Popen runs and
    # its own error pipe cannot land on them and be overwritten by map_fds.
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # Copies at fd >= 5, so moving them onto 3 and 4 in the child cannot clobber each other.
    child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 5)
    child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 5)

    def map_fds() -> None:
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    args = [
        binary,
        "--headless",
        "--no-sandbox",  # containers and CI run as root
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "about:blank",
    ]
    try:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            pass_fds=(3, 4),
            preexec_fn=map_fds,  # two dup2 calls: nothing that could deadlock after fork
            start_new_session=True,  # its own process group, to kill renderers with it
        )
    finally:
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
    return process, _Pipe(to_browser_w, from_browser_r)


def load(
    server: Server,
    html: str,
    *,
    width: int,
    height: int,
    name: str = "probe.html",
    settle_ms: int = 500,
    wait_lazy: bool = False,
    timeout: float = 20,
    dpr: float = 1,
) -> PageLoad:
    """Write ``html`` plus the probe into the served folder as ``name``, open it in a
    fresh headless Chromium (new profile: no cache leaks between viewports) at a
    ``width`` x ``height`` CSS-pixel viewport with device pixel ratio ``dpr``, and return
    the measurements.

    Raises :class:`BrowserError` with page errors and the stderr tail if no result came.
    """
    binary = find_chromium()
    if binary is None:
        raise BrowserError(SKIP_REASON)
    (server.folder / name).write_text(
        with_probe(html, settle_ms=settle_ms, wait_lazy=wait_lazy), encoding="utf-8"
    )
    first_request = len(server.requests)
    with tempfile.TemporaryDirectory(prefix="bildwerk-chromium-") as tmp:
        log_path = Path(tmp) / "stderr.log"
        with log_path.open("wb") as log:
            process, pipe = _launch(binary, Path(tmp) / "profile", log)
        try:
            probe = _drive(pipe, f"{server.base_url}/{name}", width, height, timeout, dpr)
        except BrowserError as exc:
            errors = "\n".join(pipe.page_errors()) or "(none)"
            status = "running" if process.poll() is None else f"exit code {process.returncode}"
            raise BrowserError(
                f"{exc}\nchromium: {binary} ({status})\npage errors:\n{errors}\n"
                f"chromium stderr tail:\n{_tail(log_path)}"
            ) from None
        finally:
            _stop(process, pipe)
        stderr = _tail(log_path)
    return PageLoad(probe=probe, requests=server.requests[first_request:], stderr=stderr)


def _drive(
    pipe: _Pipe, url: str, width: int, height: int, timeout: float, dpr: float = 1
) -> dict[str, Any]:
    """Open ``url`` in a new tab with the viewport emulated before the first byte is
    parsed (so the preload scanner sees it too) and wait for the probe's report."""
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=height,
        deviceScaleFactor=dpr,
        mobile=False,
    )
    pipe.call("Runtime.enable", session)
    pipe.call("Runtime.addBinding", session, name=BINDING)
    navigation = pipe.call("Page.navigate", session, url=url)
    if navigation.get("errorText"):
        raise BrowserError(f"navigation to {url} failed: {navigation['errorText']}")
    payload = pipe.wait_for("Runtime.bindingCalled", timeout)["payload"]
    probe: dict[str, Any] = json.loads(payload)
    if "error" in probe:
        raise BrowserError(f"probe script failed: {probe['error']}")
    return probe


def _stop(process: subprocess.Popen[bytes], pipe: _Pipe) -> None:
    """Ask the browser to quit, then make sure it did."""
    with suppress(BrowserError):  # the pipe may close before the reply arrives
        pipe.call("Browser.close", timeout=5)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    pipe.close()


def _tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` of the browser's stderr, without the D-Bus complaints every
    container run produces (no session bus), so real errors stand out."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    useful = [line for line in text.splitlines() if ":ERROR:dbus/" not in line]
    return "\n".join(useful[-lines:])
