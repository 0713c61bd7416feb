"""NSFW check: NudeNet on the finished creative.

Exposed intimate body parts fail; covered or suggestive ones warn. Which labels count is
channel policy, so both lists and both thresholds are ``params``:

``fail_labels`` (default :data:`FAIL_LABELS`), ``fail_threshold`` (0.45),
``warn_labels`` (default :data:`WARN_LABELS`), ``warn_threshold`` (0.5).

Score = 1 − the highest confidence of any fail-label detection (1.0 when none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult, Verdict
from bildwerk.checks.detectors import Detection, detect_body, float_param, labels_param

FAIL_LABELS: tuple[str, ...] = (
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_EXPOSED",
    "BUTTOCKS_EXPOSED",
)
WARN_LABELS: tuple[str, ...] = (
    "FEMALE_BREAST_COVERED",
    "FEMALE_GENITALIA_COVERED",
    "BUTTOCKS_COVERED",
    "ANUS_COVERED",
    "MALE_BREAST_EXPOSED",
)
FAIL_THRESHOLD = 0.45
WARN_THRESHOLD = 0.5


class NSFWCheck:
    """Fails creatives that show exposed intimate body parts; warns on suggestive ones."""

    name = "nsfw"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        return self.decide(detect_body(image), context)

    def decide(self, detections: Sequence[Detection], context: CheckContext) -> CheckResult:
        """The verdict for detections on the creative (public so policy can be tested
        and reused without running the model)."""
        params = context.params
        fail_labels = labels_param(params, self.name, "fail_labels", FAIL_LABELS)
        warn_labels = labels_param(params, self.name, "warn_labels", WARN_LABELS)
        fail_at = float_param(params, self.name, "fail_threshold", FAIL_THRESHOLD)
        warn_at = float_param(params, self.name, "warn_threshold", WARN_THRESHOLD)

        def flag(d: Detection) -> str | None:
            if d.label in fail_labels and d.score >= fail_at:
                return "fail"
            if d.label in warn_labels and d.score >= warn_at:
                return "warn"
            return None

        exposed = max((d.score for d in detections if d.label in fail_labels), default=0.0)
        listed: list[dict[str, Any]] = [{**d.to_json(), "flag": flag(d)} for d in detections]
        evidence: dict[str, Any] = {
            "image": "creative",
            "detections": listed,
            "fail_threshold": fail_at,
            "warn_threshold": warn_at,
        }
        score = round(1.0 - exposed, 4)
        levels: tuple[tuple[Verdict, str], ...] = (("fail", "exposed"), ("warn", "suggestive"))
        for verdict, what in levels:
            hits = [d for d in detections if flag(d) == verdict]
            if hits:
                worst = max(hits, key=lambda d: d.score)
                more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
                reason = f"{what} content: {worst.label} ({worst.score:.2f}){more}"
                return CheckResult(self.name, verdict, score, reason, evidence)
        return CheckResult(self.name, "pass", score, None, evidence)
