"""QA gate acceptance: a deliberately broken brief fails where it should, with reasons
a person can act on, while the clean demo creatives pass (tests/test_run.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bildwerk import Workspace

pytestmark = pytest.mark.slow

PALE_BRAND = """\
name: Pale
palette: {primary: "#efe9e1", secondary: "#f7f4ef", accent: "#e9e4dc", text: "#ffffff",
          background: "#f6f3ee"}
logo: {file: logo.png}
overlay: {text_colour: palette, scrim: false}   # the brand insists on white copy
"""

BROKEN = """\
campaign: broken
brand: {brand}
locales:
  en-US:
    headline: "{headline}"
    subline: Everything must go
    cta: Shop now
channels: [display_mrec, instagram_feed]
style:
  params: {params}
prompt:
  template: "packshot of the {{product}} on a pastel podium"
  slots:
    product: [{product}]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
seeds: {seeds}
"""


def run(ws: Path, name: str, **fields: Any) -> dict[str, Any]:
    product = sorted(p.stem for p in (ws / "assets" / "products").glob("*.png"))[0]
    values = {
        "brand": "../brand/brand.yaml",
        "headline": "Fresh drop",
        "params": "{}",
        "seeds": "[7]",
        "product": product,
        **fields,
    }
    brief = ws / "campaigns" / f"{name}.yaml"
    brief.write_text(BROKEN.format(**values), encoding="utf-8")
    result = Workspace(ws).run(brief, workers=1)
    return json.loads(result.manifest.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def check(variant: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in variant["qa"]["checks"] if c["name"] == name)


def test_white_text_on_pale_background_fails_contrast(workspace_dir: Path) -> None:
    (workspace_dir / "brand" / "pale.yaml").write_text(PALE_BRAND, encoding="utf-8")
    manifest = run(workspace_dir, "pale", brand="../brand/pale.yaml")
    for v in manifest["variants"]:
        contrast = check(v, "contrast")
        assert contrast["verdict"] == "fail", contrast
        assert "WCAG AA" in contrast["reason"] and ":1" in contrast["reason"]
        assert v["decision"]["state"] == "rejected"
        assert any(r.startswith("contrast") for r in v["decision"]["reasons"])
        assert v["qa_image"]  # evidence drawn for the reviewer
        assert (workspace_dir / "runs" / manifest["run_id"] / v["qa_image"]).is_file()


def test_off_palette_backdrop_long_headline_and_duplicated_seed(workspace_dir: Path) -> None:
    manifest = run(
        workspace_dir,
        "broken",
        headline="Absolutely everything must go this weekend",  # 42 characters
        params='{backdrop_colour: "#3cc43c"}',
        seeds="[7, 7]",
    )
    variants = manifest["variants"]
    assert len(variants) == 4  # the repeated seed is kept as its own variant ...
    for v in variants:
        colour = check(v, "brand_colour")
        assert colour["verdict"] == "fail" and "off-palette" in colour["reason"]
    mrec = [v for v in variants if v["channel"] == "display_mrec"]
    assert all(check(v, "text_fit")["verdict"] == "warn" for v in mrec)
    assert all("too long" in (check(v, "text_fit")["reason"] or "") for v in mrec)
    dups = [check(v, "duplicate") for v in variants]
    assert sum(d["verdict"] == "fail" for d in dups) == 2  # ... and caught: one per channel
    assert all("near-duplicate" in d["reason"] for d in dups if d["verdict"] == "fail")
