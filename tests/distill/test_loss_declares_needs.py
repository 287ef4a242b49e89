"""A loss added through the registry (as an entry point would) is wired by what it declares, not by its name."""

from typing import ClassVar

import torch

from edgekd.config.build_config import DistillConfig
from edgekd.core import registry as reg
from edgekd.distill.loss_setup import make_loss
from edgekd.models.example_teacher import ResidualCNN


class SharpKD:
    """A third-party soft-target loss: it declares that it takes the temperature (and alpha)."""

    needs_features: ClassVar[bool] = False
    uses_temperature: ClassVar[bool] = True

    def __init__(self, temperature: float, alpha: float) -> None:
        self.temperature, self.alpha = temperature, alpha

    def __call__(self, student, labels, teacher):
        return torch.nn.functional.mse_loss(student / self.temperature, teacher / self.temperature)


def test_plugin_loss_gets_the_configured_temperature(monkeypatch):
    monkeypatch.setattr(reg.LOSSES, "_targets", {**reg.LOSSES._targets, "sharpkd": f"{__name__}:SharpKD"})
    monkeypatch.setattr(reg.LOSSES, "_loaded", dict(reg.LOSSES._loaded))
    teacher, student = ResidualCNN((8, 16), 1).eval(), ResidualCNN((4, 8), 1).eval()
    cfg = DistillConfig(losses={"sharpkd": 1.0}, temperature=3.0, alpha=0.4)
    loss = make_loss(cfg, teacher, student, torch.zeros(2, 1, 28, 28))
    assert isinstance(loss.term("sharpkd"), SharpKD)
    assert (loss.term("sharpkd").temperature, loss.term("sharpkd").alpha) == (3.0, 0.4)
