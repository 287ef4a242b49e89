"""FitNets hint loss (Romero et al., 2015): regress teacher features from student features.

For each ``(teacher_path, student_path)`` pair the student feature goes through a learned adapter
(a 1x1 convolution for 4-D maps, a linear layer for 2-D vectors — the same weights) when the widths
differ, the larger spatial map is adaptive-average-pooled to the smaller one, and the MSE is taken.
The loss is the mean over pairs. The adapters are parameters of this module: give
``loss.parameters()`` to the optimizer together with the student's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.feature_hooks import FeatureHooks, FeatureMaps, check_pairs, match_spatial, paired_features


class ChannelAdapter(nn.Module):
    """Maps ``in_channels`` to ``out_channels`` along dim 1: linear on (B, C), 1x1 conv on (B, C, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return self.linear(x)
        if x.dim() == 4:
            return F.conv2d(x, self.linear.weight[:, :, None, None], self.linear.bias)
        raise ConfigError(f"hint adapters take (B, C) or (B, C, H, W) features, got shape {tuple(x.shape)}")


class HintLoss(nn.Module):
    """Mean over pairs of MSE(adapter(student feature), teacher feature).

    Args:
        pairs: ``(teacher_path, student_path)`` module paths.
        teacher_channels: Channel (or feature) width of each teacher feature, one per pair.
        student_channels: Same for the student features.

    Example:
        >>> loss = HintLoss([("stages.0", "stages.0")], teacher_channels=[96], student_channels=[32])
        >>> value = loss({"teacher": {"stages.0": t_feat}, "student": {"stages.0": s_feat}})  # doctest: +SKIP
    """

    needs_features: ClassVar[bool] = True

    def __init__(
        self, pairs: Iterable[Sequence[str]], teacher_channels: Sequence[int], student_channels: Sequence[int]
    ) -> None:
        super().__init__()
        self.pairs = check_pairs(pairs, "hint")
        widths = (list(teacher_channels), list(student_channels))
        if any(len(w) != len(self.pairs) for w in widths):
            raise ConfigError(
                f"hint: {len(self.pairs)} pairs but {len(widths[0])} teacher_channels and "
                f"{len(widths[1])} student_channels; give one width per pair"
            )
        if any(c < 1 for w in widths for c in w):
            raise ConfigError(f"hint: channel widths must be >= 1 (got {widths[0]} and {widths[1]})")
        self.teacher_channels, self.student_channels = widths
        self.adapters = nn.ModuleList(
            nn.Identity() if t == s else ChannelAdapter(s, t) for t, s in zip(*widths, strict=True)
        )

    @classmethod
    def from_models(
        cls, teacher: nn.Module, student: nn.Module, pairs: Iterable[Sequence[str]], example_input: torch.Tensor
    ) -> HintLoss:
        """Build the loss with widths read from one forward pass of both models on ``example_input``."""
        pairs = check_pairs(pairs, "hint")
        widths: list[list[int]] = []
        for index, model in enumerate((teacher, student)):
            paths = [pair[index] for pair in pairs]
            was_training = model.training
            model.eval()
            with FeatureHooks(model, paths, detach=True) as hooks, torch.no_grad():
                model(example_input)
            model.train(was_training)
            widths.append([int(hooks.features[p].shape[1]) for p in paths])
        return cls(pairs, widths[0], widths[1])

    def forward(self, features: FeatureMaps) -> torch.Tensor:
        losses = []
        for (t_feat, s_feat), adapter, t_c, s_c in zip(
            paired_features(features, self.pairs, "hint"),
            self.adapters,
            self.teacher_channels,
            self.student_channels,
            strict=True,
        ):
            if s_feat.shape[1] != s_c or t_feat.shape[1] != t_c:
                raise ConfigError(
                    f"hint: declared widths teacher {t_c} / student {s_c} but features have "
                    f"{t_feat.shape[1]} / {s_feat.shape[1]} channels"
                )
            s_feat, t_feat = match_spatial(adapter(s_feat), t_feat)
            losses.append(F.mse_loss(s_feat, t_feat))
        return torch.stack(losses).mean()
