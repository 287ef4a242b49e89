import pytest
import torch
from torch import nn

from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
from edgekd.config.targets import load_target
from edgekd.models.example_teacher import ResidualCNN


@pytest.fixture(scope="module")
def a76():
    return LatencyModel(load_target("cortex-a76"))


def test_conv_macs_are_exact():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8, padding=1),
                          nn.Conv2d(8, 16, 1), nn.Flatten(), nn.Linear(16 * 10 * 10, 5))  # fmt: skip
    ops = trace_ops(model, (1, 3, 10, 10))
    kinds = [op.kind for op in ops]
    assert kinds == ["conv", "depthwise", "pointwise", "linear"]
    assert [op.macs for op in ops] == [100 * 8 * 3 * 9, 100 * 8 * 9, 100 * 16 * 8, 1600 * 5]


def test_residual_add_is_costed_and_bn_relu_fused():
    ops = trace_ops(ResidualCNN((8, 16), 1), (1, 1, 28, 28))
    assert any(op.kind == "elementwise" and "add" in op.name for op in ops)
    assert not any("bn" in op.name or "relu" in op.name for op in ops)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_latency_is_monotone_in_channel_count(a76, precision):
    previous = 0.0
    for width in (8, 16, 24, 32, 48, 64, 96):
        ms = a76.predict_ms(trace_ops(ResidualCNN((width, 2 * width), 1), (1, 1, 28, 28)), precision, 1)
        assert ms > previous
        previous = ms


def test_int8_faster_than_fp32_and_threads_help(a76):
    ops = trace_ops(ResidualCNN((64, 128), 2), (1, 1, 28, 28))
    assert a76.predict_ms(ops, "int8", 1) < a76.predict_ms(ops, "fp32", 1)
    assert a76.predict_ms(ops, "fp32", 4) < a76.predict_ms(ops, "fp32", 1)
    assert a76.predict_ms(ops, "fp32", 16) == a76.predict_ms(ops, "fp32", 4)  # capped at the core count


def test_compute_bound_conv_matches_roofline_by_hand(a76):
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
    ops = trace_ops(conv, (1, 64, 28, 28))
    c = a76.compute
    macs = 28 * 28 * 64 * 64 * 9
    expected = c.op_overhead_us / 1e3 + 1e3 * 2 * macs / (c.fp32_gflops_per_core * 1e9 * c.efficiency["fp32"].conv)
    assert count_macs(ops) == macs
    assert a76.predict_ms(ops, "fp32", 1) == pytest.approx(expected)


def test_untraceable_model_is_a_clear_error():
    from edgekd.errors import InputError

    class Dynamic(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(InputError, match="cannot trace"):
        trace_ops(Dynamic(), (1, 1, 4, 4))


def test_teacher_is_over_the_default_budget(a76):
    from edgekd.models.example_teacher import example_teacher

    ms = a76.predict_ms(trace_ops(example_teacher(), (1, 1, 28, 28)), "int8", 1)
    assert ms > 30 * 1.2
    assert torch.Size([1])  # keep torch import used


def test_attention_is_costed_as_matmuls_not_elementwise(a76):
    from edgekd.models.zoo import ZOO

    vit = ZOO["tiny_vit"]().eval()  # dim 64, 7x7 = 49 tokens, 2 blocks
    ops = trace_ops(vit, (1, 1, 28, 28))
    attn = [op for op in ops if op.name.startswith("blocks.0.attn.")]
    by = {op.name.rsplit(".", 1)[1]: op for op in attn}
    tokens, e = 49, 64
    assert by["in_proj"].kind == "linear" and by["in_proj"].macs == tokens * e * 3 * e
    assert by["qk"].macs == by["av"].macs == tokens * tokens * e
    assert by["out_proj"].macs == tokens * e * e and by["out_proj"].weight_elems == e * e
    assert by["softmax"].kind == "elementwise"
    # the attention matmuls scale with the embedding width, so a wider ViT costs more
    wide = trace_ops(ZOO["tiny_vit"](width=2.0).eval(), (1, 1, 28, 28))

    def matmul_macs(ops):
        return sum(op.macs for op in ops if op.name.startswith("blocks.0.attn.") and op.kind == "linear")

    # projections (3 in, 1 out) scale with dim^2, the two token matmuls with dim
    assert matmul_macs(attn) == 4 * tokens * e * e + 2 * tokens * tokens * e
    assert matmul_macs(wide) == 4 * tokens * (2 * e) ** 2 + 2 * tokens * tokens * (2 * e)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_latency_is_monotone_in_width_for_every_zoo_arch(a76, precision):
    from edgekd.models.zoo import ZOO

    for name, factory in ZOO.items():
        times = [a76.predict_ms(trace_ops(factory(width=w).eval(), (1, 1, 28, 28)), precision, 1) for w in (0.5, 1, 2)]
        assert times == sorted(times) and times[0] < times[-1], name


def test_each_precision_uses_its_own_fitted_overhead(a76):
    profile = a76.profile
    calibrated = LatencyModel(profile, profile.compute, {"precisions": {"int8": {"op_overhead_us": 50.0}}})
    ops = trace_ops(ResidualCNN((8, 16), 1), (1, 1, 28, 28))
    extra_ms = len(ops) * (50.0 - profile.compute.op_overhead_us) / 1e3
    assert calibrated.predict_ms(ops, "int8") == pytest.approx(a76.predict_ms(ops, "int8") + extra_ms)
    assert calibrated.predict_ms(ops, "fp32") == pytest.approx(a76.predict_ms(ops, "fp32"))
