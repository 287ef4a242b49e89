import pytest

from edgekd.core.errors import ConfigError, InputError
from edgekd.validate.distillation_score import POLICIES, distillation_score, resolve_alpha

# student 2M params, teacher 10M -> size ratio 0.2; accuracy 0.855 / 0.90 = 0.95 -> 1 - 0.95 = 0.05
# edge (0.7):            0.7*0.2 + 0.3*0.05 = 0.14 + 0.015 = 0.155
# balanced (0.5):        0.5*0.2 + 0.5*0.05 = 0.10 + 0.025 = 0.125
# safety-critical (0.2): 0.2*0.2 + 0.8*0.05 = 0.04 + 0.04  = 0.08


@pytest.mark.parametrize(("policy", "alpha", "score"), [("edge", 0.7, 0.155), ("balanced", 0.5, 0.125),
                                                         ("safety-critical", 0.2, 0.08)])  # fmt: skip
def test_score_by_hand_per_policy(policy, alpha, score):
    ds = distillation_score(2e6, 1e7, 0.855, 0.90, policy=policy)
    assert ds.alpha == alpha
    assert ds.size_ratio == pytest.approx(0.2)
    assert ds.accuracy_ratio == pytest.approx(0.95)
    assert ds.score == pytest.approx(score)


def test_numeric_alpha_and_text():
    # alpha 1: size only; alpha 0: accuracy only
    assert distillation_score(2e6, 1e7, 0.855, 0.90, policy=1.0).score == pytest.approx(0.2)
    assert distillation_score(2e6, 1e7, 0.855, 0.90, policy=0).score == pytest.approx(0.05)
    assert resolve_alpha("0.3") == ("custom", 0.3)


def test_result_reports_its_inputs():
    data = distillation_score(2e6, 1e7, 0.855, 0.90, policy="edge").to_json()
    assert data == {"score": 0.155, "policy": "edge", "alpha": 0.7, "size_ratio": 0.2, "accuracy_ratio": 0.95,
                    "inputs": {"student_size": 2e6, "teacher_size": 1e7, "student_accuracy": 0.855,
                               "teacher_accuracy": 0.9}}  # fmt: skip


def test_unknown_policy_is_one_line_listing_policies():
    with pytest.raises(ConfigError) as err:
        distillation_score(1, 2, 0.5, 0.6, policy="fast")
    msg = str(err.value)
    assert "\n" not in msg and "'fast'" in msg
    assert all(name in msg for name in POLICIES)


@pytest.mark.parametrize("policy", [1.5, -0.1, "nan", True])
def test_alpha_out_of_range(policy):
    with pytest.raises(ConfigError, match="edge"):
        resolve_alpha(policy)


def test_bad_inputs():
    with pytest.raises(InputError):
        distillation_score(1, 0, 0.5, 0.6)
    with pytest.raises(InputError):
        distillation_score(1, 2, 50.0, 60.0)  # percent instead of fractions
