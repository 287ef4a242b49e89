from pathlib import Path

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
    ops = [op for op in trace_ops(model, (1, 3, 10, 10)) if op.kind != "shape" and not op.layout and op.nodes]
    kinds = [op.kind for op in ops]
    assert kinds == ["conv", "depthwise", "pointwise", "linear"]
    assert [op.macs for op in ops] == [100 * 8 * 3 * 9, 100 * 8 * 9, 100 * 16 * 8, 1600 * 5]


def _names(ops, kind=None):
    """Names of the dispatched (own-node) operators, layout conversions left out."""
    return [op.name for op in ops if (kind is None or op.kind == kind) and not op.layout and op.nodes]


def test_bn_relu_and_residual_add_after_a_conv_are_fused():
    ops = trace_ops(ResidualCNN((8, 16), 1), (1, 1, 28, 28))
    assert not any("bn" in n or "relu" in n or "add" in n for n in _names(ops))
    assert _names(ops, "elementwise") == ["pool"]
    # a fused activation or residual add is no dispatch, but one more pass over the conv's output
    epilogues = [op for op in ops if op.name.endswith(".fused")]
    assert epilogues and all(op.nodes == 0 and op.kind == "elementwise" and op.macs > 0 for op in epilogues)
    assert any(op.name.startswith("add") for op in epilogues)


def test_unfused_bn_relu_and_add_are_costed():
    class PreAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.bn, self.relu = nn.BatchNorm2d(8), nn.ReLU()

        def forward(self, x):
            y = self.conv(self.relu(self.bn(x)))  # BN-ReLU before the conv: nothing to fuse into
            return y + x  # x comes from outside, not from a conv: no Sum fusion

    ops = trace_ops(PreAct(), (1, 8, 6, 6))
    assert _names(ops, "elementwise") == ["bn", "relu", "add"]
    assert [op.name for op in ops if op.layout] == ["conv.reorder", "add.conv.reorder"]


def test_layout_ops_cost_only_on_blocked_x86_targets(a76):
    host = LatencyModel(load_target("x86-64-host"))
    ops = trace_ops(nn.Sequential(nn.Conv2d(8, 16, 3), nn.Flatten()), (1, 8, 8, 8))
    layout = [op for op in ops if op.layout]
    assert layout and all(a76.op_ms(op, "fp32", 1) == 0 for op in layout)
    assert all(host.op_ms(op, "fp32", 1) > 0 for op in layout)


def test_conv_channels_pad_to_the_vector_width_on_x86_fp32(a76):
    host = LatencyModel(load_target("x86-64-host"))  # AVX-512: 16 fp32 lanes
    conv8, conv16 = (trace_ops(nn.Conv2d(64, c, 3, padding=1), (1, 64, 28, 28))[-1] for c in (8, 16))
    assert host.padded_macs(conv8, "fp32") == conv16.macs
    assert host.padded_macs(conv8, "int8") == conv8.macs
    assert a76.padded_macs(conv8, "fp32") == conv8.macs  # NEON: 4 lanes divide 8


def test_trace_counts_the_nodes_onnx_runtime_runs(tmp_path):
    """The traced node count is within 15 % of ONNX Runtime's optimised graph for the zoo (x86 host)."""
    import numpy as np

    from edgekd.bench.latency_model import onnx_graph_nodes
    from edgekd.export.base import SidecarInfo, get_exporter
    from edgekd.models.zoo import ZOO

    shape = (1, 1, 28, 28)
    info = SidecarInfo(tuple(f"c{i}" for i in range(10)), (0.0,), (1.0,), shape[1:])
    for name, factory in ZOO.items():
        torch.manual_seed(0)
        net = factory(width=1.0).eval()
        art = get_exporter("onnx").export(net, torch.zeros(shape), "fp32", tmp_path / name, info,
                                          np.zeros((2, *shape[1:]), np.float32))  # fmt: skip
        traced = sum(op.nodes for op in trace_ops(net, shape))
        assert abs(traced / onnx_graph_nodes(Path(art.path)) - 1) <= 0.15, name


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
    c, fit = a76.compute, a76.profile.latency_fit
    macs = 28 * 28 * 64 * 64 * 9
    eff = c.efficiency["fp32"].conv * fit.compute_scale["fp32"]  # the Arm predictor's fitted GEMM-class scale
    expected = c.op_overhead_us * fit.overhead_scale / 1e3 + 1e3 * 2 * macs / (c.fp32_gflops_per_core * 1e9 * eff)
    assert count_macs(ops) == macs
    assert a76.predict_ms(ops, "fp32", 1) == pytest.approx(expected)


def test_untraceable_model_is_a_clear_error():
    from edgekd.core.errors import InputError

    class Dynamic(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(InputError, match="cannot trace"):
        trace_ops(Dynamic(), (1, 1, 4, 4))


@pytest.mark.xfail(
    strict=True,
    reason="issue 13 item 6: fitted to published A76 figures, the teacher predicts ~21 ms int8 single-thread, "
    "under the 30 ms default budget; the example (teacher or resolution) must change, not the calibration",
)
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
    a76 = LatencyModel(profile, profile.compute, {"precisions": {}})  # the micro-model calibration path
    calibrated = LatencyModel(profile, profile.compute, {"precisions": {"int8": {"op_overhead_us": 50.0}}})
    ops = trace_ops(ResidualCNN((8, 16), 1), (1, 1, 28, 28))
    dispatches = sum(op.nodes for op in ops if op.kind != "shape" and not op.layout)  # a76: no layout ops
    extra_ms = dispatches * (50.0 - profile.compute.op_overhead_us) / 1e3
    shape_nodes = sum(op.nodes for op in ops if op.kind == "shape")
    extra_ms += shape_nodes * 0.1 * (50.0 - profile.compute.op_overhead_us) / 1e3  # shape nodes: 1/10 uncalibrated
    assert calibrated.predict_ms(ops, "int8") == pytest.approx(a76.predict_ms(ops, "int8") + extra_ms)
    assert calibrated.predict_ms(ops, "fp32") == pytest.approx(a76.predict_ms(ops, "fp32"))


def test_run_and_shape_overheads_come_from_the_calibration(a76):
    fitted = {"op_overhead_us": 1.0, "shape_overhead_us": 0.5, "run_overhead_us": 20.0}
    model = LatencyModel(a76.profile, a76.profile.compute, {"precisions": {"fp32": fitted}})
    assert model.predict_ms([], "fp32") == pytest.approx(0.020)
    from edgekd.bench.latency_model import OpCost

    assert model.predict_ms([OpCost("s", "shape", 0, 0, 0, 10)], "fp32") == pytest.approx(0.020 + 0.005)
