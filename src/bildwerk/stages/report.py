"""HTML contact sheet of a run, grouped by channel, segment and locale."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(
    loader=PackageLoader("bildwerk", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _thumb(variant: dict[str, Any]) -> dict[str, Any] | None:
    """The smallest WebP (else JPEG) rendition: light to load, decodes everywhere."""
    for fmt in ("webp", "jpeg", "avif", "png"):
        found: list[dict[str, Any]] = [r for r in variant["renditions"] if r["format"] == fmt]
        if found:
            return min(found, key=lambda r: int(r["width"]))
    return None


def _human_bytes(n: int) -> str:
    return f"{n / 1000:.0f} kB" if n >= 1000 else f"{n} B"


def write_report(manifest: dict[str, Any]) -> str:
    groups: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for v in manifest["variants"]:
        groups[v["channel"]][(v["segment"] or "—", v["locale"] or "—")].append(
            {**v, "thumb": _thumb(v)}
        )
    statuses: dict[str, int] = defaultdict(int)
    for v in manifest["variants"]:
        statuses[v["qa"]["status"]] += 1
    template = _env.get_template("report.html")
    return template.render(
        m=manifest,
        groups={ch: dict(sorted(cells.items())) for ch, cells in sorted(groups.items())},
        statuses=dict(statuses),
        cached=sum(1 for v in manifest["variants"] if v["cached"]),
        human_bytes=_human_bytes,
    )
