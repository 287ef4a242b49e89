import math

import pytest
import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError
from edgekd.core.registry import LOSSES, Registry
from edgekd.distill.combined_loss import CombinedLoss, build_loss
from edgekd.distill.feature_hooks import FeatureHooks
from edgekd.distill.losses.at_loss import ATLoss, attention_map
from edgekd.distill.losses.hint_loss import ChannelAdapter, HintLoss
from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.losses.rkd_loss import RKDLoss
from edgekd.models.example_teacher import ResidualCNN


def feats(teacher: dict, student: dict) -> dict:
    return {"teacher": teacher, "student": student}


# --- hint ---------------------------------------------------------------------------------------


def test_hint_is_zero_for_equal_features_and_widths():
    f = torch.randn(2, 3, 4, 4)
    loss = HintLoss([("a", "b")], [3], [3])
    assert isinstance(loss.adapters[0], torch.nn.Identity)
    assert loss(feats({"a": f}, {"b": f.clone()})).item() == 0.0
    assert loss(feats({"a": f}, {"b": f + 1.0})).item() == pytest.approx(1.0)


def test_hint_adapters_are_trainable_and_receive_gradients():
    torch.manual_seed(0)
    loss = HintLoss([("t1", "s1"), ("t2", "s2")], teacher_channels=[6, 5], student_channels=[3, 2])
    params = list(loss.parameters())
    assert len(params) == 4 and all(p.requires_grad for p in params)
    student_feat = torch.randn(2, 3, 4, 4, requires_grad=True)
    value = loss(
        feats({"t1": torch.randn(2, 6, 4, 4), "t2": torch.randn(2, 5)}, {"s1": student_feat, "s2": torch.randn(2, 2)})
    )
    value.backward()
    for adapter in loss.adapters:
        assert adapter.linear.weight.grad is not None and adapter.linear.weight.grad.abs().sum() > 0
        assert adapter.linear.bias.grad.abs().sum() > 0
    assert student_feat.grad.abs().sum() > 0


def test_channel_adapter_is_the_same_map_as_linear_and_1x1_conv():
    torch.manual_seed(1)
    adapter = ChannelAdapter(3, 5)
    x = torch.randn(2, 3, 4, 4)
    per_pixel = adapter(x.permute(0, 2, 3, 1).reshape(-1, 3)).view(2, 4, 4, 5).permute(0, 3, 1, 2)
    torch.testing.assert_close(adapter(x), per_pixel)
    with pytest.raises(ConfigError):
        adapter(torch.randn(2, 3, 4))


def test_hint_pools_the_larger_map_when_sizes_differ():
    student = torch.randn(2, 3, 4, 4)
    teacher = student.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 8x8, pools back to student
    loss = HintLoss([("t", "s")], [3], [3])
    assert loss(feats({"t": teacher}, {"s": student})).item() == pytest.approx(0.0, abs=1e-7)
    # larger student map is pooled too: student 8x8 of ones, teacher 4x4 of threes -> MSE 4
    assert loss(feats({"t": torch.full((2, 3, 4, 4), 3.0)}, {"s": torch.ones(2, 3, 8, 8)})).item() == pytest.approx(4.0)


def test_hint_from_models_reads_widths():
    teacher, student = ResidualCNN((8, 16), 1), ResidualCNN((4, 6), 1)
    loss = HintLoss.from_models(teacher, student, [("stages.1", "stages.1"), ("", "")], torch.zeros(1, 1, 28, 28))
    assert loss.teacher_channels == [16, 10] and loss.student_channels == [6, 10]
    assert isinstance(loss.adapters[1], torch.nn.Identity)


def test_hint_config_errors():
    with pytest.raises(ConfigError, match="one width per pair"):
        HintLoss([("a", "b")], [3, 4], [3])
    with pytest.raises(ConfigError, match="pair"):
        HintLoss([], [], [])
    with pytest.raises(ConfigError, match="declared widths"):
        HintLoss([("a", "b")], [3], [3])(feats({"a": torch.zeros(1, 3)}, {"b": torch.zeros(1, 4)}))


# --- attention transfer ---------------------------------------------------------------------------


def test_at_is_zero_when_attention_maps_are_equal():
    torch.manual_seed(2)
    t = torch.randn(2, 4, 3, 3)
    loss = ATLoss([("t", "s")])
    assert loss(feats({"t": t}, {"s": t.clone()})).item() == pytest.approx(0.0, abs=1e-6)
    # different channel count, same mean of squares over channels
    assert loss(feats({"t": t}, {"s": torch.cat([t, -t], 1)})).item() == pytest.approx(0.0, abs=1e-6)


def test_at_is_invariant_to_positive_scaling():
    torch.manual_seed(3)
    t, s = torch.randn(2, 4, 3, 3), torch.randn(2, 5, 3, 3)
    for squared in (False, True):
        loss = ATLoss([("t", "s")], squared=squared)
        base = loss(feats({"t": t}, {"s": s})).item()
        assert base > 0.01
        assert loss(feats({"t": 0.1 * t}, {"s": 37.0 * s})).item() == pytest.approx(base, rel=1e-5)


def test_at_matches_hand_computed_value_and_pools():
    student = torch.zeros(1, 2, 2, 2)
    student[0, :, 0, 0] = 3.0  # attention only on pixel 0 -> a_s = (1, 0, 0, 0)
    teacher = torch.ones(1, 3, 4, 4)  # uniform, pooled to 2x2 -> a_t = (1/2, 1/2, 1/2, 1/2)
    torch.testing.assert_close(attention_map(student), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    # ||a_s - a_t||² = 1/4 + 3/4 = 1
    assert ATLoss([("t", "s")])(feats({"t": teacher}, {"s": student})).item() == pytest.approx(1.0)
    student[0, :, 0, 0] = 0.0
    student[0, :, 0, 1] = 1.0
    student[0, :, 1, 1] = 1.0  # a_s = (0, 1, 0, 1)/√2 ; ||a_s - a_t||² = 2·1/4 + 2·(1/√2 - 1/2)²
    expected_sq = 0.5 + 2 * (1 / math.sqrt(2) - 0.5) ** 2
    value = ATLoss([("t", "s")], squared=True)(feats({"t": teacher}, {"s": student})).item()
    assert value == pytest.approx(expected_sq, rel=1e-6)


def test_at_needs_4d_features():
    with pytest.raises(ConfigError, match="B, C, H, W"):
        ATLoss([("t", "s")])(feats({"t": torch.ones(2, 3)}, {"s": torch.ones(2, 3)}))


# --- combined loss ----------------------------------------------------------------------------------


def test_combined_total_is_the_weighted_sum_of_the_parts():
    torch.manual_seed(4)
    s, t, y = torch.randn(4, 10), torch.randn(4, 10), torch.randint(0, 10, (4,))
    ft, fs = torch.randn(4, 3, 4, 4), torch.randn(4, 2, 4, 4)
    kd, at = KDLoss(4.0, 1.0), ATLoss([("x", "y")])
    loss = CombinedLoss({"kd": (0.7, kd), "at": (250.0, at)}, weight_ce=0.3)
    total = loss(s, y, t, features=feats({"x": ft}, {"y": fs}))
    manual = 0.7 * kd(s, y, t) + 250.0 * at(feats({"x": ft}, {"y": fs})) + 0.3 * F.cross_entropy(s, y)
    assert total.item() == pytest.approx(manual.item(), rel=1e-6)
    values = loss.last_values
    assert set(values) == {"kd", "at", "ce", "total"}
    assert values["total"] == pytest.approx(0.7 * values["kd"] + 250.0 * values["at"] + 0.3 * values["ce"], rel=1e-6)
    assert values["ce"] == pytest.approx(F.cross_entropy(s, y).item())


def test_combined_exposes_adapter_parameters_and_feature_paths():
    hint = HintLoss([("stages.1", "stages.0"), ("", "")], [8, 10], [4, 10])
    loss = CombinedLoss({"kd": (1.0, KDLoss()), "hint": (1.0, hint), "rkd": (1.0, RKDLoss([("stages.1", "x")]))})
    assert {id(p) for p in loss.parameters()} == {id(p) for p in hint.parameters()}
    assert loss.feature_paths() == {"teacher": ["stages.1"], "student": ["stages.0", "x"]}


def test_combined_fills_the_root_path_with_logits_so_rkd_runs_without_hooks():
    torch.manual_seed(5)
    s, t, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    loss = CombinedLoss({"rkd": (1.0, RKDLoss())})
    assert loss(s, y, t).item() == pytest.approx(RKDLoss()(feats({"": t}, {"": s})).item())
    with pytest.raises(ConfigError, match="feature loss"):
        loss(s, y, None)


def test_combined_rejects_bad_weights_and_reserved_names():
    with pytest.raises(ConfigError):
        CombinedLoss({"kd": (-1.0, KDLoss())})
    with pytest.raises(ConfigError, match="reserved"):
        CombinedLoss({"ce": (1.0, KDLoss())})
    with pytest.raises(ConfigError):
        CombinedLoss({}, weight_ce=0.0)


def local_registry() -> Registry:
    registry = Registry("losses")
    registry.register("kd", "edgekd.distill.losses.kd_loss:KDLoss")
    registry.register("at", "edgekd.distill.losses.at_loss:ATLoss")
    return registry


def test_build_loss_looks_up_names_and_routes_hyper_parameters():
    loss = build_loss(
        {"kd": 0.5, "at": 2.0, "ce": 0.25},
        registry=local_registry(),
        kd={"temperature": 2.0},
        at={"pairs": [["a", "b"]]},
    )
    assert loss.weights == {"kd": 0.5, "at": 2.0} and loss.weight_ce == 0.25
    assert loss.term("kd").temperature == 2.0 and loss.term("at").pairs == [("a", "b")]


def test_build_loss_errors_are_config_errors():
    with pytest.raises(ConfigError, match=r"'fitnet'; known: at, kd$"):
        build_loss({"fitnet": 1.0}, registry=local_registry())
    with pytest.raises(ConfigError, match="hyper-parameters given for at"):
        build_loss({"kd": 1.0}, registry=local_registry(), at={"pairs": []})
    with pytest.raises(ConfigError, match="bad hyper-parameters for loss 'kd'"):
        build_loss({"kd": 1.0}, registry=local_registry(), kd={"temprature": 2.0})
    with pytest.raises(ConfigError, match="temperature"):
        build_loss({"kd": 1.0}, registry=local_registry(), kd={"temperature": 0.0})


def test_build_loss_uses_the_project_registry_by_default():
    loss = build_loss({"kd": 1.0})
    assert isinstance(loss.term("kd"), KDLoss)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_resolves_to_a_class(name):
    assert callable(LOSSES.get(name))


def test_one_training_step_with_hooks_and_every_loss_family():
    registry = Registry("losses")
    registry.register("kd", "edgekd.distill.losses.kd_loss:KDLoss")
    registry.register("hint", "edgekd.distill.losses.hint_loss:HintLoss")
    registry.register("at", "edgekd.distill.losses.at_loss:ATLoss")
    registry.register("rkd", "edgekd.distill.losses.rkd_loss:RKDLoss")
    registry.register("spkd", "edgekd.distill.losses.spkd_loss:SPKDLoss")
    torch.manual_seed(6)
    teacher, student = ResidualCNN((8, 16), 1).eval(), ResidualCNN((4, 6), 1)
    pairs = [("stages.0", "stages.0"), ("stages.1", "stages.1")]
    spec = {"kd": 1.0, "hint": 0.5, "at": 10.0, "rkd": 1.0, "spkd": 100.0, "ce": 0.5}
    hyper = {"hint": {"pairs": pairs, "teacher_channels": [8, 16], "student_channels": [4, 6]}, "at": {"pairs": pairs}}
    loss = build_loss(spec, registry=registry, kd={"alpha": 1.0}, rkd={"pairs": [("pool", "pool")]}, **hyper)
    paths = loss.feature_paths()
    assert paths == {"teacher": ["stages.0", "stages.1", "pool"], "student": ["stages.0", "stages.1", "pool"]}
    opt = torch.optim.SGD([*student.parameters(), *loss.parameters()], lr=0.1)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    with FeatureHooks(teacher, paths["teacher"], detach=True) as th, FeatureHooks(student, paths["student"]) as sh:
        with torch.no_grad():
            teacher_logits = teacher(x)
        value = loss(student(x), y, teacher_logits, features={"teacher": th.features, "student": sh.features})
    assert sum(len(m._forward_hooks) for m in (*teacher.modules(), *student.modules())) == 0
    value.backward()
    adapter = loss.term("hint").adapters[0].linear.weight
    before = adapter.detach().clone()
    opt.step()
    assert not torch.equal(before, adapter)
    assert set(loss.last_values) == {*spec, "total"} and all(math.isfinite(v) for v in loss.last_values.values())
