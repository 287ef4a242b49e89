"""Importance criteria, registered by name in ``edgekd.core.registry.IMPORTANCES``.

Each entry is a factory returning a Torch-Pruning importance object; ``needs_gradients`` tells the
pruner whether to run calibration batches through the model (backward) before scoring.

| name        | scores a channel by                                                          |
|-------------|------------------------------------------------------------------------------|
| ``l1``      | mean over the group's layers of the L1 norm of its weights                   |
| ``l2``      | the same with squared weights (L2), each layer normalised by its mean        |
| ``groupnorm`` | the L2 norm over *all* weights removed together (DepGraph's group norm)    |
| ``taylor``  | first-order Taylor, |weight x gradient|, from a few calibration batches     |
| ``bnscale`` | |gamma| of the BatchNorm(s) in the group (network slimming); L1 where no BN |
"""

from __future__ import annotations

import torch
import torch_pruning as tp


def l1_importance() -> tp.importance.Importance:
    """Group L1 magnitude of the weights removed together."""
    return tp.importance.GroupMagnitudeImportance(p=1)


def l2_importance() -> tp.importance.Importance:
    """Group L2 magnitude of the weights removed together (mean over layers, mean-normalised)."""
    return tp.importance.GroupMagnitudeImportance(p=2)


def groupnorm_importance() -> tp.importance.Importance:
    """Group norm: the sum of squared weights over every layer of the group, unnormalised.

    Unlike ``l2`` the layers are summed, not averaged, so a channel that feeds many layers (a
    residual stream) counts each of them.
    """
    return tp.importance.GroupMagnitudeImportance(p=2, group_reduction="sum", normalizer=None)


def taylor_importance() -> tp.importance.Importance:
    """First-order Taylor: |weight x gradient|, from a few calibration batches."""
    return tp.importance.GroupTaylorImportance()


taylor_importance.needs_gradients = True  # type: ignore[attr-defined]


class BNScaleWithFallback(tp.importance.BNScaleImportance):
    """|BatchNorm gamma| (network slimming); groups without a BatchNorm fall back to L1 magnitude.

    Torch-Pruning's plain BN-scale returns nothing for such groups (linear layers, transformer
    blocks) and they would silently stay unpruned.
    """

    def __init__(self) -> None:
        super().__init__()
        self._fallback = tp.importance.GroupMagnitudeImportance(p=1)

    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:
        imp = super().__call__(group)
        return self._fallback(group) if imp is None else imp


def bnscale_importance() -> tp.importance.Importance:
    """BN-scale: |gamma| of the group's BatchNorm layers, L1 magnitude where a group has none."""
    return BNScaleWithFallback()
