"""Metadata bytes and stamping time per delivery profile, against full stamping.

``bench_stamp.py --profiles`` runs this. One realistic master (``bench_render.make_master``)
is rendered for ``web_hero`` at its smallest and largest width in every format; each
rendition is then stamped as publishing does (``bildwerk.publish.stamp.stamp``) under the
built-in profiles and under the baseline ``FULL``: what publishing did before delivery
profiles (the generation record in XMP, an embedded manifest carrying the master's
manifest as ingredient). All in the same run, one thread.

* metadata bytes: the stamped file's size minus its coded image data (``payload_size``),
  so it counts XMP, IPTC IIM, the C2PA manifest, the ICC profile where the profile keeps
  one, and the container's own structure (what the issue's 14.4 kB counted, plus the
  ~0.3 kB of boxes or segments every file has). Each profile's renditions are rendered
  with its own ``icc`` setting at the fixed qualities, so pixels are the same for all;
* sidecar bytes: the ``.c2pa`` file published next to it (``c2pa: remote``), a separate
  request that only verifiers make;
* stamp ms: median over repeats of the whole stamp (XMP rewrite and signing).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from bench_render import make_master
from bildwerk.config.channels import PRESETS, Channel
from bildwerk.config.delivery import BUILTIN, DeliveryProfile
from bildwerk.publish.keys import dev_init
from bildwerk.publish.metadata import AssetMetadata
from bildwerk.publish.stamp import FULL, SigningIdentity, load_identity, stamp
from bildwerk.stages.generate import png_bytes
from bildwerk.stages.render import payload_size, render

BASELINE = "full (before profiles)"


def profiles() -> dict[str, DeliveryProfile]:
    return {BASELINE: FULL, **BUILTIN}


def measure_profiles(
    meta: AssetMetadata, repeats: int, channel_name: str = "web_hero"
) -> list[dict[str, Any]]:
    """One row per profile, format and width (smallest and largest of the channel)."""
    channel: Channel = PRESETS[channel_name]
    master = make_master(channel.width, channel.height, seed=0)
    picks = {min(channel.rendition_widths()), max(channel.rendition_widths())}
    renditions = {
        icc: [
            r
            for r in render(master, channel, profile=DeliveryProfile(ssim_target=None, icc=icc))
            if r.width in picks
        ]
        for icc in (True, False)
    }
    with tempfile.TemporaryDirectory() as tmp:
        dev_init(Path(tmp), org=meta.creator)
        identity = load_identity(Path(tmp), None)
        signed_master = stamp(png_bytes(master), "png", meta, identity=identity,
                              author=meta.creator).data  # fmt: skip
        rows = []
        for name, profile in profiles().items():
            for r in renditions[profile.icc]:
                rows.append(_row(name, profile, r.format, r.width, r.data, meta, identity,
                                 signed_master, repeats))  # fmt: skip
    return rows


def _row(
    name: str,
    profile: DeliveryProfile,
    fmt: str,
    width: int,
    data: bytes,
    meta: AssetMetadata,
    identity: SigningIdentity,
    master: bytes,
    repeats: int,
) -> dict[str, Any]:
    url = f"https://cdn.acme.example/img/hero-web-hero-{width}w-0123abcd.{fmt}.c2pa"
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = stamp(data, fmt, meta, identity=identity, author=meta.creator, master=master,
                    master_title="hero (master)", profile=profile,
                    sidecar_url=url if profile.c2pa == "remote" else "", width=width)  # fmt: skip
        times.append(time.perf_counter() - t0)
    assert out is not None
    with Image.open(io.BytesIO(data)) as im:
        icc = len(im.info.get("icc_profile") or b"")
    payload = payload_size(out.data, fmt)
    return {
        "profile": name,
        "format": fmt,
        "width": width,
        "payload_b": payload,
        "metadata_b": len(out.data) - payload,
        "icc_b": icc,
        "sidecar_b": len(out.sidecar or b""),
        "stamp_ms": 1000 * statistics.median(times),
    }


def print_profiles(rows: Sequence[dict[str, Any]]) -> None:
    base = {(r["format"], r["width"]): r for r in rows if r["profile"] == BASELINE}
    print("\nmetadata per published file, by delivery profile (web_hero; baseline: full)")
    print(f"  {'profile':<24}{'file':<12}{'payload':>9}{'metadata':>10}{'(icc)':>7}"
          f"{'vs full':>9}{'sidecar':>9}{'stamp ms':>10}{'vs full':>9}")  # fmt: skip
    for r in rows:
        b = base[(r["format"], r["width"])]
        print(
            f"  {r['profile']:<24}{r['format'] + ' ' + str(r['width']):<12}"
            f"{r['payload_b']:>9}{r['metadata_b']:>10}{r['icc_b']:>7}"
            f"{r['metadata_b'] / b['metadata_b']:>8.2f}x{r['sidecar_b']:>9}"
            f"{r['stamp_ms']:>10.1f}{r['stamp_ms'] / b['stamp_ms']:>8.2f}x"
        )


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Worst metadata bytes and median stamp ms per profile, for ``run.py``."""
    out: dict[str, float] = {}
    for name in {r["profile"] for r in rows}:
        mine = [r for r in rows if r["profile"] == name]
        key = "full" if name == BASELINE else name
        out[f"profile_{key}_metadata_max_b"] = max(r["metadata_b"] for r in mine)
        out[f"profile_{key}_stamp_ms"] = statistics.median(r["stamp_ms"] for r in mine)
    return out
