"""Which upscaler a set of tensor names and shapes is, without torch.

bildwerk runs the two families that most upscaling weights in use belong to itself:
ESRGAN/Real-ESRGAN's ``RRDBNet`` (three key layouts: the original ESRGAN code's
``model.N`` sequence, the ESRGAN repository's later ``RRDB_trunk`` names and BasicSR's
``conv_first``/``body``) and Real-ESRGAN's compact ``SRVGGNetCompact``. Everything about a
file (scale, channels, width, depth) follows from its shapes; a file is recognised only
when its names and shapes are exactly those of the detected network, so a variant with
extra layers is never loaded half-way and run with wrong results.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Shapes = Mapping[str, tuple[int, ...]]

ESRGAN = "esrgan"
COMPACT = "compact"


@dataclass(frozen=True)
class Architecture:
    """A recognised upscaler: what to build and how the file's names map onto it."""

    name: str  # ESRGAN or COMPACT (the ids spandrel uses too)
    scale: int
    in_channels: int  # image channels in and out (1 grey, 3 RGB, 4 RGBA)
    out_channels: int
    features: int
    blocks: int  # RRDB blocks, or the compact net's middle convolutions
    growth: int = 0  # RRDB: channels each dense layer adds
    upsamples: int = 0  # RRDB: nearest-neighbour 2x steps
    unshuffle: int = 1  # RRDB: pixel-unshuffle factor on the input (Real-ESRGAN x2/x1)
    layout: str = "basicsr"  # key layout of the file: basicsr, esrgan-old, esrgan-repo

    @property
    def tags(self) -> tuple[str, ...]:
        if self.name == ESRGAN:
            return (f"{self.features}nf", f"{self.blocks}nb")
        return (f"{self.features}nf", f"{self.blocks}nc")


def detect(shapes: Shapes) -> Architecture | None:
    """The architecture ``shapes`` (tensor name -> shape) describe, or None."""
    shapes = strip_prefix(shapes)
    renamed = _rrdb_keys(shapes)
    if renamed is not None:
        layout, names = renamed
        arch = _rrdb(layout, {names[k]: v for k, v in shapes.items()})
    else:
        arch = _compact(shapes)
    if arch is None or arch.scale < 1 or arch.in_channels not in (1, 3, 4):
        return None
    if renamed is not None:
        shapes = {renamed[1][k]: v for k, v in shapes.items()}
    return arch if dict(shapes) == expected_shapes(arch) else None


def strip_prefix(shapes: Shapes) -> Shapes:
    """Drop ``module.`` (left by DataParallel training) from every name that has it."""
    if shapes and all(k.startswith("module.") for k in shapes):
        return {k[len("module.") :]: v for k, v in shapes.items()}
    return shapes


def module_keys(keys: Iterable[str]) -> dict[str, str]:
    """File name -> name in bildwerk's modules, for a file :func:`detect` recognised."""
    keys = list(keys)
    renamed = _rrdb_keys(dict.fromkeys(keys, ()))
    return renamed[1] if renamed is not None else {k: k for k in keys}


def expected_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Every parameter of the network ``arch`` describes, by module name, with its shape."""
    out: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        out[f"{name}.weight"] = (cout, cin, 3, 3)
        out[f"{name}.bias"] = (cout,)

    nf = arch.features
    if arch.name == COMPACT:
        conv("body.0", arch.in_channels, nf)
        out["body.1.weight"] = (nf,)
        for i in range(arch.blocks):
            conv(f"body.{2 * i + 2}", nf, nf)
            out[f"body.{2 * i + 3}.weight"] = (nf,)
        conv(f"body.{2 * arch.blocks + 2}", nf, arch.out_channels * arch.scale**2)
        return out
    conv("conv_first", arch.in_channels * arch.unshuffle**2, nf)
    gc = arch.growth
    for b in range(arch.blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", nf + (c - 1) * gc, gc if c < 5 else nf)
    conv("conv_body", nf, nf)
    for i in range(1, arch.upsamples + 1):
        conv(f"conv_up{i}", nf, nf)
    conv("conv_hr", nf, nf)
    conv("conv_last", nf, arch.out_channels)
    return out


# -- RRDBNet ----------------------------------------------------------------------------

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
_OLD_BODY = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_REPO_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)")
_REPO_NAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr"}
_UP = re.compile(r"conv_up(\d+)\.weight")


def _rrdb_keys(shapes: Shapes) -> tuple[str, dict[str, str]] | None:
    """(layout, file name -> BasicSR name) when the names are an RRDBNet's, else None."""
    if "conv_first.weight" in shapes and "body.0.rdb1.conv1.weight" in shapes:
        return "basicsr", {k: k for k in shapes}
    if "conv_first.weight" in shapes and "RRDB_trunk.0.RDB1.conv1.weight" in shapes:
        return "esrgan-repo", {k: _repo_name(k) for k in shapes}
    if "model.0.weight" in shapes and "model.1.sub.0.RDB1.conv1.0.weight" in shapes:
        return _old_names(shapes)
    return None


def _repo_name(key: str) -> str:
    m = _REPO_RDB.fullmatch(key)
    if m:
        return f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    name, _, kind = key.rpartition(".")
    if name.startswith("upconv") and name[6:].isdigit():
        return f"conv_up{name[6:]}.{kind}"
    return f"{_REPO_NAMES.get(name, name)}.{kind}"


def _old_names(shapes: Shapes) -> tuple[str, dict[str, str]] | None:
    """The original ESRGAN code's flattened ``nn.Sequential``: conv 0, the shortcut
    block 1 (RRDBs then one conv), then per 2x step (upsample, conv, act), then the HR
    conv, its act and the last conv; so convs sit at 3, 6, …, 3n, 3n+2 and 3n+4."""
    tops = {int(m[1]) for k in shapes if (m := _OLD_TOP.fullmatch(k))}
    if not tops:
        return None
    steps, rest = divmod(max(tops) - 4, 3)
    if rest or steps < 0:
        return None
    body = {int(m[1]) for k in shapes if (m := _OLD_BODY.fullmatch(k))}
    blocks = {int(m[1]) for k in shapes if (m := _OLD_RDB.fullmatch(k))}
    if len(body) != 1 or body != {len(blocks)}:
        return None
    tops_named = {0: "conv_first", 3 * steps + 2: "conv_hr", 3 * steps + 4: "conv_last"}
    tops_named.update({3 * i: f"conv_up{i}" for i in range(1, steps + 1)})
    names: dict[str, str] = {}
    for key in shapes:
        if m := _OLD_RDB.fullmatch(key):
            names[key] = f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
        elif m := _OLD_BODY.fullmatch(key):
            names[key] = f"conv_body.{m[2]}"
        elif (m := _OLD_TOP.fullmatch(key)) and int(m[1]) in tops_named:
            names[key] = f"{tops_named[int(m[1])]}.{m[2]}"
        else:
            return None
    return "esrgan-old", names


def _rrdb(layout: str, shapes: Shapes) -> Architecture | None:
    first = shapes.get("conv_first.weight", ())
    last = shapes.get("conv_last.weight", ())
    growth = shapes.get("body.0.rdb1.conv1.weight", ())
    if len(first) != 4 or len(last) != 4 or len(growth) != 4:
        return None
    out_ch, nf, cin = last[0], first[0], first[1]
    unshuffle = next((f for f in (1, 2, 4) if cin == out_ch * f * f), 0)
    if unshuffle == 0:  # input and output channels differ: a plain, non-shuffled net
        unshuffle = 1
    blocks = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("body."))
    ups = sorted(int(m[1]) for k in shapes if (m := _UP.fullmatch(k)))
    if ups != list(range(1, len(ups) + 1)):
        return None
    upscale = 2 ** len(ups)
    if upscale % unshuffle:
        return None
    return Architecture(
        name=ESRGAN,
        scale=upscale // unshuffle,
        in_channels=cin // unshuffle**2,
        out_channels=out_ch,
        features=nf,
        blocks=blocks,
        growth=growth[0],
        upsamples=len(ups),
        unshuffle=unshuffle,
        layout=layout,
    )


# -- SRVGGNetCompact --------------------------------------------------------------------

_BODY = re.compile(r"body\.(\d+)\.(weight|bias)")


def _compact(shapes: Shapes) -> Architecture | None:
    """Convs at even indices, a PReLU (one weight per channel) after each but the last;
    the last conv makes ``out * scale**2`` channels for the pixel shuffle."""
    if not all(_BODY.fullmatch(k) for k in shapes):
        return None
    first = shapes.get("body.0.weight", ())
    indices = [int(m[1]) for k in shapes if (m := _BODY.fullmatch(k))]
    last_index = max(indices, default=0)
    last = shapes.get(f"body.{last_index}.weight", ())
    if len(first) != 4 or len(last) != 4 or last_index % 2 or last_index < 2:
        return None
    cin, nf = first[1], first[0]
    scale = math.isqrt(last[0] // cin) if last[0] % cin == 0 else 0
    if scale < 1 or cin * scale * scale != last[0]:
        return None
    return Architecture(
        name=COMPACT,
        scale=scale,
        in_channels=cin,
        out_channels=cin,
        features=nf,
        blocks=last_index // 2 - 1,
    )
