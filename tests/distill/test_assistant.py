import math

import pytest
import torch

from edgekd.core.errors import ConfigError
from edgekd.distill.assistant import make_assistant, param_count
from edgekd.models.example_teacher import ResidualCNN
from edgekd.prune.pruner import PruneSettings, prune

EXAMPLE = torch.zeros(1, 1, 28, 28)


def test_auto_assistant_sits_near_the_geometric_mean_of_sizes():
    torch.manual_seed(0)
    teacher = ResidualCNN((64, 128), 1).eval()
    student = prune(teacher, EXAMPLE, 0.85, PruneSettings()).model
    plan = make_assistant(teacher, student, EXAMPLE, "auto")
    assert plan is not None
    target = math.sqrt(param_count(teacher) * param_count(student))
    assert param_count(student) < plan.params < param_count(teacher)
    assert plan.params == pytest.approx(target, rel=0.25)
    assert set(dict(plan.model.named_modules())) == set(dict(teacher.named_modules())), "teacher's module paths"


def test_auto_skips_a_small_gap_and_a_ratio_is_used_as_given():
    torch.manual_seed(0)
    teacher = ResidualCNN((64, 128), 1).eval()
    close = prune(teacher, EXAMPLE, 0.3, PruneSettings()).model
    assert make_assistant(teacher, close, EXAMPLE, "auto") is None
    far = prune(teacher, EXAMPLE, 0.85, PruneSettings()).model
    plan = make_assistant(teacher, far, EXAMPLE, 0.5)
    assert plan.ratio == 0.5 and param_count(far) < plan.params < param_count(teacher)


def test_assistant_errors():
    teacher = ResidualCNN((16, 32), 1)
    with pytest.raises(ConfigError, match="smaller than the teacher"):
        make_assistant(teacher, ResidualCNN((32, 64), 1), EXAMPLE, "auto")
    with pytest.raises(ConfigError, match="not between"):
        make_assistant(teacher, prune(teacher, EXAMPLE, 0.5, PruneSettings()).model, EXAMPLE, 0.8)
