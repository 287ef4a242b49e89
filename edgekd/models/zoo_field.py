"""Zoo entries with the structures of the field's model libraries (timm, torchvision), written here.

Each reproduces a construct that broke pruning, reloading or costing when users brought timm or
torchvision models: layer subclasses (``BatchNormAct2d(nn.BatchNorm2d)``, a ``Linear`` subclass), a
``Conv2d`` subclass calling ``F.conv2d`` with "same" padding in its own forward, layer-scale
parameters, ``LayerNorm2d``, window attention with reshapes and ``torch.matmul``, RepVGG-style
re-parameterisable branches, and a torchvision-style ResNet. Same signature as every zoo factory:
``(width=1.0, num_classes=10, in_channels=1)``, 28x28 input, fx-traceable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.models.zoo_cnn import make_divisible, scaled


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's BatchNorm + activation in one ``nn.BatchNorm2d`` subclass."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum or 0.0, self.eps)  # fmt: skip
        return self.act(y)


class Conv2dSame(nn.Conv2d):
    """A ``Conv2d`` subclass whose own forward calls ``F.conv2d`` with TF "same" padding (EfficientNet ports)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1):
            return F.conv2d(x, self.weight, self.bias, 1, "same", self.dilation, self.groups)
        pad = self.kernel_size[0] - self.stride[0]  # even input sizes: all padding at the end
        x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Linear(nn.Linear):
    """timm's ``Linear`` subclass."""


class SubclassBlock(nn.Module):
    """Depthwise-separable residual block of subclassed layers."""

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = Conv2dSame(channels, channels, 3, stride, groups=channels, bias=False)
        self.bn1 = BatchNormAct2d(channels)
        self.pw = Conv2dSame(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.residual = stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.pw(self.bn1(self.dw(x))))
        return x + y if self.residual else y


class SubclassNet(nn.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        c1, c2 = scaled((32, 64), width)
        self.stem = Conv2dSame(in_channels, c1, 3, 2, bias=False)
        self.bn = BatchNormAct2d(c1)
        self.block1 = SubclassBlock(c1)
        self.expand = Conv2dSame(c1, c2, 1, bias=False)
        self.bn_expand = BatchNormAct2d(c2)
        self.block2 = SubclassBlock(c2)
        self.block3 = SubclassBlock(c2, stride=2)
        self.head = Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(self.bn(self.stem(x)))
        x = self.block3(self.block2(self.bn_expand(self.expand(x))))
        return self.head(x.mean((2, 3)))


def timm_subclass(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> SubclassNet:
    """timm/EfficientNet-port style: BatchNormAct2d, Conv2dSame (F.conv2d in forward), Linear subclass."""
    return SubclassNet(width, num_classes, in_channels)


class LayerNorm2d(nn.LayerNorm):
    """timm's ``LayerNorm2d``: LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class PoolFormerBlock(nn.Module):
    """PoolFormer: x + ls1 * (pool(norm(x)) - norm(x)); x + ls2 * mlp(norm(x)), with layer-scale parameters."""

    def __init__(self, dim: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.norm2 = LayerNorm2d(dim)
        self.fc1 = nn.Conv2d(dim, dim * mlp_ratio, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(dim * mlp_ratio, dim, 1)
        self.layer_scale1 = nn.Parameter(torch.full((dim, 1, 1), 1e-1))
        self.layer_scale2 = nn.Parameter(torch.full((dim, 1, 1), 1e-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.layer_scale1 * (self.pool(y) - y)
        return x + self.layer_scale2 * self.fc2(self.act(self.fc1(self.norm2(x))))


class PoolFormer(nn.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        dim = make_divisible(48 * width)
        self.stem = nn.Conv2d(in_channels, dim, 4, 4)
        self.blocks = nn.Sequential(PoolFormerBlock(dim), PoolFormerBlock(dim))
        self.norm = nn.GroupNorm(1, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.stem(x))).mean((2, 3)))


def poolformer(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> PoolFormer:
    """PoolFormer style: LayerNorm2d, pooling token mixer, per-channel layer-scale parameters, GroupNorm."""
    return PoolFormer(width, num_classes, in_channels)


class WindowAttention(nn.Module):
    """Swin-style multi-head self-attention inside non-overlapping windows of an NHWC map.

    ``qkv`` is one Linear reshaped into heads; scores by ``torch.matmul`` (no ``nn.MultiheadAttention``).
    """

    def __init__(self, dim: int, heads: int, window: int, grid: int) -> None:
        super().__init__()
        self.heads, self.window, self.grid = heads, window, grid
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, H, W, C)
        w, g, c = self.window, self.grid // self.window, self.heads * self.head_dim
        x = x.reshape(-1, g, w, g, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        q, k, v = self.qkv(x).reshape(-1, w * w, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.matmul(q * self.head_dim**-0.5, k.transpose(-2, -1)).softmax(dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(-1, w * w, c)
        x = self.proj(x).reshape(-1, g, g, w, w, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, self.grid, self.grid, c)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, grid: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, grid)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class WindowViT(nn.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        heads = 2
        dim = make_divisible(48 * width, 8 * heads)
        self.patch_embed = nn.Conv2d(in_channels, dim, 2, 2)  # 28x28 -> 14x14 tokens, 2x2 windows of 7x7
        self.blocks = nn.Sequential(SwinBlock(dim, heads, 7, 14), SwinBlock(dim, heads, 7, 14))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.patch_embed(x).permute(0, 2, 3, 1))
        return self.head(self.norm(x).mean((1, 2)))


def window_vit(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> WindowViT:
    """Swin style: window partition by reshapes, attention from a qkv Linear and torch.matmul, NHWC tokens."""
    return WindowViT(width, num_classes, in_channels)


class RepVGGBlock(nn.Module):
    """RepVGG training-time block: 3x3 conv+BN, 1x1 conv+BN and (same shape) an identity BN, summed, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))
        self.one = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.identity = nn.BatchNorm2d(cout) if cin == cout and stride == 1 else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dense(x) + self.one(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)


class RepVGG(nn.Module):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        c1, c2 = scaled((24, 48), width)
        self.stages = nn.Sequential(
            RepVGGBlock(in_channels, c1, 2), RepVGGBlock(c1, c1), RepVGGBlock(c1, c2, 2), RepVGGBlock(c2, c2)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.stages(x)), 1))


def repvgg(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> RepVGG:
    """RepVGG style: re-parameterisable 3x3 / 1x1 / identity-BN branches summed before one ReLU."""
    return RepVGG(width, num_classes, in_channels)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: conv-bn-relu-conv-bn plus identity or 1x1 ``downsample``, in-place ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet layout (stem conv + max pool, ``layer1..3``, ``avgpool``, ``fc``), shrunk for 28x28."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        c1, c2, c3 = scaled((16, 32, 64), width)
        self.conv1 = nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(c1, c1), BasicBlock(c1, c1))
        self.layer2 = nn.Sequential(BasicBlock(c1, c2, 2), BasicBlock(c2, c2))
        self.layer3 = nn.Sequential(BasicBlock(c2, c3, 2), BasicBlock(c3, c3))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def torchvision_resnet(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> TorchvisionResNet:
    """torchvision ResNet-18 layout (two BasicBlocks a stage, in-place ReLU and ``out += identity``)."""
    return TorchvisionResNet(width, num_classes, in_channels)


FIELD_ZOO = {
    "timm_subclass": timm_subclass,
    "poolformer": poolformer,
    "window_vit": window_vit,
    "repvgg": repvgg,
    "torchvision_resnet": torchvision_resnet,
}
