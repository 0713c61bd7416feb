"""Prompt alignment: CLIPScore between the scene and the prompt that asked for it.

CLIPScore (Hessel et al. 2021) is ``2.5 · max(cos(E_image, E_text), 0)`` with CLIP's
projected embeddings. The scene (before the brand overlay) is scored when the context has
it, because CLIP reads text in images and the headline would otherwise "align" the image
with whatever words it contains.

The model is a local directory saved with ``CLIPModel.save_pretrained`` plus its processor
(``params.model_path``); it is loaded with ``local_files_only=True`` once per path and
process. No path: skipped, there is no model registered. torch/transformers missing, or a
path that does not load: ``unchecked`` with the reason, so the creative goes to a person.

Params (``qa.checks.clip_score.params``):

- ``model_path``: the model directory (required to run).
- ``min_score`` (0.5): fail below. With CLIP ViT-B/32, matching image-caption pairs
  score about 0.7-0.8 on this 2.5 scale (cos ≈ 0.28-0.32) and unrelated pairs about
  0.35-0.5 (cos ≈ 0.15-0.2); 0.5 sits at the top of the unrelated band. Other CLIP
  variants have other ranges: calibrate per model.
- ``warn_score`` (0.6): warn below.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult
from bildwerk.errors import UserError

MIN_SCORE = 0.5
WARN_SCORE = 0.6
SCALE = 2.5  # Hessel et al.'s w
INSTALL_HINT = "pip install 'bildwerk[diffusion]'"

_LOCK = threading.Lock()
_MODELS: dict[str, tuple[Any, Any]] = {}
_COSINES: OrderedDict[tuple[str, str, str], float] = OrderedDict()
_CACHE_SIZE = 512


def import_clip() -> tuple[Any, Any, Any]:
    """torch, CLIPModel, CLIPProcessor; raises ImportError with the cause in its message.

    transformers imports torchvision whenever it is installed, and a torchvision wheel
    built for another torch variant fails in that import; that is reported (with the
    fix) rather than patched over. Any failure of a broken install becomes ImportError:
    the check skips with the reason instead of crashing QA.
    """
    try:
        import torch

        from bildwerk.backends.diffusion.libs import check_torchvision

        check_torchvision()
        from transformers import CLIPModel, CLIPProcessor
    except Exception as exc:  # ImportError, or a broken install: not a bug here
        if isinstance(exc, ImportError):
            raise
        detail = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        raise ImportError(detail) from exc
    return torch, CLIPModel, CLIPProcessor


def load_clip(path: str | Path) -> tuple[Any, Any]:
    """(model, processor) from a local directory, cached per resolved path."""
    key = str(Path(path).expanduser().resolve())
    with _LOCK:
        if key not in _MODELS:
            _, model_cls, processor_cls = import_clip()
            model = model_cls.from_pretrained(key, local_files_only=True).eval()
            processor = processor_cls.from_pretrained(key, local_files_only=True)
            _MODELS[key] = (model, processor)
        return _MODELS[key]


def _embedding(output: Any) -> Any:
    """transformers 5 returns a ModelOutput whose pooler_output is the projection;
    older versions return the tensor itself."""
    return getattr(output, "pooler_output", output)


def clip_cosine(model: Any, processor: Any, image: Image.Image, text: str) -> float:
    """Cosine between CLIP's projected image and text embeddings."""
    torch, _, _ = import_clip()
    max_len = int(model.config.text_config.max_position_embeddings)
    inputs = processor(
        text=[text],
        images=image.convert("RGB"),
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=max_len,
    )
    with torch.inference_mode():
        img = _embedding(model.get_image_features(pixel_values=inputs["pixel_values"]))
        txt = _embedding(
            model.get_text_features(
                input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")
            )
        )
        cos = torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1)
    return float(cos[0])


def cached_cosine(path: str, model: Any, processor: Any, image: Image.Image, text: str) -> float:
    """:func:`clip_cosine`, remembered per (model, image pixels, text).

    One scene becomes a creative per channel and locale, all scored against the same
    prompt; the image encoder is most of the cost, so it runs once per scene.
    """
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    key = (path, digest.hexdigest(), text)
    with _LOCK:
        if key in _COSINES:
            _COSINES.move_to_end(key)
            return _COSINES[key]
    cosine = clip_cosine(model, processor, image, text)
    with _LOCK:
        _COSINES[key] = cosine
        while len(_COSINES) > _CACHE_SIZE:
            _COSINES.popitem(last=False)
    return cosine


def clip_score(cosine: float) -> float:
    """CLIPScore from a cosine: 2.5 · max(cos, 0)."""
    return SCALE * max(cosine, 0.0)


class ClipScoreCheck:
    """Fails when the scene does not show what the prompt asked for (by CLIP)."""

    name = "clip_score"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        path = context.params.get("model_path")
        if not path:
            return CheckResult(self.name, "skip", reason="no CLIP model registered")
        if not context.prompt.strip():
            return CheckResult(self.name, "skip", reason="no prompt to compare with")
        try:
            model, processor = load_clip(str(path))
        except ImportError as exc:
            reason = f"CLIP score needs torch and transformers ({exc}): {INSTALL_HINT}"
            return CheckResult(self.name, "unchecked", reason=reason)
        except OSError as exc:  # no such directory, or not a saved CLIP model
            reason = f"CLIP model at {path} could not be loaded: {exc}"
            return CheckResult(self.name, "unchecked", reason=reason)
        target = context.scene if context.scene is not None else image
        cosine = cached_cosine(str(path), model, processor, target, context.prompt)
        score = clip_score(cosine)
        min_score = float(context.params.get("min_score", MIN_SCORE))
        warn_score = float(context.params.get("warn_score", WARN_SCORE))
        evidence = {
            "clip_score": round(score, 4),
            "cosine": round(cosine, 4),
            "measured_on": "scene" if context.scene is not None else "creative",
            "model": str(path),
            "min_score": min_score,
            "warn_score": warn_score,
        }
        result = round(score / SCALE, 4)
        if score < min_score:
            reason = f"CLIPScore {score:.2f} < {min_score}: the image may not match the prompt"
            return CheckResult(self.name, "fail", result, reason, evidence)
        if score < warn_score:
            reason = f"CLIPScore {score:.2f} < {warn_score}: weak match with the prompt"
            return CheckResult(self.name, "warn", result, reason, evidence)
        return CheckResult(self.name, "pass", result, None, evidence)
