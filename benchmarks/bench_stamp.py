"""Stamping cost per published rendition (watermark, metadata, C2PA) versus rendering it.

For each channel, width and format, a realistic master (``bench_render.make_master``:
textured backdrop, shaded product, copy, grain) goes through what publishing one rendition
costs, each step timed on its own and all of them in the same run:

* render: ``fit`` (one resample from the master) + ``encode`` at the format's default
  quality (the frame encoded is the watermarked one, as in production);
* stamping: ``watermark.embed`` on the resized frame (production embeds it just before the
  encode, so there it is render time; here it counts as stamping), ``write_metadata``
  (container-only XMP rewrite, plus IPTC IIM in JPEG) and ``sign`` (a C2PA
  manifest whose ``parentOf`` ingredient is the signed master PNG) on the encoded bytes.

Ratios are stamping/render, taken per repeat and then the median over repeats, so drifts
in machine speed cancel. Per rendition and per format, the width's fit and embed count in
full for every format; a channel's "overall" line counts them once per width, shared by its
formats, as ``render()`` does. Also reported: bytes added by the watermark (re-encoding the
unmarked frame), the metadata and the C2PA manifest, each against the encoded rendition,
the total against the channel's byte budget at the quality ``render()``'s budget search
would pick, and, on its own line, signing the master itself (``c2pa.created``), paid once
per creative. A dev signing chain (``keys.dev_init``) signs; no network is used. One
thread, pinned to one CPU.

    .venv/bin/python benchmarks/bench_stamp.py [--repeats 5] [--channels web_hero,instagram_feed]
        [--json] [--profiles]

``--profiles`` measures instead what each delivery profile stamps into a file (metadata
bytes, sidecar bytes, stamp time) against full stamping; see ``stamp_profiles.py``.
"""

from __future__ import annotations

import os

# One BLAS thread; effective when this script is the entry point (before numpy loads).
os.environ["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")

import argparse
import contextlib
import gc
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import make_master
from bildwerk.config.channels import PRESETS, Channel
from bildwerk.imagefit import fit
from bildwerk.publish.c2pa_read import verify
from bildwerk.publish.c2pa_sign import sign
from bildwerk.publish.keys import SignerConfig, dev_init, load_signer_config
from bildwerk.publish.metadata import AssetMetadata, digital_source_type, write_metadata
from bildwerk.stages.generate import png_bytes
from bildwerk.stages.render import RenderSettings, _render_one, _sizes, encode
from bildwerk.watermark import capacity, decode, embed, payload_for
from stamp_profiles import measure_profiles, print_profiles
from stamp_profiles import summary as profile_summary

DEFAULT_CHANNELS = ("web_hero", "instagram_feed")
WARMUP = 1
PAYLOAD_BITS = 32
BRAND = "Acme Beverages"
SEEDS = {"instagram_feed": 1, "web_hero": 0}  # as bench_render; other presets get 2


def one_core() -> tuple[str, Callable[[], None]]:
    """Pin every thread of this process to one CPU (threads started later inherit it);
    returns what was done and how to undo it, so ``run.py``'s later benchmarks keep their
    cores."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)", lambda: None
    before = os.sched_getaffinity(0)
    cpu = min(before)

    def pin(cpus: set[int]) -> int:
        tasks = Path("/proc/self/task")
        threads = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
        for tid in threads:  # sched_setaffinity(0, ...) pins the calling thread only
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, cpus)
        return len(threads)

    def restore() -> None:
        pin(before)

    count = pin({cpu})
    return f"{count} thread(s) pinned to CPU {cpu}, BLAS/OpenMP 1 thread", restore


@dataclass
class Width:
    """One responsive size of a channel: the resample and the watermark every format of
    it shares (per-repeat seconds)."""

    width: int
    height: int
    marked: bool
    fit_s: list[float] = field(default_factory=list)
    embed_s: list[float] = field(default_factory=list)


@dataclass
class Row:
    """One published rendition: per-repeat seconds and byte counts."""

    fmt: str
    size: Width
    quality: int
    budget: int | None
    encode_s: list[float] = field(default_factory=list)
    meta_s: list[float] = field(default_factory=list)
    sign_s: list[float] = field(default_factory=list)
    encoded_b: int = 0  # watermarked frame at the default quality
    unmarked_b: int = 0  # the same frame without the watermark
    meta_b: list[int] = field(default_factory=list)  # after write_metadata
    signed_b: list[int] = field(default_factory=list)  # after sign
    budget_q: int = 0  # quality render()'s budget search picks for the marked frame
    budget_b: int = 0  # its encoded size
    margin: float = 1.0  # the share of a binding budget render() aims at

    def render_at(self, i: int) -> float:
        return self.size.fit_s[i] + self.encode_s[i]

    def stamp_at(self, i: int) -> float:
        return self.size.embed_s[i] + self.meta_s[i] + self.sign_s[i]

    def publish_at(self, i: int) -> float:
        return self.meta_s[i] + self.sign_s[i]

    @property
    def added_meta(self) -> int:
        return round(statistics.median(self.meta_b)) - self.encoded_b

    @property
    def added_c2pa(self) -> int:
        return round(
            statistics.median(s - m for s, m in zip(self.signed_b, self.meta_b, strict=True))
        )

    @property
    def stamped_b(self) -> int:
        """Bytes delivered at the quality render() picks, with metadata and manifest."""
        return self.budget_b + self.added_meta + self.added_c2pa

    @property
    def if_bound(self) -> float | None:
        """Delivered bytes / budget when the budget binds: render() aims at ``margin`` of
        it, and metadata and manifest come on top."""
        if self.budget is None:
            return None
        return self.margin + (self.added_meta + self.added_c2pa) / self.budget

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "no budget"
        if self.budget_b > self.budget:
            return "OVER before stamping"
        if self.stamped_b > self.budget:
            return "OVER after stamping"
        return f"{100 * self.stamped_b / self.budget:.0f}% of budget"


@dataclass
class Case:
    """One channel: its master (image and PNG), signer, asset metadata and renditions."""

    channel: Channel
    master: Image.Image
    master_png: bytes
    meta: AssetMetadata
    payload: list[int]
    widths: list[Width]
    rows: list[Row]
    signer: SignerConfig
    trust_root: Path
    master_sign_s: list[float] = field(default_factory=list)
    master_signed_b: list[int] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def asset_metadata(channel: Channel, asset_id: str) -> AssetMetadata:
    """What a published rendition of a generated creative with a product photo carries."""
    return AssetMetadata(
        title=f"Spring launch 2026, Nordic spring water, {channel.name}",
        description=(
            "A blue bottle of Nordic spring water on a warm studio backdrop with leaves; "
            "headline 'Taste the fjord.' and a 'Shop now' button."
        ),
        creator=BRAND,
        credit_line=f"{BRAND} / bildwerk",
        copyright_notice=f"(c) 2026 {BRAND}. All rights reserved.",
        web_statement="https://acme.example/legal/image-licence",
        licensor_url="https://acme.example/licensing",
        digital_source_type=digital_source_type("diffusers", has_product_photo=True),
        campaign_id="spring-launch-2026",
        asset_id=asset_id,
        licence_expiry=date(2027, 3, 31),
        generation={
            "prompt": "studio packshot of a bottle of spring water on a pale stone plinth, "
            "crisp morning light, soft shadow, fjord mood",
            "negative_prompt": "text, watermark, people, clutter, blurry",
            "seed": 1_234_567,
            "model": "stable-diffusion-v1-5",
            "model_hash": "sha256:" + hashlib.sha256(b"bench-model").hexdigest(),  # stand-in
            "steps": 30,
            "guidance": 7.0,
            "backend": "diffusers",
        },
    )


def _sign(case: Case, data: bytes, fmt: str, title: str, master: bytes | None) -> bytes:
    return sign(
        data,
        fmt,
        signer=case.signer,
        title=title,
        digital_source_type=case.meta.digital_source_type,
        author=BRAND,
        master=master,
        master_title=f"{case.meta.asset_id} master" if master is not None else None,
        do_not_train=case.meta.do_not_train,
    ).data


def prepare(name: str, settings: RenderSettings, signer: SignerConfig, trust_root: Path) -> Case:
    """Master, asset id, metadata and renditions of one preset; byte sizes that are not
    timed (the unmarked encode, the budget search) are measured here, once."""
    channel = PRESETS[name]
    master = make_master(*channel.master_size, seed=SEEDS.get(name, 2))
    asset_id = "cr_" + hashlib.sha256(name.encode()).hexdigest()[:16]  # cr_<hex>: payload_for
    meta = asset_metadata(channel, asset_id)
    master_png = png_bytes(master)
    case = Case(
        channel=channel,
        master=master,
        master_png=master_png,
        meta=meta,
        payload=payload_for(asset_id, PAYLOAD_BITS),
        widths=[],
        rows=[],
        signer=signer,
        trust_root=trust_root,
    )
    hints: dict[str, Any] = {}
    for width, height in _sizes(channel, master.size):
        # Too small for the payload: published unmarked, with metadata only (as in docs).
        size = Width(width, height, capacity(width, height) >= PAYLOAD_BITS)
        case.widths.append(size)
        frame = fit(master, width, height, mode=channel.fit)
        frame.info.clear()
        marked = embed(frame, case.payload) if size.marked else frame
        for fmt in channel.formats:
            quality = settings.quality(fmt)
            budget = channel.byte_budget.get(fmt)
            row = Row(fmt, size, quality, budget, margin=settings.budget_margin)
            row.encoded_b = len(encode(marked, fmt, quality, settings))
            row.unmarked_b = len(encode(frame, fmt, quality, settings))
            row.budget_q, row.budget_b = quality, row.encoded_b
            if budget is not None and (row.encoded_b > budget or fmt in hints):
                chosen, hint = _render_one(marked, fmt, budget, settings, hints.get(fmt))
                row.budget_q, row.budget_b = chosen.quality, len(chosen.data)
                if hint is not None:
                    hints[fmt] = hint
            case.rows.append(row)
    return case


def one_pass(case: Case, settings: RenderSettings, record: bool) -> None:
    """Publish every rendition of ``case`` once, in the pipeline's order: resample, mark,
    encode each format, then metadata and signature on the encoded bytes. The master is
    signed first (its ``c2pa.created`` manifest is the renditions' ingredient). Timings
    and sizes are kept when ``record``; the warm-up pass runs the checks instead."""
    clock = time.perf_counter
    gc.collect()
    t0 = clock()
    signed_master = _sign(case, case.master_png, "png", f"{case.meta.asset_id} master", None)
    if record:
        case.master_sign_s.append(clock() - t0)
        case.master_signed_b.append(len(signed_master))
    for size in case.widths:
        gc.collect()
        t0 = clock()
        frame = fit(case.master, size.width, size.height, mode=case.channel.fit)
        frame.info.clear()
        t1 = clock()
        marked = embed(frame, case.payload) if size.marked else frame
        t2 = clock()
        if record:
            size.fit_s.append(t1 - t0)
            size.embed_s.append(t2 - t1)
        for row in (r for r in case.rows if r.size is size):
            t0 = clock()
            data = encode(marked, row.fmt, row.quality, settings)
            t1 = clock()
            tagged = write_metadata(data, row.fmt, case.meta)
            t2 = clock()
            title = f"{case.meta.asset_id}-{size.width}.{row.fmt}"
            signed = _sign(case, tagged, row.fmt, title, signed_master)
            t3 = clock()
            if record:
                row.encode_s.append(t1 - t0)
                row.meta_s.append(t2 - t1)
                row.sign_s.append(t3 - t2)
                row.meta_b.append(len(tagged))
                row.signed_b.append(len(signed))
            elif not case.checks and size.marked:
                case.checks = _check(case, marked, signed, row.fmt)


def _check(case: Case, marked: Image.Image, signed: bytes, fmt: str) -> list[str]:
    """Outside any timing: the watermark reads back and the signed rendition validates
    against the dev root with the master as its parent."""
    if decode(marked, PAYLOAD_BITS) != case.payload:
        raise AssertionError(f"{case.channel.name}: watermark does not read back")
    result = verify(signed, fmt, trust_anchors=case.trust_root)
    if result.state != "Trusted" or [i.relationship for i in result.ingredients] != ["parentOf"]:
        raise AssertionError(f"{case.channel.name}: C2PA {result.state}, {result.failures}")
    return [f"watermark reads back; C2PA {result.state}, actions {', '.join(result.actions)}"]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _paired(render: Callable[[int], float], stamp: Callable[[int], float], n: int) -> float:
    """Median over repeats of stamp/render, each taken within one repeat."""
    return statistics.median(stamp(i) / render(i) for i in range(n))


@dataclass
class Totals:
    """Per-repeat sums for a group of renditions."""

    render: Callable[[int], float]
    stamp: Callable[[int], float]
    publish: Callable[[int], float]
    embed: Callable[[int], float]


def format_totals(rows: Sequence[Row]) -> Totals:
    """As if only these renditions were delivered: each one's fit and embed in full."""
    return Totals(
        render=lambda i: sum(r.render_at(i) for r in rows),
        stamp=lambda i: sum(r.stamp_at(i) for r in rows),
        publish=lambda i: sum(r.publish_at(i) for r in rows),
        embed=lambda i: sum(r.size.embed_s[i] for r in rows),
    )


def channel_totals(cases: Sequence[Case]) -> Totals:
    """As the pipeline pays: fit and embed once per width, shared by the formats."""

    def widths(i: int, attr: str) -> float:
        return sum(float(getattr(w, attr)[i]) for c in cases for w in c.widths)

    def rows(i: int, fn: Callable[[Row, int], float]) -> float:
        return sum(fn(r, i) for c in cases for r in c.rows)

    return Totals(
        render=lambda i: widths(i, "fit_s") + rows(i, lambda r, j: r.encode_s[j]),
        stamp=lambda i: widths(i, "embed_s") + rows(i, Row.publish_at),
        publish=lambda i: rows(i, Row.publish_at),
        embed=lambda i: widths(i, "embed_s"),
    )


def summarise(totals: Totals, n: int) -> dict[str, float]:
    render_ms = _median([totals.render(i) for i in range(n)]) * 1000
    return {
        "render_ms": render_ms,
        "stamp_ms": _median([totals.stamp(i) for i in range(n)]) * 1000,
        "ratio": _paired(totals.render, totals.stamp, n),
        "publish_ratio": _paired(totals.render, totals.publish, n),
        "embed_share": _paired(totals.stamp, totals.embed, n),
    }


def measure(channels: Sequence[str], repeats: int) -> dict[str, Any]:
    """Run the benchmark; returns the full report (summary, renditions, masters)."""
    settings = RenderSettings()
    pinned, unpin = one_core()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            keys = dev_init(Path(tmp), org=BRAND)
            signer = load_signer_config(keys.chain, keys.key)
            cases = [prepare(name, settings, signer, keys.root) for name in channels]
            for _ in range(WARMUP):
                for case in cases:
                    one_pass(case, settings, record=False)
            for _ in range(repeats):
                for case in cases:
                    one_pass(case, settings, record=True)
    finally:
        unpin()
    return _report(cases, repeats, pinned)


def _report(cases: list[Case], n: int, pinned: str) -> dict[str, Any]:
    summary: dict[str, float] = {}
    channels: dict[str, Any] = {}
    renditions = []
    for case in cases:
        name = case.channel.name
        per_format = {
            fmt: summarise(format_totals([r for r in case.rows if r.fmt == fmt]), n)
            for fmt in case.channel.formats
        }
        overall = summarise(channel_totals([case]), n)
        master = {
            "png_bytes": len(case.master_png),
            "sign_ms": _median(case.master_sign_s) * 1000,
            "c2pa_bytes": round(_median(case.master_signed_b)) - len(case.master_png),
        }
        channels[name] = {"formats": per_format, "overall": overall, "master": master}
        summary[f"stamp_{name}_ratio"] = overall["ratio"]
        summary[f"stamp_{name}_publish_ratio"] = overall["publish_ratio"]
        summary[f"stamp_{name}_master_sign_ms"] = master["sign_ms"]
        for r in case.rows:
            renditions.append(_row_report(name, r, n))
    all_rows = [r for c in cases for r in c.rows]
    formats = list(dict.fromkeys(r.fmt for r in all_rows))
    across = {f: summarise(format_totals([r for r in all_rows if r.fmt == f]), n) for f in formats}
    total = summarise(channel_totals(cases), n)
    for fmt, s in across.items():
        summary[f"stamp_ratio_{fmt}"] = s["ratio"]
        rows = [r for r in all_rows if r.fmt == fmt]
        summary[f"stamp_meta_bytes_{fmt}"] = _median([r.added_meta for r in rows])
        summary[f"stamp_c2pa_bytes_{fmt}"] = _median([r.added_c2pa for r in rows])
    summary["stamp_ratio_total"] = total["ratio"]
    summary["stamp_publish_ratio_total"] = total["publish_ratio"]
    summary["stamp_embed_share"] = total["embed_share"]
    return {
        "machine": _machine(),
        "threads": pinned,
        "repeats": n,
        "warmup": WARMUP,
        "checks": {c.channel.name: c.checks for c in cases},
        "summary": summary,
        "channels": channels,
        "formats": across,
        "total": total,
        "renditions": renditions,
    }


def _row_report(channel: str, r: Row, n: int) -> dict[str, Any]:
    return {
        "channel": channel,
        "format": r.fmt,
        "width": r.size.width,
        "height": r.size.height,
        "quality": r.quality,
        "fit_ms": _median(r.size.fit_s) * 1000,
        "encode_ms": _median(r.encode_s) * 1000,
        "render_ms": _median([r.render_at(i) for i in range(n)]) * 1000,
        "embed_ms": _median(r.size.embed_s) * 1000,
        "meta_ms": _median(r.meta_s) * 1000,
        "sign_ms": _median(r.sign_s) * 1000,
        "stamp_ms": _median([r.stamp_at(i) for i in range(n)]) * 1000,
        "ratio": _paired(r.render_at, r.stamp_at, n),
        "publish_ratio": _paired(r.render_at, r.publish_at, n),
        "bytes": r.encoded_b,
        "watermark_bytes": r.encoded_b - r.unmarked_b,
        "metadata_bytes": r.added_meta,
        "c2pa_bytes": r.added_c2pa,
        "budget": r.budget,
        "budget_quality": r.budget_q,
        "delivered_bytes": r.stamped_b,
        "verdict": r.verdict,
        "if_budget_binds": r.if_bound,
    }


def _machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{platform.processor() or platform.machine()}, {cores} cores, python "
        f"{platform.python_version()}, c2pa-python {version('c2pa-python')}"
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def print_report(report: dict[str, Any]) -> None:
    n = report["repeats"]
    print(
        f"stamping vs render per rendition: medians of {n} repeats ({report['warmup']} warm-up "
        f"excluded); {report['machine']}; {report['threads']}"
    )
    for name, chan in report["channels"].items():
        rows = [row for row in report["renditions"] if row["channel"] == name]
        m = chan["master"]
        print(f"\n{name}: master PNG {m['png_bytes'] / 1000:.0f} kB")
        print(
            f"  {'ms':<15}{'fit':>7}{'encode':>8}{'render':>8} |{'embed':>7}{'meta':>6}"
            f"{'sign':>6}{'stamp':>7} | {'stamp/render':>12}{'meta+sign/render':>17}"
        )
        for r in rows:
            print(
                f"  {_label(r):<15}{r['fit_ms']:>7.1f}{r['encode_ms']:>8.1f}"
                f"{r['render_ms']:>8.1f} |{r['embed_ms']:>7.1f}{r['meta_ms']:>6.2f}"
                f"{r['sign_ms']:>6.1f}{r['stamp_ms']:>7.1f} | {r['ratio']:>12.3f}"
                f"{r['publish_ratio']:>17.3f}"
            )
        for fmt, s in chan["formats"].items():
            _print_totals(f"{fmt} (fit+embed per format)", s)
        _print_totals("overall (fit+embed per width)", chan["overall"])
        print(
            f"  master, once per creative: sign(c2pa.created).data {m['sign_ms']:.1f} ms, "
            f"+{m['c2pa_bytes']} B ({_pct(m['c2pa_bytes'], m['png_bytes'])} of the PNG)"
        )
        print(
            f"  {'bytes':<15}{'encoded':>8}{'+watermark':>15}{'+metadata':>14}{'+C2PA':>15}"
            f" |{'delivered':>10}  q{'':<3}{'budget':>8}{'if bound':>9}  verdict"
        )
        for r in rows:
            base = r["bytes"]
            budget = f"{r['budget']:>8}" if r["budget"] is not None else f"{'-':>8}"
            bound = (
                f"{100 * r['if_budget_binds']:>8.0f}%" if r["budget"] is not None else f"{'-':>9}"
            )
            print(
                f"  {_label(r):<15}{base:>8}"
                f"{r['watermark_bytes']:>+8} {_pct(r['watermark_bytes'], base):>6}"
                f"{r['metadata_bytes']:>+7} {_pct(r['metadata_bytes'], base):>6}"
                f"{r['c2pa_bytes']:>+8} {_pct(r['c2pa_bytes'], base):>6} |"
                f"{r['delivered_bytes']:>10}  q{r['budget_quality']:<3}{budget}{bound}"
                f"  {r['verdict']}"
            )
    print(f"\nall channels ({', '.join(report['channels'])}):")
    for fmt, s in report["formats"].items():
        _print_totals(fmt, s)
    _print_totals("overall", report["total"])
    for name, checks in report["checks"].items():
        print(f"  check {name}: {'; '.join(checks)}")
    print(
        "  (+watermark: the marked frame's encode minus the unmarked one's, already in"
        " 'encoded'; +metadata, +C2PA: added to it at publish; % of 'encoded'. 'delivered':"
        " at the quality render()'s budget search picks, everything included. 'if bound':"
        " where that search has to cut quality, it aims at budget_margin of the budget;"
        " metadata and C2PA then land on top.)"
    )


def _label(row: dict[str, Any]) -> str:
    return f"{row['format']} {row['width']}x{row['height']}"


def _print_totals(label: str, s: dict[str, float]) -> None:
    print(
        f"  {label:<30} render {s['render_ms']:>7.0f} ms  stamp {s['stamp_ms']:>6.0f} ms  "
        f"stamp/render {s['ratio']:.3f}  (metadata+sign only {s['publish_ratio']:.3f}; "
        f"embed {100 * s['embed_share']:.0f}% of stamping)"
    )


def run(repeats: int = 5, channels: Sequence[str] = DEFAULT_CHANNELS) -> dict[str, float]:
    """Print the table; return the flat summary (ratios, master signing ms, bytes added)."""
    report = measure(channels, repeats)
    print_report(report)
    summary: dict[str, float] = report["summary"]
    rows = measure_profiles(asset_metadata(PRESETS["web_hero"], "cr_bench"), repeats)
    print_profiles(rows)
    summary.update(profile_summary(rows))
    return summary


def _channels(value: str) -> list[str]:
    names = list(PRESETS) if value == "all" else [v.strip() for v in value.split(",") if v]
    unknown = [v for v in names if v not in PRESETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown channel(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(PRESETS)} or 'all'"
        )
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repeats", "--repeat", type=int, default=5, help="timed passes (median); default 5"
    )
    parser.add_argument(
        "--channels",
        type=_channels,
        default=list(DEFAULT_CHANNELS),
        help="comma-separated presets, or 'all' (default: web_hero,instagram_feed)",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--profiles", action="store_true", help="metadata bytes and stamp time per delivery profile"
    )
    args = parser.parse_args(argv)
    if args.profiles:
        meta = asset_metadata(PRESETS["web_hero"], "cr_bench")
        rows = measure_profiles(meta, max(1, args.repeats))
        print(json.dumps(rows, indent=2)) if args.json else print_profiles(rows)
        return
    report = measure(args.channels, max(1, args.repeats))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
