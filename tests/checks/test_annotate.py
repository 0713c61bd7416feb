"""Annotated QA images draw the evidence of warnings and failures, not of passes."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bildwerk.checks.annotate import annotate
from bildwerk.checks.base import CheckResult


def test_boxes_of_failures_are_drawn_and_passes_are_not() -> None:
    image = Image.new("RGB", (1000, 800), "white")
    results = [
        CheckResult("contrast", "fail", 0.2, "low", {"blocks": [{"box": [100, 100, 400, 200]}]}),
        CheckResult("logo", "pass", 1.0, None, {"box": [600, 600, 900, 700]}),
    ]
    out = np.asarray(annotate(image, results, max_width=500))
    assert out.shape == (400, 500, 3)
    red = (out[..., 0] > 150) & (out[..., 1] < 90) & (out[..., 2] < 90)
    assert red[50:100, 50:200].any()  # the failing box, scaled by 0.5
    assert not red[300:350, 300:450].any()  # the passing one is not drawn
