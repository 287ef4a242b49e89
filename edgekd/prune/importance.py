"""Importance criteria, registered by name in ``edgekd.registry.IMPORTANCES``.

Each entry is a factory returning a Torch-Pruning importance object; ``needs_gradients`` tells the
pruner whether to run calibration batches through the model (backward) before scoring.
"""

from __future__ import annotations

import torch_pruning as tp


def l1_importance() -> tp.importance.Importance:
    """Group L1 magnitude of the weights removed together."""
    return tp.importance.GroupMagnitudeImportance(p=1)


def l2_importance() -> tp.importance.Importance:
    """Group L2 magnitude (group-norm) of the weights removed together."""
    return tp.importance.GroupMagnitudeImportance(p=2)


def taylor_importance() -> tp.importance.Importance:
    """First-order Taylor: |weight x gradient|, from a few calibration batches."""
    return tp.importance.GroupTaylorImportance()


taylor_importance.needs_gradients = True  # type: ignore[attr-defined]
