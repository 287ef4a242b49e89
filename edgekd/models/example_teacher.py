"""The bundled example teacher: a residual CNN for 28x28 grayscale images (Fashion-MNIST).

Its size is chosen so that its predicted int8 latency on a single Cortex-A76 core is well over
the 30 ms default budget (so the pipeline has real pruning to do) while it still trains on a
2-core CPU in about half an hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EXAMPLE_WIDTHS = (96, 192, 384)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResidualCNN(nn.Module):
    """ResNet-style classifier: a 3x3 stem, then ``len(widths)`` stages of basic blocks.

    Example:
        >>> model = ResidualCNN(widths=(16, 32), blocks_per_stage=1)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        widths: Sequence[int] = EXAMPLE_WIDTHS,
        blocks_per_stage: int = 2,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        cin = widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(cin, width, stride))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


def example_teacher() -> ResidualCNN:
    """Factory for the bundled teacher (``edgekd.models.example_teacher:example_teacher``)."""
    return ResidualCNN(EXAMPLE_WIDTHS, blocks_per_stage=2)
