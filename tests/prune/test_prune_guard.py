"""Pruning that checks itself: every zoo structure prunes or is left whole with a reason; failures
inside Torch-Pruning or in the pruned model's forward are repaired by leaving the layers whole."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgekd.models.zoo import ZOO
from edgekd.models.zoo_field import FIELD_ZOO
from edgekd.prune import pruner as pruner_module
from edgekd.prune.prune_guard import CLASSIFIER, hazards
from edgekd.prune.pruner import PruneSettings, prune

EXAMPLE = torch.randn(1, 1, 28, 28)
ALL = {**ZOO, **FIELD_ZOO}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", list(ALL))
def test_every_zoo_structure_prunes_runs_and_says_what_it_left_whole(arch):
    torch.manual_seed(0)
    model = ALL[arch]().eval()
    result = prune(model, EXAMPLE, 0.5, PruneSettings())
    assert result.model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert _params(result.model) < 0.8 * _params(model)
    assert CLASSIFIER in result.left_whole.values()
    assert all(isinstance(reason, str) and reason for reason in result.left_whole.values())


def test_window_attention_reshapes_are_found_before_pruning():
    found = hazards(FIELD_ZOO["window_vit"]().eval(), EXAMPLE)
    assert {"blocks.0.attn.qkv", "blocks.0.attn.proj", "patch_embed"} <= set(found)
    assert "blocks.0.mlp.0" not in found  # the MLP's hidden width stays prunable


class WidthCheck(nn.Module):
    """Scales by a constant of the channel count it was built with: Torch-Pruning cannot see it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.linspace(0.5, 1.5, self.width).view(1, -1, 1, 1)


class HardCodedView(nn.Module):
    """Untraceable by fx (a data-dependent branch) and a module that hard-codes its input's channel count."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 32, 3, padding=1)
        self.b = nn.Conv2d(32, 32, 3, padding=1)
        self.check = WidthCheck(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:
            x = self.a(x)
        return self.fc(self.check(self.b(x)).mean((2, 3)))


def test_a_pruned_model_that_breaks_at_run_time_is_repaired_by_leaving_the_layer_whole():
    result = prune(HardCodedView().eval(), EXAMPLE, 0.5, PruneSettings())
    assert result.model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert result.model.b.out_channels == 32
    assert "the pruned model failed" in result.left_whole["b"]
    assert result.model.a.out_channels < 32  # the rest is still pruned


def test_a_failure_inside_torch_pruning_names_the_layer_and_is_not_a_traceback(monkeypatch):
    original = pruner_module.ClampedPruner.estimate_importance

    def failing(self, group):
        if group[0].dep.target.module is self.model.stages[0][0].conv1:
            raise ZeroDivisionError("integer division or modulo by zero")
        return original(self, group)

    monkeypatch.setattr(pruner_module.ClampedPruner, "estimate_importance", failing)
    from edgekd.models.example_teacher import ResidualCNN

    model = ResidualCNN((32, 64), blocks_per_stage=1).eval()
    result = prune(model, EXAMPLE, 0.5, PruneSettings())
    reason = result.left_whole["stages.0.0.conv1"]
    assert "Torch-Pruning failed" in reason and "ZeroDivisionError" in reason and "\n" not in reason
    assert result.model.stages[0][0].conv1.out_channels == 32
    assert result.model.stages[1][0].conv1.out_channels < 64
