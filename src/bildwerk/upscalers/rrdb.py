"""ESRGAN's generator, RRDBNet, as Real-ESRGAN/BasicSR define it (imports torch).

Features pass through ``blocks`` residual-in-residual dense blocks with a long skip,
then 2x nearest-neighbour steps each followed by a conv, then two convs to the image.
Real-ESRGAN's x2 and x1 models pixel-unshuffle the input first (so the body always works
at a quarter of the output size). Parameter names are BasicSR's; :mod:`.detect` maps
the older layouts onto them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bildwerk.upscalers.detect import Architecture

_SLOPE = 0.2  # every activation is LeakyReLU(0.2)
_RESIDUAL = 0.2  # residual scaling of each dense block and each RRDB


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class DenseBlock(nn.Module):
    """Five convs, each seeing the block input and all earlier outputs."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.conv1 = _conv(features, growth)
        self.conv2 = _conv(features + growth, growth)
        self.conv3 = _conv(features + 2 * growth, growth)
        self.conv4 = _conv(features + 3 * growth, growth)
        self.conv5 = _conv(features + 4 * growth, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            seen.append(F.leaky_relu(conv(torch.cat(seen, 1)), _SLOPE))
        out: torch.Tensor = self.conv5(torch.cat(seen, 1))
        return out * _RESIDUAL + x


class RRDB(nn.Module):
    """Three dense blocks in a row, with a scaled residual around them."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(features, growth)
        self.rdb2 = DenseBlock(features, growth)
        self.rdb3 = DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * _RESIDUAL + x


class RRDBNet(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        nf = arch.features
        self.unshuffle = arch.unshuffle
        self.conv_first = _conv(arch.in_channels * arch.unshuffle**2, nf)
        self.body = nn.Sequential(*(RRDB(nf, arch.growth) for _ in range(arch.blocks)))
        self.conv_body = _conv(nf, nf)
        self.ups = arch.upsamples
        for i in range(1, arch.upsamples + 1):
            self.add_module(f"conv_up{i}", _conv(nf, nf))
        self.conv_hr = _conv(nf, nf)
        self.conv_last = _conv(nf, arch.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.ups + 1):
            up = F.interpolate(feat, scale_factor=2.0, mode="nearest")
            feat = F.leaky_relu(getattr(self, f"conv_up{i}")(up), _SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), _SLOPE))  # type: ignore[no-any-return]
