"""The QA checks reach measured floors on the generated evaluation set.

Runs ``benchmarks/qa_eval.py``'s reduced set (``run(quick=True)``: 20-25 s on a loaded
2-core machine) and holds each check's precision/recall at its defaults a little under
what that set measures (quoted per assertion), so a regression in a check, or in the
pixels compose and the studio backend produce, shows up here. Known blind spots are
documented in docs/qa.md and kept out of the floors rather than hidden by them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

for _module in ("cv2", "onnxruntime", "rapidocr", "imagehash"):
    pytest.importorskip(_module)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FONTS = Path("/usr/share/fonts/truetype/noto")


def _load(name: str) -> ModuleType:
    """A benchmark script as a module, so the test measures exactly what the script does."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while executing
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    if not (FONTS / "NotoSans-Regular.ttf").is_file():
        pytest.skip("Noto Sans is not installed: apt-get install fonts-noto-core")
    out: dict[str, Any] = _load("qa_eval").run(quick=True)
    return out


def flagged(section: dict[str, Any]) -> dict[str, Any]:
    """Scores when a warning counts as a catch (warnings go to a reviewer)."""
    out: dict[str, Any] = section["flagged"]
    return out


def test_report_is_json_and_complete(results: dict[str, Any]) -> None:
    assert json.loads(json.dumps(results)) == results
    assert set(results) == {
        "contrast",
        "brand_colour",
        "technical",
        "legibility",
        "logo",
        "safe_area",
        "duplicate",
        "meta",
    }
    assert results["meta"]["quick"] is True


def test_contrast(results: dict[str, Any]) -> None:
    c = results["contrast"]
    assert c["cases"] >= 250 and c["positives"] >= 100
    assert c["precision"] >= 0.9  # measured 0.938: 10 px regular text reads too low
    assert c["recall"] >= 0.95  # measured 1.000
    assert c["median_ratio_error"] < 0.05  # measured 0.030 (10th percentile vs the minimum)
    for size in ("18px", "20px", "32px", "60px"):
        assert c["groups"][f"size:{size}"]["fp"] == 0


def test_brand_colour(results: dict[str, Any]) -> None:
    b = results["brand_colour"]
    assert b["precision"] >= 0.9  # measured 0.923: one dark-mood render fails
    assert b["recall"] >= 0.95  # measured 1.000: every off-palette backdrop fails
    assert b["groups"]["neutral grey backdrop"]["failed"] == 0
    assert b["groups"]["backdrop in a brand colour/tint"]["failed"] == 0


def test_blur_noise_and_banding(results: dict[str, Any]) -> None:
    t = results["technical"]
    sharp, noise, bands = t["sharpness"], t["noise"], t["banding"]
    assert flagged(sharp)["precision"] >= 0.95  # measured 1.000
    assert flagged(sharp)["recall"] >= 0.9  # measured 0.917 (σ = 2 px warns on 3 of 4)
    assert sharp["groups"]["blur σ=4"]["failed"] == 1.0  # σ = 2-3 px only warn: by design
    assert flagged(noise)["precision"] >= 0.95 and flagged(noise)["recall"] >= 0.95  # 1, 1
    assert noise["groups"]["noise σ=10"]["failed"] == 1.0
    assert flagged(bands)["precision"] >= 0.95 and flagged(bands)["recall"] >= 0.95  # 1, 1
    for group, scores in bands["groups"].items():
        if group.startswith("dithered"):
            assert scores["flagged"] == 0, group
    assert t["clean"]["clean creative, overall verdict"]["flagged"] == 0


def test_legibility(results: dict[str, Any]) -> None:
    g = results["legibility"]
    assert g["precision"] >= 0.95  # measured 1.000
    assert g["recall"] >= 0.75  # measured 0.800: 2-3:1 text and 10-11 px text still read
    for case in ("other word", "truncated", "word missing"):
        assert g["groups"][f"mismatch: {case}"]["failed"] == 1.0
    assert g["groups"]["contrast:1.2"]["failed"] == 1.0
    assert g["groups"]["contrast:2"]["failed"] == 1.0


def test_logo(results: dict[str, Any]) -> None:
    g = results["logo"]
    assert g["precision"] >= 0.95  # measured 1.000
    assert g["recall"] >= 0.85  # measured 0.875: a half-covered logo still matches
    for case in ("missing", "squashed to 80 %", "squashed to 93 %", "recoloured"):
        assert g["groups"][case]["failed"] == 1.0, case
    assert g["groups"]["outside its zone"]["failed"] == 1.0
    assert g["groups"]["as composed"]["flagged"] == 0


def test_safe_area(results: dict[str, Any]) -> None:
    g = results["safe_area"]
    assert g["precision"] == 1.0  # measured 1.000 (geometry, no tolerance)
    assert g["recall"] >= 0.75  # measured 0.800: the runner does not pass CTA plates
    for case, scores in g["groups"].items():
        if "as the runner passes it" not in case and scores["positives"] == scores["cases"]:
            assert scores["failed"] == 1.0, case


def test_duplicates(results: dict[str, Any]) -> None:
    d = results["duplicate"]
    assert d["recall"] >= 0.93  # measured 0.958 on 4 families (0.968 on 12)
    assert d["precision"] >= 0.99  # measured 0.996
    assert d["groups"]["copy: jpeg70"]["failed"] == 1.0
