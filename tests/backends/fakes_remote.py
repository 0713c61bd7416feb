"""A local fake of the OpenAI Images and Stability v2beta APIs, for tests.

One threaded HTTP server on 127.0.0.1 (a free port) that checks each request against the
*documented* shapes — method, path, ``Authorization: Bearer KEY``, content type, required
and allowed fields, multipart parts, mask sizes — and answers with the documented
response shapes. Anything off is answered with the service's documented error shape and
recorded in :attr:`FakeImageAPI.violations`, so a test can assert that the client spoke
the API correctly. Failures can be scripted (statuses with headers, slow answers past
the client's read timeout, dropped connections); every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALLE3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
DALLE2_SIZES = ("256x256", "512x512", "1024x1024")
ASPECTS = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
OPENAI_GEN_FIELDS = {
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "response_format",
    "style",
    "user",
}
OPENAI_EDIT_FIELDS = {
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "response_format",
    "input_fidelity",
    "user",
}
STABILITY_FIELDS = {
    "generate/core": {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"},
    "generate/ultra": {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"},
    "generate/sd3": {
        "prompt",
        "negative_prompt",
        "aspect_ratio",
        "seed",
        "output_format",
        "model",
        "mode",
        "cfg_scale",
    },
    "edit/inpaint": {"prompt", "negative_prompt", "seed", "output_format", "grow_mask"},
    "edit/outpaint": {
        "prompt",
        "seed",
        "output_format",
        "left",
        "right",
        "up",
        "down",
        "creativity",
    },
}


@dataclass
class Upload:
    filename: str | None
    content_type: str
    data: bytes

    def image(self) -> Image.Image:
        with Image.open(io.BytesIO(self.data)) as im:
            im.load()
            return im.copy()


@dataclass
class Recorded:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[Upload]] = field(default_factory=dict)


@dataclass
class Scripted:
    """A scripted answer for the next request: ``status`` with a JSON ``body`` and
    ``headers``; ``delay`` seconds first; ``status=None`` drops the connection."""

    status: int | None = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Reject(Exception):
    """An error answer; ``violation`` False for answers that are part of the service's
    normal behaviour (bad key, moderation) rather than a malformed request."""

    def __init__(
        self, status: int, message: str, code: str | None = None, violation: bool = True
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.violation = violation


def _image_png(width: int, height: int, seed: str, base: Image.Image | None = None) -> bytes:
    """A deterministic gradient 'generation'; with ``base``, every pixel of it changed a
    little (as a real model re-renders the whole frame, product included)."""
    h = hashlib.sha256(seed.encode()).digest()
    if base is not None:
        arr = np.asarray(base.convert("RGB").resize((width, height)), dtype=np.int16)
        arr = np.clip(arr + np.array([7, -5, 3], dtype=np.int16), 0, 255)
    else:
        y, x = np.mgrid[0:height, 0:width]
        arr = np.stack(
            [
                (x * 255 // max(1, width - 1) + h[0]) % 256,
                (y * 255 // max(1, height - 1) + h[1]) % 256,
                np.full_like(x, h[2]),
            ],
            axis=-1,
        )
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, list[Upload]]]:
    msg = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    if not msg.is_multipart():
        raise _Reject(400, "body is not multipart")
    fields: dict[str, list[str]] = {}
    files: dict[str, list[Upload]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise _Reject(400, "a multipart part has no name")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        if filename is not None:
            files.setdefault(name, []).append(Upload(filename, part.get_content_type(), payload))
        else:
            fields.setdefault(name, []).append(payload.decode("utf-8"))
    return fields, files


class FakeImageAPI:
    """Both APIs on one local server. Use as a context manager."""

    def __init__(self, api_key: str = "sk-test-SECRET-0123456789abcdefXYZ") -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.stability_finish_reason = "SUCCESS"
        self._script: deque[Scripted] = deque()
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                api._handle(self)

            def do_GET(self) -> None:
                api._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeImageAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, *answers: Scripted) -> None:
        """Answer the next requests with these, in order, before normal service."""
        with self._lock:
            self._script.extend(answers)

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # ------------------------------------------------------------------ dispatch

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Recorded(h.command, h.path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(rec)
            scripted = self._script.popleft() if self._script else None
        stability = h.path.startswith("/v2beta/")
        if scripted is not None:
            if scripted.delay:
                self._stop.wait(scripted.delay)
            if scripted.status is None:
                h.close_connection = True
                return
            self._send_json(h, scripted.status, scripted.body or {}, scripted.headers)
            return
        try:
            if h.command == "GET" and h.path.startswith("/files/"):
                data = self._files.get(h.path.removeprefix("/files/"))
                if data is None:
                    raise _Reject(404, "no such file")
                self._send(h, 200, data, {"Content-Type": "image/png"})
                return
            if h.command != "POST":
                raise _Reject(405, "method not allowed")
            self._auth(h, stability)
            ctype = h.headers.get("Content-Type", "")
            if h.path == "/v1/images/generations":
                if not ctype.startswith("application/json"):
                    raise _Reject(400, "Content-Type must be application/json")
                rec.json = json.loads(body)
                self._openai_generate(h, rec)
            elif h.path == "/v1/images/edits":
                if not ctype.startswith("multipart/form-data"):
                    raise _Reject(400, "Content-Type must be multipart/form-data")
                rec.fields, rec.files = _multipart(ctype, body)
                self._openai_edit(h, rec)
            elif stability and h.path.removeprefix("/v2beta/stable-image/") in STABILITY_FIELDS:
                if not ctype.startswith("multipart/form-data"):
                    raise _Reject(400, "content-type must be multipart/form-data")
                rec.fields, rec.files = _multipart(ctype, body)
                self._stability(h, rec, h.path.removeprefix("/v2beta/stable-image/"))
            else:
                raise _Reject(404, f"no route {h.path}")
        except _Reject as rej:
            if rej.violation:
                self.violations.append(f"{h.path}: {rej.message}")
            err: dict[str, Any]
            if stability:
                err = {
                    "id": uuid.uuid4().hex,
                    "name": rej.code or "bad_request",
                    "errors": [rej.message],
                }
            else:
                err = {
                    "error": {
                        "message": rej.message,
                        "type": "invalid_request_error",
                        "param": None,
                        "code": rej.code,
                    }
                }
            self._send_json(h, rej.status, err)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _auth(self, h: BaseHTTPRequestHandler, stability: bool) -> None:
        given = h.headers.get("Authorization", "")
        if given != f"Bearer {self.api_key}":
            shown = given.removeprefix("Bearer ")
            if stability:
                raise _Reject(401, "missing or invalid authorization header", "unauthorized", False)
            # as the real service does, echo what was sent (so redaction is tested)
            raise _Reject(401, f"Incorrect API key provided: {shown}.", "invalid_api_key", False)

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]
    ) -> None:
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("x-request-id", f"req_{uuid.uuid4().hex[:12]}")
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        data: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(
            h,
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    # ------------------------------------------------------------------ OpenAI

    @staticmethod
    def _openai_common(p: dict[str, Any], allowed: set[str]) -> tuple[str, str]:
        unknown = set(p) - allowed
        if unknown:
            raise _Reject(400, f"Unknown parameter: '{sorted(unknown)[0]}'.", "unknown_parameter")
        prompt = p.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _Reject(
                400, "Missing required parameter: 'prompt'.", "missing_required_parameter"
            )
        model = str(p.get("model", "dall-e-2"))
        gpt = model.startswith("gpt-image")
        limit = 32000 if gpt else 4000 if model == "dall-e-3" else 1000
        if len(prompt) > limit:
            raise _Reject(400, "prompt too long", "string_above_max_length")
        n = int(p.get("n", 1))
        if not 1 <= n <= 10 or (model == "dall-e-3" and n != 1):
            raise _Reject(400, "invalid n")
        sizes = GPT_SIZES if gpt else DALLE3_SIZES if model == "dall-e-3" else DALLE2_SIZES
        size = str(p.get("size", "auto" if gpt else "1024x1024"))
        if size not in sizes:
            raise _Reject(
                400, f"Invalid value: '{size}'. Supported values are: {sizes}", "invalid_value"
            )
        quality = p.get("quality")
        qualities = (
            ("low", "medium", "high", "auto")
            if gpt
            else ("standard", "hd")
            if model == "dall-e-3"
            else ("standard",)
        )
        if quality is not None and quality not in qualities:
            raise _Reject(400, f"Invalid quality '{quality}'", "invalid_value")
        if gpt and "response_format" in p:
            raise _Reject(400, "Unknown parameter: 'response_format'.", "unknown_parameter")
        if not gpt and ("background" in p or "output_format" in p):
            raise _Reject(400, "background/output_format are gpt-image parameters")
        if p.get("response_format") not in (None, "url", "b64_json"):
            raise _Reject(400, "invalid response_format")
        return model, size

    def _openai_answer(
        self, h: BaseHTTPRequestHandler, model: str, size: str, p: dict[str, Any], png: bytes
    ) -> None:
        if model.startswith("gpt-image"):
            item: dict[str, Any] = {"b64_json": base64.b64encode(png).decode()}
        elif p.get("response_format", "url") == "url":
            name = f"{uuid.uuid4().hex}.png"
            self._files[name] = png
            item = {"url": f"{self.base_url}/files/{name}"}
        else:
            item = {"b64_json": base64.b64encode(png).decode()}
        if model == "dall-e-3":
            item["revised_prompt"] = "A revised " + str(p["prompt"])[:40]
        out: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if model.startswith("gpt-image"):
            out["usage"] = {
                "total_tokens": 4200,
                "input_tokens": 50,
                "output_tokens": 4150,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            }
            out.update(
                {
                    "size": size,
                    "quality": p.get("quality", "auto"),
                    "background": p.get("background", "opaque"),
                    "output_format": p.get("output_format", "png"),
                }
            )
        self._send_json(h, 200, out)

    def _openai_generate(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        p = rec.json
        if not isinstance(p, dict):
            raise _Reject(400, "body must be a JSON object")
        model, size = self._openai_common(p, OPENAI_GEN_FIELDS)
        if "moderation" in p and p["moderation"] not in ("low", "auto"):
            raise _Reject(400, "invalid moderation")
        if "refuse" in str(p["prompt"]):
            raise _Reject(
                400,
                "Your request was rejected by the safety system.",
                "moderation_blocked",
                violation=False,
            )
        w, h_ = (int(v) for v in (size if size != "auto" else "1024x1024").split("x"))
        self._openai_answer(h, model, size, p, _image_png(w, h_, str(p["prompt"])))

    def _openai_edit(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        p: dict[str, Any] = {k: v[0] for k, v in rec.fields.items()}
        if any(len(v) > 1 for v in rec.fields.values()):
            raise _Reject(400, "a field was sent twice")
        model, size = self._openai_common(p, OPENAI_EDIT_FIELDS)
        images = rec.files.get("image[]", []) + rec.files.get("image", [])
        if not images:
            raise _Reject(400, "Missing required parameter: 'image'.")
        if set(rec.files) - {"image", "image[]", "mask"}:
            raise _Reject(400, f"unexpected file fields {sorted(rec.files)}")
        gpt = model.startswith("gpt-image")
        if not gpt and ("image[]" in rec.files or len(images) != 1):
            raise _Reject(400, "dall-e-2 takes exactly one 'image'")
        if len(images) > 16:
            raise _Reject(400, "at most 16 images")
        first = images[0].image()
        if not gpt and (first.width != first.height or images[0].data[:8] != b"\x89PNG\r\n\x1a\n"):
            raise _Reject(400, "dall-e-2 needs a square PNG")
        for mask in rec.files.get("mask", []):
            if mask.data[:8] != b"\x89PNG\r\n\x1a\n":
                raise _Reject(400, "mask must be a PNG")
            m = mask.image()
            if m.size != first.size:
                raise _Reject(400, "mask and image must have the same dimensions")
            if m.mode not in ("RGBA", "LA", "PA"):
                raise _Reject(400, "mask must have an alpha channel")
        w, h_ = (
            int(v) for v in (size if size != "auto" else f"{first.width}x{first.height}").split("x")
        )
        self._openai_answer(h, model, size, p, _image_png(w, h_, str(p["prompt"]), base=first))

    # ------------------------------------------------------------------ Stability

    def _stability(self, h: BaseHTTPRequestHandler, rec: Recorded, route: str) -> None:
        accept = h.headers.get("Accept", "")
        if accept not in ("image/*", "application/json"):
            raise _Reject(400, "accept must be image/* or application/json")
        if any(len(v) > 1 for v in rec.fields.values()):
            raise _Reject(400, "a field was sent twice")
        p = {k: v[0] for k, v in rec.fields.items()}
        unknown = set(p) - STABILITY_FIELDS[route]
        if unknown:
            raise _Reject(400, f"unknown field(s) {sorted(unknown)}")
        prompt = p.get("prompt", "")
        if route != "edit/outpaint" and not prompt:
            raise _Reject(400, "prompt: cannot be empty")
        if len(prompt) > 10000 or len(p.get("negative_prompt", "")) > 10000:
            raise _Reject(400, "prompt too long")
        seed = int(p.get("seed", "0"))
        if not 0 <= seed <= 4294967294:
            raise _Reject(400, "seed must be in 0..4294967294")
        fmt = p.get("output_format", "png")
        formats = ("png", "jpeg") if route == "generate/sd3" else ("png", "jpeg", "webp")
        if fmt not in formats:
            raise _Reject(400, "invalid output_format")
        if route == "generate/sd3" and p.get("model", "sd3.5-large") not in (
            "sd3.5-large",
            "sd3.5-large-turbo",
            "sd3.5-medium",
        ):
            raise _Reject(400, "invalid model")
        if "forbidden" in prompt:
            raise _Reject(
                403,
                "Your request was flagged by our content moderation system.",
                "content_moderation",
                violation=False,
            )
        if route.startswith("generate/"):
            if set(rec.files):
                raise _Reject(400, "text-to-image takes no files")
            w, h_ = ASPECTS.get(p.get("aspect_ratio", "1:1"), (0, 0))
            if not w:
                raise _Reject(400, "invalid aspect_ratio")
            png = _image_png(w, h_, prompt)
        else:
            images = rec.files.get("image", [])
            if len(images) != 1:
                raise _Reject(400, "image: required")
            img = images[0].image()
            if not 4096 <= img.width * img.height <= 9_437_184:
                raise _Reject(400, "image pixel count out of range")
            if not 1 / 2.5 <= img.width / img.height <= 2.5:
                raise _Reject(400, "image aspect ratio out of range")
            if route == "edit/inpaint":
                masks = rec.files.get("mask", [])
                if len(masks) > 1:
                    raise _Reject(400, "one mask at most")
                if masks and masks[0].image().size != img.size:
                    raise _Reject(400, "mask must match the image dimensions")
                png = _image_png(img.width, img.height, prompt, base=img)
            else:
                sides = {k: int(p.get(k, "0")) for k in ("left", "right", "up", "down")}
                if not any(sides.values()) or not all(0 <= v <= 2000 for v in sides.values()):
                    raise _Reject(400, "give left/right/up/down in 0..2000, at least one > 0")
                w = img.width + sides["left"] + sides["right"]
                h_ = img.height + sides["up"] + sides["down"]
                png = _image_png(w, h_, prompt)
        finish = self.stability_finish_reason
        out_seed = str(seed or 12345)
        if accept == "application/json":
            self._send_json(
                h,
                200,
                {
                    "image": base64.b64encode(png).decode(),
                    "finish_reason": finish,
                    "seed": int(out_seed),
                },
            )
        else:
            self._send(
                h,
                200,
                png,
                {"Content-Type": "image/png", "finish-reason": finish, "seed": out_seed},
            )
