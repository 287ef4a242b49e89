"""Small convolutional students for the zoo: ResNet, MobileNetV2/V3, EfficientNet-lite, ShuffleNetV2,
DenseNet and VGG styles.

All take ``in_channels`` and ``num_classes``, default to 28x28 grayscale input, keep every channel
count a multiple of 8 (so pruning with ``round_to=8`` has whole multiples to remove) and trace with
``torch.fx`` (no data-dependent control flow, no shape reads in ``forward``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from edgekd.models.example_teacher import ResidualCNN

Activation = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (never below ``divisor`` or 90 % of ``value``)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled(widths: Sequence[int], width: float) -> tuple[int, ...]:
    """Each base width times the ``width`` multiplier, kept a multiple of 8."""
    return tuple(make_divisible(w * width) for w in widths)


def conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: Activation | None = None
) -> nn.Sequential:
    """Conv (no bias, "same" padding) + BatchNorm, then ``act()`` if given."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def _head(cin: int, num_classes: int) -> tuple[nn.Module, nn.Linear]:
    return nn.AdaptiveAvgPool2d(1), nn.Linear(cin, num_classes)


# --------------------------------------------------------------------------------------------- ResNet


def resnet(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> ResidualCNN:
    """ResNet-style: basic blocks with identity / 1x1-projection shortcuts (three stages, one block each)."""
    return ResidualCNN(
        scaled((16, 32, 64), width), blocks_per_stage=1, in_channels=in_channels, num_classes=num_classes
    )


# ------------------------------------------------------------------- inverted residual (MobileNet family)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 reduce + ReLU, 1x1 expand + hard-sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        squeezed = make_divisible(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MBConv: optional 1x1 expansion, kxk depthwise, optional squeeze-excite, linear 1x1 projection.

    The shortcut is added when the block keeps resolution and width.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        expand: int,
        kernel: int = 3,
        act: Activation = nn.ReLU6,
        se: bool = False,
    ) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1, act=act))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(conv_bn(hidden, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


# (expand, base out channels, repeats, first stride, kernel, squeeze-excite)
BlockSpec = tuple[int, int, int, int, int, bool]


class MBNet(nn.Module):
    """A stem, a stack of :class:`InvertedResidual` blocks, a 1x1 head conv, pooling and a linear classifier."""

    def __init__(
        self,
        specs: Sequence[BlockSpec],
        stem: int,
        head: int,
        act: Activation,
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        cin = make_divisible(stem * width)
        self.stem = conv_bn(in_channels, cin, 3, act=act)
        blocks = []
        for expand, base, repeats, stride, kernel, se in specs:
            cout = make_divisible(base * width)
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, kernel, act, se))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        head_channels = make_divisible(head * width)
        self.head = conv_bn(cin, head_channels, 1, act=act)
        self.pool, self.classifier = _head(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


MOBILENET_V2: tuple[BlockSpec, ...] = (
    (1, 16, 1, 1, 3, False),
    (4, 24, 2, 2, 3, False),
    (4, 32, 2, 2, 3, False),
    (4, 48, 1, 1, 3, False),
)
MOBILENET_V3: tuple[BlockSpec, ...] = (
    (1, 16, 1, 1, 3, True),
    (4, 24, 2, 2, 3, False),
    (3, 40, 2, 2, 5, True),
    (4, 48, 1, 1, 5, True),
)
EFFICIENTNET_LITE: tuple[BlockSpec, ...] = (
    (1, 16, 1, 1, 3, False),
    (6, 24, 2, 2, 3, False),
    (6, 40, 1, 2, 5, False),
    (6, 48, 1, 1, 5, False),
)


def mobilenet_v2(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> MBNet:
    """MobileNetV2-style: inverted residuals with depthwise 3x3 convs and ReLU6."""
    return MBNet(MOBILENET_V2, 16, 128, nn.ReLU6, width, num_classes, in_channels)


def mobilenet_v3(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> MBNet:
    """MobileNetV3-style: inverted residuals with squeeze-excite, 3x3/5x5 depthwise convs and hard-swish."""
    return MBNet(MOBILENET_V3, 16, 128, nn.Hardswish, width, num_classes, in_channels)


def efficientnet_lite(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> MBNet:
    """EfficientNet-lite-style: MBConv (expansion 6, 3x3/5x5 depthwise) without squeeze-excite, ReLU6."""
    return MBNet(EFFICIENTNET_LITE, 24, 160, nn.ReLU6, width, num_classes, in_channels)


# ----------------------------------------------------------------------------------------- ShuffleNetV2


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave ``groups`` channel groups (written without reading the shape, so fx can trace it)."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ShuffleBlock(nn.Module):
    """ShuffleNetV2 unit: stride 1 splits the channels in half and transforms one half; stride 2
    transforms the whole input on two branches. Both halves are concatenated and shuffled.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        self.branch1: nn.Module = nn.Identity()
        if stride == 2:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, half, 1, act=nn.ReLU))
        self.branch2 = nn.Sequential(
            conv_bn(branch_in, half, 1, act=nn.ReLU),
            conv_bn(half, half, 3, stride, groups=half),
            conv_bn(half, half, 1, act=nn.ReLU),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
        else:
            left, right = self.branch1(x), x
        return channel_shuffle(torch.cat((left, self.branch2(right)), dim=1))


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2-style: a stem, stages of :class:`ShuffleBlock` (first one strided), a 1x1 head conv."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        stem = make_divisible(16 * width)
        self.stem = conv_bn(in_channels, stem, 3, act=nn.ReLU)
        blocks = []
        cin = stem
        for base, repeats in ((48, 2), (96, 2)):
            cout = make_divisible(base * width, 16)  # halves stay multiples of 8
            for i in range(repeats):
                blocks.append(ShuffleBlock(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        head = make_divisible(128 * width)
        self.head = conv_bn(cin, head, 1, act=nn.ReLU)
        self.pool, self.classifier = _head(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def shufflenet_v2(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> ShuffleNetV2:
    """ShuffleNetV2-style: channel split, depthwise branch, concat and channel shuffle."""
    return ShuffleNetV2(width, num_classes, in_channels)


# --------------------------------------------------------------------------------------------- DenseNet


class DenseLayer(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-1x1, BN-ReLU-3x3) whose ``growth`` new channels are concatenated."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, 2 * growth, 1, bias=False),
            nn.BatchNorm2d(2 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.layer(x)), dim=1)


class DenseNet(nn.Module):
    """DenseNet-style: dense blocks (concatenated growth) joined by BN-ReLU-1x1-avgpool transitions."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1, layers: int = 3) -> None:
        super().__init__()
        growth = make_divisible(16 * width)
        cin = 2 * growth
        stages: list[nn.Module] = [nn.Conv2d(in_channels, cin, 3, padding=1, bias=False)]
        for i in range(2):
            for _ in range(layers):
                stages.append(DenseLayer(cin, growth))
                cin += growth
            if i == 0:
                cout = cin // 2 // 8 * 8
                stages.append(
                    nn.Sequential(
                        nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2)
                    )
                )
                cin = cout
        stages += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*stages)
        self.pool, self.classifier = _head(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def densenet(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> DenseNet:
    """DenseNet-style: each layer's output is concatenated onto its input."""
    return DenseNet(width, num_classes, in_channels)


# -------------------------------------------------------------------------------------------------- VGG


class VGG(nn.Module):
    """VGG-style: conv-BN-ReLU pairs with max pooling, then flatten of a 3x3 map into a two-layer MLP."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in scaled((16, 32, 64), width):
            layers += [conv_bn(cin, cout, act=nn.ReLU), conv_bn(cout, cout, act=nn.ReLU), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)  # 28 -> 14 -> 7 -> 3
        hidden = make_divisible(128 * width)
        self.fc = nn.Linear(cin * 9, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.relu(self.fc(torch.flatten(self.features(x), 1))))


def vgg(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> VGG:
    """VGG-style plain CNN whose flatten feeds a hidden linear layer (exercises flatten->Linear pruning)."""
    return VGG(width, num_classes, in_channels)
