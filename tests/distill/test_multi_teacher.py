import math

import pytest
import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError
from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.losses.multi_teacher import MultiTeacherKDLoss, combine_teachers, teacher_weights


def test_mean_of_identical_teachers_is_the_single_teacher_soft_target():
    torch.manual_seed(0)
    t = torch.randn(4, 6)
    for temp in (1.0, 4.0):
        expected = F.softmax(t / temp, dim=1)
        torch.testing.assert_close(combine_teachers([t, t.clone(), t.clone()], "mean", temp), expected)
        torch.testing.assert_close(combine_teachers(torch.stack([t, t]), "confidence", temp), expected)


def test_mean_averages_probabilities_not_logits():
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    torch.testing.assert_close(combine_teachers([a, b], "mean"), torch.tensor([[0.5, 0.5]]))
    p = 1 / (1 + math.exp(-2.0))
    torch.testing.assert_close(combine_teachers([a, a * 0], "mean"), torch.tensor([[(p + 0.5) / 2, (1 - p + 0.5) / 2]]))


def test_confidence_weighting_favours_the_more_confident_teacher():
    confident = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    unsure = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    weights = teacher_weights([confident, unsure], "confidence")
    c1 = math.exp(10) / (math.exp(10) + 2)  # max prob of the confident teacher on sample 0
    u1 = math.e / (math.e + 2)  # of the unsure one
    assert weights[0, 0].item() == pytest.approx(c1 / (c1 + u1), rel=1e-6)  # ≈ 0.6345
    assert weights[0, 0].item() > 0.6 > weights[1, 0].item()
    u2 = math.exp(5) / (math.exp(5) + 2)  # sample 1: the second teacher is now the confident one
    assert weights[1, 1].item() == pytest.approx(u2 / (u2 + 1 / 3), rel=1e-6)
    torch.testing.assert_close(weights.sum(0), torch.ones(2))
    target = combine_teachers([confident, unsure], "confidence", temperature=2.0)
    expected0 = weights[0, 0] * F.softmax(confident[0] / 2, 0) + weights[1, 0] * F.softmax(unsure[0] / 2, 0)
    torch.testing.assert_close(target[0], expected0)
    assert target[0, 0] > combine_teachers([confident, unsure], "mean", temperature=2.0)[0, 0]


def test_multi_teacher_loss_with_identical_teachers_equals_single_teacher_kd():
    torch.manual_seed(1)
    s, t, y = torch.randn(5, 7), torch.randn(5, 7), torch.randint(0, 7, (5,))
    single = KDLoss(3.0, 0.6)(s, y, t).item()
    for mode in ("mean", "confidence"):
        assert MultiTeacherKDLoss(3.0, 0.6, mode)(s, y, [t, t]).item() == pytest.approx(single, rel=1e-5)
        assert MultiTeacherKDLoss(3.0, 0.6, mode)(s, y, torch.stack([t, t, t])).item() == pytest.approx(
            single, rel=1e-5
        )


def test_teacher_dim_one_accepts_the_trainers_per_sample_layout():
    torch.manual_seed(2)
    s, y = torch.randn(4, 5), torch.randint(0, 5, (4,))
    teachers = torch.randn(3, 4, 5)
    by_teacher = MultiTeacherKDLoss(2.0, 0.5, "confidence")(s, y, teachers)
    by_sample = MultiTeacherKDLoss(2.0, 0.5, "confidence", teacher_dim=1)(s, y, teachers.transpose(0, 1))
    assert by_sample.item() == pytest.approx(by_teacher.item(), rel=1e-6)


def test_without_teachers_or_alpha_zero_it_is_cross_entropy():
    s, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    ce = F.cross_entropy(s, y).item()
    assert MultiTeacherKDLoss()(s, y, None).item() == pytest.approx(ce)
    assert MultiTeacherKDLoss(alpha=0.0)(s, y, torch.randn(2, 3, 4)).item() == pytest.approx(ce)


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"alpha": 1.5}, {"mode": "vote"}, {"teacher_dim": 2}])
def test_bad_hyperparameters_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        MultiTeacherKDLoss(**kwargs)


def test_bad_teacher_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown multi-teacher mode"):
        combine_teachers([torch.zeros(1, 2)], "vote")
    with pytest.raises(ConfigError):
        combine_teachers([])
    with pytest.raises(ConfigError):
        combine_teachers([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(ConfigError):
        combine_teachers(torch.zeros(2, 3))
