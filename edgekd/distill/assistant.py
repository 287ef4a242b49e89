"""Teacher-assistant (TA) chain (Mirzadeh et al., 2020): bridge a large teacher–student capacity gap.

The assistant is the teacher pruned to a size between the two — by default the geometric mean of
their parameter counts, ``sqrt(P_teacher · P_student)`` — then distilled from the teacher; the student
is distilled from the assistant. Being a pruned teacher, the assistant keeps the teacher's module
paths, so configured ``hint_layers`` apply to both stages.

Example:
    >>> plan = make_assistant(teacher, student, example, "auto")  # doctest: +SKIP
    >>> plan.params  # about sqrt(P_teacher * P_student)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.prune.pruner import PruneSettings, prune

log = logging.getLogger(__name__)

MIN_GAP = 4.0
"""``--assistant auto`` inserts an assistant only when the teacher has this many times the student's parameters."""


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


@dataclass
class AssistantPlan:
    model: nn.Module
    ratio: float
    params: int
    target_params: int
    teacher_params: int
    student_params: int

    def to_json(self) -> dict[str, float | int]:
        return {"ratio": self.ratio, "params": self.params, "target_params": self.target_params,
                "teacher_params": self.teacher_params, "student_params": self.student_params}  # fmt: skip


def assistant_ratio(
    teacher: nn.Module,
    example: torch.Tensor,
    target_params: int,
    settings: PruneSettings | None = None,
    steps: int = 7,
) -> tuple[float, nn.Module]:
    """Bisect the prune ratio whose pruned teacher has about ``target_params`` parameters."""
    settings = settings or PruneSettings()
    low, high = 0.0, settings.max_ratio
    best: tuple[float, nn.Module] | None = None
    for _ in range(steps):
        mid = (low + high) / 2
        model = prune(teacher, example, mid, settings).model
        count = param_count(model)
        if best is None or abs(count - target_params) < abs(param_count(best[1]) - target_params):
            best = (mid, model)
        if count > target_params:
            low = mid
        else:
            high = mid
    assert best is not None
    return best


def make_assistant(
    teacher: nn.Module,
    student: nn.Module,
    example: torch.Tensor,
    choice: str | float,
    settings: PruneSettings | None = None,
) -> AssistantPlan | None:
    """The assistant for ``choice`` (``"auto"`` or a prune ratio), or None when ``auto`` finds no big gap.

    Raises:
        ConfigError: The student is not smaller than the teacher, or the ratio is outside (0, 1).
    """
    p_t, p_s = param_count(teacher), param_count(student)
    if p_s >= p_t:
        raise ConfigError(f"a teacher assistant needs a student smaller than the teacher ({p_s:,} vs {p_t:,} params)")
    target = int(math.sqrt(p_t * p_s))
    if choice == "auto":
        if p_t / p_s < MIN_GAP:
            log.warning("teacher has only %.1fx the student's parameters; no assistant needed", p_t / p_s)
            return None
        ratio, model = assistant_ratio(teacher, example, target, settings)
    else:
        ratio = float(choice)
        if not 0 < ratio < 1:
            raise ConfigError(f"an assistant prune ratio must be in (0, 1) (got {ratio})")
        model = prune(teacher, example, ratio, settings or PruneSettings()).model
    plan = AssistantPlan(model, ratio, param_count(model), target, p_t, p_s)
    if not p_s < plan.params < p_t:
        raise ConfigError(
            f"assistant with {plan.params:,} params is not between the student ({p_s:,}) and the teacher ({p_t:,}); "
            "pick another assistant ratio"
        )
    log.info("teacher assistant: prune ratio %.3f, %d params (target %d)", ratio, plan.params, target)
    return plan
