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
