"""Real-ESRGAN's compact upscaler, SRVGGNetCompact (imports torch).

A plain stack of 3x3 convs with per-channel PReLUs at low resolution; the last conv
makes ``scale**2`` channels per output channel, a pixel shuffle arranges them, and the
result is added to a nearest-neighbour enlargement of the input (so the net learns only
the detail). Parameter names are Real-ESRGAN's: ``body.N``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bildwerk.upscalers.detect import Architecture


class SRVGGNetCompact(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        nf = arch.features
        layers: list[nn.Module] = [nn.Conv2d(arch.in_channels, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(arch.blocks):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, arch.out_channels * arch.scale**2, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.scale = arch.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = F.pixel_shuffle(out, self.scale)
        return out + F.interpolate(x, scale_factor=float(self.scale), mode="nearest")
