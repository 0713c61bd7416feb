"""People check: faces from the NudeNet detector against the brief's people policy.

A brief may forbid people (``context.people == "forbidden"``); a brand may require a model
release for any recognisable person (param ``require_release``, default false, checked
against ``context.model_release``). Params: ``face_labels`` (default :data:`FACE_LABELS`),
``face_threshold`` (0.4), ``require_release`` (false).

The detector run is shared with the NSFW check (see :func:`detect_body`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult
from bildwerk.checks.detectors import (
    Detection,
    bool_param,
    detect_body,
    float_param,
    labels_param,
)

FACE_LABELS: tuple[str, ...] = ("FACE_FEMALE", "FACE_MALE")
FACE_THRESHOLD = 0.4
REQUIRE_RELEASE = False


class PeopleCheck:
    """Fails faces where the brief forbids people or a required model release is missing."""

    name = "people"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        return self.decide(detect_body(image), context)

    def decide(self, detections: Sequence[Detection], context: CheckContext) -> CheckResult:
        """The verdict for detections on the creative (public so the policy can be tested
        without a photo of a person)."""
        params = context.params
        labels = labels_param(params, self.name, "face_labels", FACE_LABELS)
        threshold = float_param(params, self.name, "face_threshold", FACE_THRESHOLD)
        require_release = bool_param(params, self.name, "require_release", REQUIRE_RELEASE)
        candidates = [d for d in detections if d.label in labels]
        faces = [d for d in candidates if d.score >= threshold]
        evidence: dict[str, Any] = {
            "image": "creative",
            "faces": [d.to_json() for d in faces],
            "people": context.people,
            "model_release": context.model_release,
            "require_release": require_release,
            "face_threshold": threshold,
        }
        top = max((d.score for d in candidates), default=0.0)
        count = f"{len(faces)} face{'s' if len(faces) != 1 else ''} ({top:.2f})"
        if faces and context.people == "forbidden":
            reason = f"{count} detected but this brief forbids people"
            return CheckResult(self.name, "fail", round(1.0 - top, 4), reason, evidence)
        if faces and require_release and not context.model_release:
            reason = f"{count} detected but no model release is on file"
            return CheckResult(self.name, "fail", round(1.0 - top, 4), reason, evidence)
        # With people forbidden, a face just under the threshold still lowers the score.
        score = round(1.0 - top, 4) if context.people == "forbidden" else 1.0
        return CheckResult(self.name, "pass", score, None, evidence)
