import pytest
import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError
from edgekd.distill.losses.kd_loss import KDLoss, kd_divergence


def test_kd_is_zero_when_student_equals_teacher():
    logits = torch.randn(5, 10)
    assert kd_divergence(logits, logits.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_t_squared_scaling_matches_hand_computation():
    torch.manual_seed(0)
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    for temp in (1.0, 2.0, 8.0):
        p_t = F.softmax(t / temp, 1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / temp, 1))).sum(1).mean()
        assert kd_divergence(s, t, temp).item() == pytest.approx(temp**2 * kl.item(), rel=1e-5)


def test_alpha_mixes_soft_and_hard_targets():
    torch.manual_seed(1)
    s, t, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    ce = F.cross_entropy(s, y)
    assert KDLoss(4.0, 0.0)(s, y, t).item() == pytest.approx(ce.item())
    assert KDLoss(4.0, 1.0)(s, y, t).item() == pytest.approx(kd_divergence(s, t, 4.0).item())
    mixed = KDLoss(4.0, 0.3)(s, y, t).item()
    assert mixed == pytest.approx(0.3 * kd_divergence(s, t, 4.0).item() + 0.7 * ce.item(), rel=1e-6)


def test_gradient_pulls_student_towards_teacher():
    s = torch.zeros(2, 10, requires_grad=True)
    t = torch.zeros(2, 10)
    t[:, 3] = 5.0
    kd_divergence(s, t, 2.0).backward()
    assert s.grad[0, 3] < 0  # increasing logit 3 lowers the loss


@pytest.mark.parametrize(("temperature", "alpha"), [(0.0, 0.5), (-1.0, 0.5), (2.0, 1.5), (2.0, -0.1)])
def test_bad_hyperparameters_are_config_errors(temperature, alpha):
    with pytest.raises(ConfigError):
        KDLoss(temperature, alpha)
