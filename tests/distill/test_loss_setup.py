import pytest
import torch
from pydantic import ValidationError

from edgekd.config.build_config import DistillConfig
from edgekd.core.errors import ConfigError, InputError
from edgekd.distill.loss_setup import make_loss
from edgekd.models.example_teacher import ResidualCNN

X = torch.zeros(2, 1, 28, 28)


@pytest.fixture
def models():
    torch.manual_seed(0)
    return ResidualCNN((16, 32), 1).eval(), ResidualCNN((8, 16), 1).eval()


def test_config_builds_weighted_terms_with_kd_hyper_parameters(models):
    cfg = DistillConfig(losses={"kd": 1.0, "hint": 0.5, "rkd": 2.0}, weight_ce=0.3, temperature=2.0, alpha=0.9,
                        loss_options={"rkd": {"w_angle": 0.0}})  # fmt: skip
    loss = make_loss(cfg, *models, X)
    assert loss.weights == {"kd": 1.0, "hint": 0.5, "rkd": 2.0} and loss.weight_ce == 0.3
    assert (loss.term("kd").temperature, loss.term("kd").alpha) == (2.0, 0.9)
    assert loss.term("rkd").w_angle == 0.0
    # no hint_layers given: the deepest blocks are paired by relative depth, adapter 16 -> 32 channels
    assert loss.term("hint").pairs == [("stages.1.0", "stages.1.0")]
    assert (loss.term("hint").student_channels, loss.term("hint").teacher_channels) == ([16], [32])
    assert loss.feature_paths() == {"teacher": ["stages.1.0"], "student": ["stages.1.0"]}


def test_given_layers_are_used_and_unknown_ones_list_close_matches(models):
    cfg = DistillConfig(losses={"kd": 1.0, "at": 1.0}, hint_layers=[("stages.0", "stages.0")])
    assert make_loss(cfg, *models, X).term("at").pairs == [("stages.0", "stages.0")]
    bad = DistillConfig(losses={"kd": 1.0, "at": 1.0}, hint_layers=[("stages.0", "stage.0")])
    with pytest.raises(ConfigError, match=r"unknown module path 'stage.0' in student; close matches: .*stages.0"):
        make_loss(bad, *models, X)


def test_several_teachers_turn_kd_into_multi(models):
    loss = make_loss(DistillConfig(losses={"kd": 1.0}, multi_mode="confidence"), *models, X, n_teachers=2)
    assert list(loss.weights) == ["multi"]
    assert (loss.term("multi").mode, loss.term("multi").teacher_dim) == ("confidence", 1)
    with pytest.raises(ConfigError, match="at least two teachers"):
        make_loss(DistillConfig(losses={"multi": 1.0}), *models, X)


def test_mismatched_classes_and_unknown_losses(models):
    with pytest.raises(InputError, match="classes"):
        make_loss(DistillConfig(), models[0], ResidualCNN((8, 8), 1, num_classes=4), X)
    # refused when the config is read, before any stage runs ...
    with pytest.raises(ValidationError, match="unknown loss 'fitnet'; known: at, hint, kd"):
        DistillConfig(losses={"fitnet": 1.0})
    # ... and by make_loss for a config built without validation
    with pytest.raises(ConfigError, match="unknown loss 'fitnet'; known: at, hint, kd"):
        make_loss(DistillConfig.model_construct(**{**DistillConfig().__dict__, "losses": {"fitnet": 1.0}}), *models, X)
