import pytest
import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.feature_hooks import FeatureHooks, auto_pair, candidate_layers, match_spatial, paired_features
from edgekd.models.example_teacher import ResidualCNN


def tiny(widths=(4, 8), blocks=1) -> ResidualCNN:
    torch.manual_seed(0)
    return ResidualCNN(widths=widths, blocks_per_stage=blocks).eval()


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_captures_outputs_by_path_and_removes_hooks_on_exit():
    model = tiny()
    x = torch.randn(2, 1, 28, 28)
    with FeatureHooks(model, ["stages.1", "stem.0", "classifier"]) as hooks:
        assert all_hooks(model) == 3
        logits = model(x)
    assert all_hooks(model) == 0
    assert hooks.features["stages.1"].shape == (2, 8, 14, 14)
    assert hooks.features["stem.0"].shape == (2, 4, 28, 28)
    torch.testing.assert_close(hooks.features["classifier"], logits)
    assert model.stages[1]._forward_hooks == {} and model.classifier._forward_hooks == {}


def test_hooks_are_removed_when_the_body_raises():
    model = tiny()
    with pytest.raises(ValueError, match="boom"), FeatureHooks(model, ["stages.0", "stages.1"]):
        assert all_hooks(model) == 2
        raise ValueError("boom")
    assert all_hooks(model) == 0


def test_root_path_records_the_model_output_and_detach_option():
    model = tiny()
    x = torch.randn(2, 1, 28, 28)
    with FeatureHooks(model, [""], detach=True) as hooks:
        out = model(x)
    torch.testing.assert_close(hooks.features[""], out)
    assert not hooks.features[""].requires_grad and out.requires_grad


def test_unknown_path_is_a_one_line_config_error_with_close_matches():
    model = tiny()
    with pytest.raises(ConfigError) as err:
        FeatureHooks(model, ["stem", "stages.1.conv1"])
    message = str(err.value)
    assert "\n" not in message
    assert "'stages.1.conv1'" in message
    assert message.split("close matches: ")[1].split(", ")[0] == "stages.1.0.conv1"
    with pytest.raises(ConfigError, match="no close match"):
        FeatureHooks(model, ["zzzzzz"])
    assert all_hooks(model) == 0


def test_candidate_layers_are_block_outputs_not_their_insides():
    assert candidate_layers(tiny(blocks=2)) == ["stem.0", "stages.0.0", "stages.0.1", "stages.1.0", "stages.1.1"]
    flat = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    assert candidate_layers(flat) == ["0", "2"]


def test_auto_pair_matches_relative_depth_and_ends_at_the_deepest_block():
    teacher = ResidualCNN(widths=(4, 8, 16), blocks_per_stage=2)  # 7 candidates
    student = ResidualCNN(widths=(4, 8, 16), blocks_per_stage=1)  # 4 candidates
    assert auto_pair(teacher, student, 3) == [
        ("stages.0.1", "stages.0.0"),
        ("stages.1.1", "stages.1.0"),
        ("stages.2.1", "stages.2.0"),
    ]
    assert auto_pair(teacher, student, 1) == [("stages.2.1", "stages.2.0")]
    with pytest.raises(ConfigError, match="student"):
        auto_pair(teacher, student, 5)
    with pytest.raises(ConfigError):
        auto_pair(teacher, student, 0)


def test_paired_features_detaches_teacher_and_names_missing_paths():
    t = torch.ones(2, 3, requires_grad=True)
    s = torch.ones(2, 3, requires_grad=True)
    [(tt, ss)] = list(paired_features({"teacher": {"a": t}, "student": {"b": s}}, [("a", "b")], "x"))
    assert not tt.requires_grad and ss is s
    with pytest.raises(ConfigError, match="student feature 'c' was not captured; captured: 'b'"):
        list(paired_features({"teacher": {"a": t}, "student": {"b": s}}, [("a", "c")], "x"))


def test_match_spatial_pools_the_larger_map():
    big = torch.arange(16.0).view(1, 1, 4, 4)
    small = torch.zeros(1, 2, 2, 2)
    a, b = match_spatial(big, small)
    assert b is small
    torch.testing.assert_close(a, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    with pytest.raises(ConfigError):
        match_spatial(big, torch.zeros(1, 4))
