"""Factories a user might bring, for the student-file tests: layers that subclass torch's, LayerNorm,
GroupNorm, Embedding, a custom module with its own parameter, and factories that misbehave."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

MARKER_ENV = "EDGEKD_TEST_MARKER"


class BatchNormAct2d(nn.BatchNorm2d):
    """timm-style: BatchNorm2d subclass that applies its activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class SameConv2d(nn.Conv2d):
    """EfficientNet-PyTorch style: a Conv2d subclass calling F.conv2d with "same" padding in its forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, "same", self.dilation, self.groups)


class MyLinear(nn.Linear):
    pass


class Scale(nn.Module):
    """A custom module with its own per-channel parameter (layer scale)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class FieldNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(1, 32, 3)
        self.bn = BatchNormAct2d(32)
        self.gn = nn.GroupNorm(4, 32)
        self.scale = Scale(32)
        self.conv = SameConv2d(32, 32, 3)
        self.norm = nn.LayerNorm(32)
        self.embed = nn.Embedding(4, 32)
        self.fc = MyLinear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale(self.gn(self.bn(self.stem(x))))
        x = self.conv(x).mean((2, 3))
        return self.fc(self.norm(x + self.embed.weight.sum(0)))


def field_net() -> FieldNet:
    return FieldNet()


def touch_marker() -> nn.Module:
    """Leaves a marker file behind when called: a student file naming it must never make edgekd call it."""
    Path(os.environ[MARKER_ENV]).write_text("called")
    return FieldNet()


def raises() -> nn.Module:
    raise RuntimeError("CUDA is not available")


def window_vit() -> nn.Module:
    """A Swin-style zoo model as a user's ``module:function`` factory."""
    from edgekd.models.zoo_field import window_vit as build

    return build()
