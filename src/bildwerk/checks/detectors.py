"""Cached, offline wrappers around the models the ``qa`` extra ships with its packages:
NudeNet's 320n body/face detector and RapidOCR's PP-OCR text detector and recogniser.

Both run on onnxruntime with one intra-op thread: QA workers are processes, so threads
inside a worker only fight each other for cores. Nothing here touches the network: every
model file is passed by path, which keeps RapidOCR off its download-on-first-use path, and
the recogniser's character table is embedded in its ONNX file (no dictionary download).
Models load lazily, once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.errors import MissingExtraError, UserError

Pixels = NDArray[np.uint8]
BoxT = tuple[int, int, int, int]

ORT_THREADS = 1
NUDENET_LABELS: tuple[str, ...] = (  # output order of the 320n model's class scores
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
NUDENET_SIZE = 320  # the model's training resolution (longer side)
NUDENET_MIN_SCORE = 0.2  # candidates kept before NMS; checks apply their own thresholds
NUDENET_NMS_IOU = 0.45
_STRIDE = 32
_CACHE_SIZE = 8

OCR_MODEL = "PP-OCRv6 small"
OCR_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
_PACKAGES = {"onnxruntime": "onnxruntime", "cv2": "opencv-python-headless"}


@dataclass(frozen=True)
class Detection:
    """One NudeNet detection; ``box`` is [x0, y0, x1, y1] in the pixels of the image given."""

    label: str
    score: float
    box: BoxT

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "box": list(self.box)}


@dataclass(frozen=True)
class TextRead:
    """What the recogniser read on one line crop, with its mean character confidence."""

    text: str
    score: float


@dataclass(frozen=True)
class TextFound:
    """A text region from the detector: axis-aligned box and the detector's box score."""

    box: BoxT
    score: float


def _module(name: str, purpose: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingExtraError(_PACKAGES.get(name, name), "qa", purpose) from exc


def opencv() -> Any:
    """The ``cv2`` module, or a clear message naming the extra that installs it."""
    return _module("cv2", "QA image checks")


def _package_dir(name: str, purpose: str) -> Path:
    return Path(_module(name, purpose).__file__).parent


def _session_options() -> Any:
    ort = _module("onnxruntime", "QA model checks")
    options = ort.SessionOptions()
    options.intra_op_num_threads = ORT_THREADS
    options.inter_op_num_threads = ORT_THREADS
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


# --- NudeNet ------------------------------------------------------------------------------


@functools.cache
def nudenet_session() -> Any:
    """The bundled 320n detector as an onnxruntime session (loaded once per process)."""
    path = _package_dir("nudenet", "The NSFW and people checks") / "320n.onnx"
    if not path.is_file():
        raise UserError(
            f"NudeNet's bundled model is missing: {path}",
            hint="reinstall it with: pip install --force-reinstall 'bildwerk[qa]'",
        )
    ort = _module("onnxruntime", "The NSFW and people checks")
    return ort.InferenceSession(
        str(path), sess_options=_session_options(), providers=["CPUExecutionProvider"]
    )


def _letterbox(image: Image.Image) -> tuple[Pixels, float]:
    """Scale the longer side to 320 and pad right/bottom with black to a multiple of 32.

    NudeNet pads to a square first; padding only to the stride gives the model the same
    object scale with fewer pixels to process (YOLO heads accept any multiple of 32).
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = NUDENET_SIZE / max(rgb.size)
    w, h = max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))
    small = rgb.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = np.zeros((-(-h // _STRIDE) * _STRIDE, -(-w // _STRIDE) * _STRIDE, 3), np.uint8)
    canvas[:h, :w] = np.asarray(small)
    return canvas, scale


def _decode(raw: NDArray[np.float32], scale: float, size: tuple[int, int]) -> list[Detection]:
    """YOLO-style rows (cx, cy, w, h, class scores...) → boxes in image pixels, after
    class-agnostic NMS (an exposed and a covered guess for one region keep the stronger)."""
    cv2 = opencv()
    rows = raw[0].T
    classes = rows[:, 4:]
    ids = classes.argmax(axis=1)
    scores = classes[np.arange(len(rows)), ids]
    keep = scores >= NUDENET_MIN_SCORE
    rows, ids, scores = rows[keep], ids[keep], scores[keep]
    if not len(rows):
        return []
    width, height = size
    cx, cy, bw, bh = (rows[:, i] / scale for i in range(4))
    x0 = np.clip(cx - bw / 2, 0, width)
    y0 = np.clip(cy - bh / 2, 0, height)
    x1 = np.clip(cx + bw / 2, 0, width)
    y1 = np.clip(cy + bh / 2, 0, height)
    xywh = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    picked = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), NUDENET_MIN_SCORE, NUDENET_NMS_IOU)
    found = [
        Detection(
            NUDENET_LABELS[int(ids[i])],
            float(scores[i]),
            (round(x0[i]), round(y0[i]), round(x1[i]), round(y1[i])),
        )
        for i in np.asarray(picked, dtype=np.int64).reshape(-1)
    ]
    return sorted(found, key=lambda d: -d.score)


T = TypeVar("T")


class _Recent(Generic[T]):
    """A few recent results keyed by a content hash of the model input."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._items: OrderedDict[bytes, T] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def key(pixels: Pixels, extra: str = "") -> bytes:
        digest = hashlib.blake2b(pixels.tobytes(), digest_size=16)
        digest.update(f"{pixels.shape}{extra}".encode())
        return digest.digest()

    def get(self, key: bytes) -> T | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: bytes, value: T) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_detections: _Recent[tuple[Detection, ...]] = _Recent()
_text_regions: _Recent[list[TextFound]] = _Recent()
_last: tuple[weakref.ref[Image.Image], tuple[Detection, ...]] | None = None


def detect_body(image: Image.Image) -> tuple[Detection, ...]:
    """NudeNet detections (score ≥ 0.2) for ``image``, best first.

    Results are cached so the NSFW and the people check share one model run: the same
    image object hits at once (QA never draws on the creative it checks); an equal image
    hits by the hash of the model input.
    """
    global _last
    last = _last
    if last is not None and last[0]() is image:
        return last[1]
    found = _detect_cached(image)
    _last = (weakref.ref(image), found)
    return found


def _detect_cached(image: Image.Image) -> tuple[Detection, ...]:
    canvas, scale = _letterbox(image)
    key = _Recent.key(canvas, f"{image.width}x{image.height}")
    hit = _detections.get(key)
    if hit is not None:
        return hit
    session = nudenet_session()
    blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    raw = session.run(None, {session.get_inputs()[0].name: blob})[0]
    found = tuple(_decode(raw, scale, image.size))
    _detections.put(key, found)
    return found


def clear_caches() -> None:
    """Forget cached model results (benchmarks and tests that must see a model run)."""
    global _last
    _last = None
    _detections.clear()
    _text_regions.clear()


# --- check params -------------------------------------------------------------------------


def float_param(params: Mapping[str, Any], check: str, key: str, default: float) -> float:
    """A number in 0..1 from a check's ``params``; a wrong value is the user's to fix."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise UserError(
            f"qa params for '{check}': {key} must be a number from 0 to 1, not {value!r}",
            hint=f"set qa.checks.{check}.params.{key} in the brand kit",
        )
    return float(value)


def bool_param(params: Mapping[str, Any], check: str, key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise UserError(
            f"qa params for '{check}': {key} must be true or false, not {value!r}",
            hint=f"set qa.checks.{check}.params.{key} in the brand kit",
        )
    return value


def labels_param(
    params: Mapping[str, Any], check: str, key: str, default: Sequence[str]
) -> frozenset[str]:
    """A list of NudeNet labels from ``params``; unknown labels are rejected, since a typo
    would silently switch a policy off."""
    value = params.get(key, default)
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value]
    unknown = [v for v in value if v not in NUDENET_LABELS]
    if unknown:
        raise UserError(
            f"qa params for '{check}': {key} has unknown labels {unknown}",
            hint="use labels from: " + ", ".join(NUDENET_LABELS),
        )
    return frozenset(str(v) for v in value)


# --- RapidOCR -----------------------------------------------------------------------------


def build_ocr_engine() -> Any:
    """A new RapidOCR engine on the bundled models, fully offline, one thread, no
    orientation classifier (creative text is upright). Prefer :func:`ocr_engine`."""
    purpose = "The legibility check"
    models = _package_dir("rapidocr", purpose) / "models"
    missing = [name for name in OCR_FILES.values() if not (models / name).is_file()]
    if missing:
        raise UserError(
            f"RapidOCR's bundled models are missing in {models}: {', '.join(missing)}",
            hint="bildwerk never downloads models; reinstall: pip install 'bildwerk[qa]'",
        )
    _module("onnxruntime", purpose)
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": False,
        "Global.model_root_dir": str(models),
        "Det.limit_type": "max",  # callers downscale; never upscale a scene to 736 px
        "Det.limit_side_len": 2000,
        "Rec.rec_img_shape": [3, 48, 48],  # pad lines to 48 px, not 320: cost ∝ width
        "EngineConfig.onnxruntime.intra_op_num_threads": ORT_THREADS,
        "EngineConfig.onnxruntime.inter_op_num_threads": ORT_THREADS,
    }
    params.update({f"{task}.model_path": str(models / name) for task, name in OCR_FILES.items()})
    return _module("rapidocr", purpose).RapidOCR(params=params)


@functools.cache
def ocr_engine() -> Any:
    """The process-wide RapidOCR engine (models load on first use)."""
    return build_ocr_engine()


def _bgr(rgb: Pixels) -> Pixels:
    return np.ascontiguousarray(rgb[:, :, ::-1])


def recognize(crops: Sequence[Pixels]) -> list[TextRead]:
    """Recognition only (no detection) on RGB crops that each hold one line of text:
    about 10× cheaper than full OCR when the caller knows where the text is."""
    engine = ocr_engine()
    reads = []
    for crop in crops:
        if crop.size == 0:
            reads.append(TextRead("", 0.0))
            continue
        out = engine(_bgr(crop), use_det=False, use_cls=False, use_rec=True)
        texts, scores = getattr(out, "txts", None), getattr(out, "scores", None)
        if not texts:
            reads.append(TextRead("", 0.0))
        else:
            reads.append(TextRead(str(texts[0]), float(scores[0]) if scores else 0.0))
    return reads


def find_text(rgb: Pixels) -> list[TextFound]:
    """Text regions in an RGB image (detection only), boxes in that image's pixels.

    Callers downscale first: cost grows with the pixel count. Results are cached by
    content, since one scene is checked once per locale.
    """
    key = _Recent.key(rgb)
    hit = _text_regions.get(key)
    if hit is not None:
        return list(hit)
    out = ocr_engine()(_bgr(rgb), use_det=True, use_cls=False, use_rec=False)
    boxes, scores = getattr(out, "boxes", None), getattr(out, "scores", None)
    found: list[TextFound] = []
    if boxes is None or scores is None:
        _text_regions.put(key, found)
        return []
    for quad, score in zip(np.asarray(boxes, dtype=np.float64), scores, strict=True):
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        box = (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        found.append(TextFound(box, float(score)))
    _text_regions.put(key, found)
    return list(found)


@functools.cache
def ocr_charset() -> frozenset[str] | None:
    """Characters the bundled recogniser can output (None if the engine hides them), so a
    check can skip scripts the model cannot read instead of reporting a false failure."""
    engine = ocr_engine()
    recognize([np.full((48, 96, 3), 255, np.uint8)])  # loads the recogniser
    decoder = getattr(getattr(engine, "text_rec", None), "postprocess_op", None)
    chars = getattr(decoder, "character", None)
    if not chars:
        return None
    return frozenset(str(c) for c in chars if len(str(c)) == 1)
