import math

import pytest
import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError
from edgekd.distill.losses.rkd_loss import (
    RKDLoss,
    angle_potential,
    pairwise_distance_potential,
    rkd_angle_loss,
    rkd_distance_loss,
)
from edgekd.distill.losses.spkd_loss import SPKDLoss, similarity_matrix, spkd_distance


def feats(teacher: torch.Tensor, student: torch.Tensor) -> dict:
    return {"teacher": {"t": teacher}, "student": {"s": student}}


def reference_angles(x: torch.Tensor) -> torch.Tensor:
    """The authors' direct O(B³·D) formulation, indexed [j, i, k]."""
    x = x.flatten(1)
    e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)  # e[j, i] = (x_i - x_j)/||.||
    return torch.bmm(e, e.transpose(1, 2))


def test_distance_potential_matches_direct_computation():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 2) * 4 + 1000.0  # far from the origin: the centring must keep precision
    d = torch.cdist(x.flatten(1), x.flatten(1))
    expected = d / (d.sum() / (5 * 4))
    torch.testing.assert_close(pairwise_distance_potential(x), expected, rtol=1e-4, atol=1e-4)


def test_angle_potential_matches_direct_computation():
    torch.manual_seed(1)
    x = torch.randn(6, 7)
    torch.testing.assert_close(angle_potential(x), reference_angles(x), rtol=1e-4, atol=1e-5)
    # a right angle at x_0 between x_1 and x_2
    pts = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    cos = angle_potential(pts)
    assert cos[0, 1, 2].item() == pytest.approx(0.0, abs=1e-6)
    assert cos[1, 0, 2].item() == pytest.approx(2 / math.sqrt(13), rel=1e-5)
    assert cos[0, 0, 2].item() == 0.0 and cos[0, 1, 1].item() == pytest.approx(1.0)


def test_rkd_is_zero_when_student_equals_teacher():
    torch.manual_seed(2)
    x = torch.randn(6, 4, 2, 2)
    assert RKDLoss([("t", "s")])(feats(x, x.clone())).item() == pytest.approx(0.0, abs=1e-6)


def test_rkd_distance_term_is_invariant_to_uniform_scaling():
    torch.manual_seed(3)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    base = rkd_distance_loss(s, t).item()
    assert base > 1e-3
    assert rkd_distance_loss(7.5 * s, t).item() == pytest.approx(base, rel=1e-4)
    assert rkd_distance_loss(s, 0.2 * t).item() == pytest.approx(base, rel=1e-4)
    assert rkd_distance_loss(3.0 * s, s).item() == pytest.approx(0.0, abs=1e-6)


def test_rkd_angle_term_is_invariant_to_scaling_and_translation():
    torch.manual_seed(4)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    base = rkd_angle_loss(s, t).item()
    assert base > 1e-3
    shift = torch.randn(1, 5) * 10
    assert rkd_angle_loss(4.0 * s + shift, t).item() == pytest.approx(base, rel=1e-4)
    assert rkd_angle_loss(s, 0.5 * t - shift).item() == pytest.approx(base, rel=1e-4)
    assert rkd_angle_loss(2.0 * s + 1.0, s).item() == pytest.approx(0.0, abs=1e-6)


def test_rkd_weights_combine_the_terms_and_gradients_are_finite_with_duplicates():
    torch.manual_seed(5)
    s = torch.randn(5, 4)
    s[1] = s[0]  # a duplicated sample must not produce NaN
    s.requires_grad_(True)
    t = torch.randn(5, 4)
    value = RKDLoss([("t", "s")], w_dist=2.0, w_angle=3.0)(feats(t, s))
    expected = 2.0 * rkd_distance_loss(s, t) + 3.0 * rkd_angle_loss(s, t)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_rkd_config_errors():
    with pytest.raises(ConfigError):
        RKDLoss(w_dist=-1.0)
    with pytest.raises(ConfigError, match="batch sizes"):
        RKDLoss([("t", "s")])(feats(torch.randn(4, 3), torch.randn(5, 3)))


def test_spkd_is_zero_when_equal_and_ignores_widths():
    torch.manual_seed(6)
    x = torch.randn(4, 3, 2, 2)
    loss = SPKDLoss([("t", "s")])
    assert loss(feats(x, x.clone())).item() == pytest.approx(0.0, abs=1e-7)
    # same Gram matrix up to scale with a different width -> 0 after row normalisation
    assert loss(feats(x, 5.0 * torch.cat([x, x], 1))).item() == pytest.approx(0.0, abs=1e-6)


def test_spkd_matches_hand_computed_2x2_example():
    student = torch.eye(2)  # G_s = I, rows already unit
    teacher = torch.ones(2, 2)  # G_t = [[2, 2], [2, 2]] -> rows (1/√2, 1/√2)
    torch.testing.assert_close(similarity_matrix(teacher), torch.full((2, 2), 1 / math.sqrt(2)))
    # ||G_s - G_t||_F² = 2·(1 - 1/√2)² + 2·(1/√2)² = 4 - 2√2 ; divided by b² = 4
    expected = 1 - math.sqrt(2) / 2
    assert spkd_distance(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    loss = SPKDLoss([("t", "s"), ("t", "s2")])
    both = loss({"teacher": {"t": teacher}, "student": {"s": student, "s2": teacher}})
    assert both.item() == pytest.approx(expected / 2, rel=1e-6)  # mean over pairs


def test_spkd_batch_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="batch sizes"):
        spkd_distance(torch.ones(3, 2), torch.ones(2, 2))
