"""Standard image classifiers the published device measurements name, built as the papers define them.

The latency predictor is scored against latencies others measured on real devices
(``targets/measurements/*.csv``); those rows name these networks, so each is defined here once,
layer for layer, and checked against the paper's parameter and multiply-accumulate counts
(``tests/bench/test_latency_standard_nets.py``). Weights are random: only the structure matters for latency.
Every module-level op is an ``nn.Module`` (pools, activations) so the latency trace sees it.

Example:
    >>> net = build("mobilenet_v2_1.0")  # doctest: +SKIP
    >>> STANDARD_NETS["efficientnet_lite0"].input_size  # doctest: +SKIP
    224
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgekd.core.errors import InputError


def _div(v: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of ``divisor``, never below 90 % of ``v`` (the papers' rule)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def _cba(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU):
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)


class _Classifier(nn.Module):
    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features, self.pool, self.flatten, self.head = features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.features(x))))


def mobilenet_v1(alpha: float = 1.0, classes: int = 1000) -> nn.Module:
    """MobileNet V1 (Howard et al. 2017): 4.2 M parameters, 569 M MACs at 224 for alpha 1.0."""
    c = lambda n: int(n * alpha)  # noqa: E731
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    layers, cin = [_cba(3, c(32), 3, 2)], c(32)
    for cout, s in plan:
        layers += [_cba(cin, cin, 3, s, groups=cin), _cba(cin, c(cout), 1)]
        cin = c(cout)
    return _Classifier(nn.Sequential(*layers), nn.Linear(cin, classes))


class SqueezeExcite(nn.Module):
    """MobileNet V3's squeeze-excite: pool, 1x1 conv + ReLU, 1x1 conv + hard sigmoid, scale."""

    def __init__(self, c: int) -> None:
        super().__init__()
        r = _div(c / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(c, r, 1), nn.ReLU(), nn.Conv2d(r, c, 1), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, optional squeeze-excite, project 1x1; residual when shapes match."""

    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, act: type[nn.Module], se: bool) -> None:
        super().__init__()
        layers = [_cba(cin, exp, 1, act=act)] if exp != cin else []
        layers += [_cba(exp, exp, k, stride, groups=exp, act=act), *([SqueezeExcite(exp)] if se else [])]
        self.body = nn.Sequential(*layers, _cba(exp, cout, 1, act=None))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(alpha: float = 1.0, classes: int = 1000) -> nn.Module:
    """MobileNet V2 (Sandler et al. 2018): 3.4 M parameters, 300 M MACs at 224 for alpha 1.0."""
    plan = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = _div(32 * alpha)
    layers: list[nn.Module] = [_cba(3, cin, 3, 2, act=nn.ReLU6)]
    for t, c, n, s in plan:
        cout = _div(c * alpha)
        for i in range(n):
            layers.append(InvertedResidual(cin, cin * t, cout, 3, s if i == 0 else 1, nn.ReLU6, False))
            cin = cout
    last = _div(1280 * max(1.0, alpha))
    layers.append(_cba(cin, last, 1, act=nn.ReLU6))
    return _Classifier(nn.Sequential(*layers), nn.Linear(last, classes))


# MobileNet V3 (Howard et al. 2019), Tables 1 and 2: kernel, expansion, out, SE, hard-swish, stride
_V3_LARGE = [(3, 16, 16, 0, 0, 1), (3, 64, 24, 0, 0, 2), (3, 72, 24, 0, 0, 1), (5, 72, 40, 1, 0, 2),
             (5, 120, 40, 1, 0, 1), (5, 120, 40, 1, 0, 1), (3, 240, 80, 0, 1, 2), (3, 200, 80, 0, 1, 1),
             (3, 184, 80, 0, 1, 1), (3, 184, 80, 0, 1, 1), (3, 480, 112, 1, 1, 1), (3, 672, 112, 1, 1, 1),
             (5, 672, 160, 1, 1, 2), (5, 960, 160, 1, 1, 1), (5, 960, 160, 1, 1, 1)]  # fmt: skip
_V3_SMALL = [(3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
             (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
             (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1)]  # fmt: skip


def mobilenet_v3(large: bool = True, classes: int = 1000) -> nn.Module:
    """MobileNet V3-Large (5.4 M params, 219 M MACs) or -Small (2.5 M, 56 M) at 224."""
    plan, last_conv, head = (_V3_LARGE, 960, 1280) if large else (_V3_SMALL, 576, 1024)
    layers: list[nn.Module] = [_cba(3, 16, 3, 2, act=nn.Hardswish)]
    cin = 16
    for k, exp, cout, se, hs, s in plan:
        layers.append(InvertedResidual(cin, exp, cout, k, s, nn.Hardswish if hs else nn.ReLU, bool(se)))
        cin = cout
    layers.append(_cba(cin, last_conv, 1, act=nn.Hardswish))
    classifier = nn.Sequential(nn.Linear(last_conv, head), nn.Hardswish(), nn.Linear(head, classes))
    return _Classifier(nn.Sequential(*layers), classifier)


# EfficientNet-B0 stages (Tan & Le 2019, Table 1): expansion, kernel, stride, out channels, repeats
_B0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
       (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # fmt: skip
# EfficientNet-Lite (tensorflow/tpu efficientnet_lite_builder.py): width, depth, resolution
_LITE = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280), 4: (1.4, 1.8, 300)}


def efficientnet_lite(index: int, classes: int = 1000) -> nn.Module:
    """EfficientNet-Lite0..4: B0 stages, no squeeze-excite, ReLU6, stem (32) and head (1280) not scaled.

    As the lite builder does (``fix_head_stem``), the first and last stages keep their repeats.
    """
    width, depth, _ = _LITE[index]
    cin = 32
    layers: list[nn.Module] = [_cba(3, cin, 3, 2, act=nn.ReLU6)]
    for i, (t, k, s, c, n) in enumerate(_B0):
        cout = _div(c * width)
        repeats = n if i in (0, len(_B0) - 1) else math.ceil(depth * n)
        for j in range(repeats):
            layers.append(InvertedResidual(cin, cin * t, cout, k, s if j == 0 else 1, nn.ReLU6, False))
            cin = cout
    layers.append(_cba(cin, 1280, 1, act=nn.ReLU6))
    return _Classifier(nn.Sequential(*layers), nn.Linear(1280, classes))


class _Basic(nn.Module):
    def __init__(self, cin: int, c: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_cba(cin, c, 3, stride), _cba(c, c, 3, act=None))
        self.down = _cba(cin, c, 1, stride, act=None) if stride != 1 or cin != c else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.down(x))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, c: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_cba(cin, c, 1), _cba(c, c, 3, stride), _cba(c, 4 * c, 1, act=None))
        self.down = _cba(cin, 4 * c, 1, stride, act=None) if stride != 1 or cin != 4 * c else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.down(x))


def resnet(depth: int, classes: int = 1000) -> nn.Module:
    """ResNet-18 (11.7 M params, 1.8 G MACs) or ResNet-50 (25.6 M, 4.1 G) at 224 (He et al. 2016)."""
    block, repeats, expansion = {18: (_Basic, (2, 2, 2, 2), 1), 50: (_Bottleneck, (3, 4, 6, 3), 4)}[depth]
    layers: list[nn.Module] = [_cba(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, n in enumerate(repeats):
        c = 64 * 2**stage
        for j in range(n):
            layers.append(block(cin, c, 2 if j == 0 and stage > 0 else 1))
            cin = c * expansion
    return _Classifier(nn.Sequential(*layers), nn.Linear(cin, classes))


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat((self.e1(s), self.e3(s)), 1)


def squeezenet(version: str = "1.0", classes: int = 1000) -> nn.Module:
    """SqueezeNet 1.0 (Iandola et al. 2016, 1.25 M params) or 1.1 (the reference repo's 2.4x cheaper variant)."""
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    fires = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
    if version == "1.0":
        stem, pool_after = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool()], {2, 6}
        cin = 96
    else:
        stem, pool_after = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool()], {1, 3}
        cin = 64
    layers: list[nn.Module] = list(stem)
    for i, (s, e) in enumerate(fires):
        layers.append(_Fire(cin, s, e))
        cin = 2 * e
        if i in pool_after:
            layers.append(pool())
    head = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(cin, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return nn.Sequential(*layers, head)


@dataclass(frozen=True)
class StandardNet:
    """A named network, the input side it is published at, and the paper's parameter and MAC counts."""

    factory: Callable[[], nn.Module]
    input_size: int
    params_m: float
    macs_m: float | None  # None where the paper states none


STANDARD_NETS: dict[str, StandardNet] = {
    "mobilenet_v1_1.0": StandardNet(lambda: mobilenet_v1(1.0), 224, 4.2, 569),
    "mobilenet_v1_0.5": StandardNet(lambda: mobilenet_v1(0.5), 224, 1.3, 149),
    "mobilenet_v2_1.0": StandardNet(lambda: mobilenet_v2(1.0), 224, 3.4, 300),
    "mobilenet_v3_large": StandardNet(lambda: mobilenet_v3(True), 224, 5.4, 219),
    "mobilenet_v3_small": StandardNet(lambda: mobilenet_v3(False), 224, 2.5, 56),
    **{
        f"efficientnet_lite{i}": StandardNet(lambda i=i: efficientnet_lite(i), _LITE[i][2], p, m)
        for i, p, m in ((0, 4.7, 407), (1, 5.4, 631), (2, 6.1, 899), (3, 8.2, 1440), (4, 13.0, 2640))
    },
    "resnet18": StandardNet(lambda: resnet(18), 224, 11.7, 1800),
    "resnet50": StandardNet(lambda: resnet(50), 224, 25.6, 3800),
    "squeezenet_1.0": StandardNet(lambda: squeezenet("1.0"), 224, 1.25, None),
    "squeezenet_1.1": StandardNet(lambda: squeezenet("1.1"), 224, 1.24, None),
}


def build(name: str) -> nn.Module:
    """The network ``name`` (a key of :data:`STANDARD_NETS`), random weights, in eval mode."""
    if name not in STANDARD_NETS:
        raise InputError(f"unknown standard network '{name}'; choose one of {', '.join(sorted(STANDARD_NETS))}")
    return STANDARD_NETS[name].factory().eval()
