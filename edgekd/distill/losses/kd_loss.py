"""Response-based knowledge distillation (Hinton et al., 2015).

``loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``

The T² factor keeps the soft-target gradients at the same scale as the hard-target ones when T
changes.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError


def kd_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(teacher ‖ student) at temperature T, averaged over the batch."""
    log_p_s = F.log_softmax(student / temperature, dim=1)
    log_p_t = F.log_softmax(teacher / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2


class KDLoss:
    """Hinton KD with temperature and alpha.

    Example:
        >>> loss = KDLoss(temperature=4.0, alpha=0.7)
        >>> value = loss(torch.zeros(2, 10), torch.tensor([1, 2]), torch.zeros(2, 10))
    """

    #: What a build wires in (see :func:`edgekd.distill.loss_setup.make_loss`): soft targets at a temperature.
    needs_features: ClassVar[bool] = False
    uses_temperature: ClassVar[bool] = True
    config_options: ClassVar[dict[str, str]] = {}

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7) -> None:
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0 (got {temperature}); typical values are 1-8")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1] (got {alpha}); it weighs soft vs hard targets")
        self.temperature = temperature
        self.alpha = alpha

    def __call__(self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
        hard = F.cross_entropy(student, labels)
        if teacher is None or self.alpha == 0.0:
            return hard
        soft = kd_divergence(student, teacher, self.temperature)
        return self.alpha * soft + (1.0 - self.alpha) * hard
