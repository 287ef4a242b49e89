"""A tiny vision transformer for the zoo.

Attention uses ``nn.MultiheadAttention`` (Torch-Pruning prunes its embedding dimension as one unit;
fx keeps it as a leaf module). There is no class token and no position-embedding parameter: tokens are
mean-pooled and position comes from a depthwise 3x3 conv on the patch grid (CPVT-style), so every
tensor keeps the embedding as its channel dimension and the dependency graph stays exact.

Tokens are laid out sequence-first, ``(tokens, N, dim)``, and attention is built with
``batch_first=False``: in eval mode under ``no_grad`` a batch-first ``nn.MultiheadAttention`` takes the
fused ``aten::_native_multi_head_attention`` fast path, which the TorchScript ONNX exporter cannot convert.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.zoo_cnn import make_divisible


class TransformerBlock(nn.Module):
    """Pre-norm block on ``(tokens, N, dim)``: LayerNorm + self-attention, LayerNorm + GELU MLP, both residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Patch-embedding conv, conv position encoding, transformer blocks, LayerNorm, mean pool, linear head.

    Example:
        >>> TinyViT(width=0.5)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        width: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 1,
        depth: int = 2,
        heads: int = 2,
        patch: int = 4,
    ) -> None:
        super().__init__()
        dim = make_divisible(64 * width, 8 * heads)  # keeps dim / heads a multiple of 8
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.blocks = nn.Sequential(*(TransformerBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.pos(x)
        x = self.blocks(x.flatten(2).permute(2, 0, 1))  # (tokens, N, dim)
        return self.classifier(self.norm(x).mean(dim=0))


def tiny_vit(width: float = 1.0, num_classes: int = 10, in_channels: int = 1) -> TinyViT:
    """Tiny ViT: 4x4 patches (7x7 tokens at 28x28), two pre-norm attention blocks, two heads."""
    return TinyViT(width, num_classes, in_channels)
