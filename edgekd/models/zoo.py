"""A zoo of small student architectures, looked up by name.

Every entry is a factory ``(width=1.0, num_classes=10, in_channels=1) -> nn.Module`` for 28x28 inputs
by default; every model traces with ``torch.fx`` and keeps channel counts multiples of 8.

Example:
    >>> model = ZOO["mobilenet_v2"](width=0.5)
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Protocol

import torch  # noqa: F401  (used by the doctest)
from torch import nn

from edgekd.models.zoo_cnn import densenet, efficientnet_lite, mobilenet_v2, mobilenet_v3, resnet, shufflenet_v2, vgg
from edgekd.models.zoo_transformer import tiny_vit


class ModelFactory(Protocol):
    """Builds a fresh, randomly initialised model."""

    def __call__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> nn.Module: ...


ZOO: dict[str, ModelFactory] = {
    "resnet": resnet,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3,
    "shufflenet_v2": shufflenet_v2,
    "densenet": densenet,
    "efficientnet_lite": efficientnet_lite,
    "vgg": vgg,
    "tiny_vit": tiny_vit,
}
