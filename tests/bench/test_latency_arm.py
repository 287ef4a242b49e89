"""The Arm (TFLite/XNNPACK) predictor: structure, the fit to published figures, and its commands."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from torch import nn

from edgekd.bench.arm_cost import ArmCost, kernel_class
from edgekd.bench.latency_fit import fit_profile, leave_one_source_out, load_measurements, trace_rows, write_fit
from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.cli.main import main
from edgekd.config.targets import TARGETS_DIR, load_target
from edgekd.core.errors import ConfigError


@pytest.fixture(scope="module")
def a76_raw():
    """The A76 profile without its fitted constants (the structural prior alone)."""
    return load_target("cortex-a76").model_copy(update={"latency_fit": None})


def _conv_act(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), act)


def test_relu_and_relu6_fuse_free_but_hardswish_is_its_own_memory_pass(a76_raw):
    cost = ArmCost(a76_raw)
    shape = (1, 16, 32, 32)
    plain = sum(cost.op_ms(op, "fp32") for op in trace_ops(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1)), shape))
    for act in (nn.ReLU(), nn.ReLU6()):
        assert sum(cost.op_ms(op, "fp32") for op in trace_ops(_conv_act(act), shape)) == pytest.approx(plain)
    hs_ops = trace_ops(_conv_act(nn.Hardswish()), shape)
    hs = [op for op in hs_ops if op.epilogue == "hardswish"]
    assert hs  # traced as fused (ONNX Runtime would), costed as an operator (XNNPACK does not fuse it)
    extra = sum(cost.op_ms(op, "fp32") for op in hs_ops) - plain
    bytes_moved = 2 * 16 * 32 * 32 * 4  # read and write the conv's output once
    overhead = a76_raw.compute.op_overhead_us * 1e-3
    assert extra == pytest.approx(overhead + 1e3 * bytes_moved / (a76_raw.compute.mem_bandwidth_gbs * 1e9))


def test_residual_add_costs_three_passes_divided_across_threads(a76_raw):
    from edgekd.models.standard_nets import InvertedResidual

    block = InvertedResidual(24, 144, 24, 3, 1, nn.ReLU6, False).eval()
    ops = trace_ops(block, (1, 24, 56, 56))
    add = [op for op in ops if op.name == "add"]  # unfused here (its other input is no conv's)
    assert len(add) == 1 and add[0].activation_elems == 3 * 24 * 56 * 56
    cost = ArmCost(a76_raw)
    one, four = cost.op_ms(add[0], "fp32", 1), cost.op_ms(add[0], "fp32", 4)
    c = a76_raw.compute
    assert one == pytest.approx(c.op_overhead_us * 1e-3 + 1e3 * 3 * 24 * 56 * 56 * 4 / (c.mem_bandwidth_gbs * 1e9))
    memory_one = one - c.op_overhead_us * 1e-3
    memory_four = four - (c.op_overhead_us + c.thread_sync_us) * 1e-3
    assert memory_four == pytest.approx(memory_one / (1 + 3 * c.thread_scaling))


def test_kernel_classes_follow_xnnpack():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, 2), nn.Conv2d(16, 16, 3, groups=16), nn.Conv2d(16, 32, 1),
                        nn.Conv2d(32, 32, 3), nn.Flatten(), nn.Linear(32 * 11 * 11, 10))  # fmt: skip
    kinds = [kernel_class(op) for op in trace_ops(net, (1, 3, 32, 32)) if op.kind not in ("shape", "elementwise")]
    assert [k for k in kinds if k] == ["first_conv", "depthwise", "pointwise", "conv", "linear"]


def test_int8_and_threads_help_and_thread_sync_only_when_parallel(a76_raw):
    cost = ArmCost(a76_raw)
    ops = trace_ops(nn.Sequential(nn.Conv2d(64, 64, 1)), (1, 64, 56, 56))
    assert cost.predict_ms(ops, "int8", 1) < cost.predict_ms(ops, "fp32", 1)
    assert cost.predict_ms(ops, "fp32", 4) < cost.predict_ms(ops, "fp32", 1)
    tiny = trace_ops(nn.Sequential(nn.Conv2d(4, 4, 1)), (1, 4, 2, 2))  # all overhead: threads cannot help
    assert cost.predict_ms(tiny, "fp32", 4) > cost.predict_ms(tiny, "fp32", 1)


def _rows(tmp_path: Path, truth, nets: dict[str, list[tuple[str, int, int]]]) -> Path:
    """A measurements CSV whose figures are ``truth``'s predictions (two sources)."""
    path = tmp_path / "m.csv"
    cost = ArmCost(truth)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_title", "url", "device", "core", "clock_ghz", "runtime", "runtime_version", "delegate",
                    "threads", "precision", "model", "input_size", "ms", "notes"])  # fmt: skip
        for url, rows in nets.items():
            for model, size, threads in rows:
                from edgekd.models.standard_nets import build

                for precision in ("fp32", "int8"):
                    ms = cost.predict_ms(trace_ops(build(model), (1, 3, size, size)), precision, threads, 2.4)
                    w.writerow(["t", url, "board", "A76", 2.4, "tflite", "x", "xnnpack", threads, precision, model,
                                size, f"{ms:.5f}", ""])  # fmt: skip
    return path


def test_fit_recovers_known_constants_and_scores_leave_one_source_out(tmp_path, a76_raw):
    from edgekd.config.target_profile import LatencyFit, PredictorError

    truth_fit = LatencyFit(fitted="2026-01-01", source="x", n=0, compute_scale={"fp32": 0.6, "int8": 1.3},
                           depthwise_scale={"fp32": 0.8, "int8": 0.7}, bandwidth_scale=1.0, overhead_scale=1.0,
                           error=PredictorError(method="none", n=0, sources=0))  # fmt: skip
    truth = a76_raw.model_copy(update={"latency_fit": truth_fit})
    sources = {"https://a": [("mobilenet_v1_0.5", 64, 1), ("mobilenet_v3_small", 64, 1)],
               "https://b": [("mobilenet_v2_1.0", 64, 1), ("mobilenet_v1_0.5", 96, 4)]}  # fmt: skip
    path = _rows(tmp_path, truth, sources)
    rows = load_measurements(path)
    ops = trace_rows(rows)
    fit = fit_profile(a76_raw, rows, ops)
    # noise-free rows: the constants come back up to the weak prior's pull towards 1
    assert fit.compute_scale["fp32"] == pytest.approx(0.6, rel=0.15)
    assert fit.compute_scale["int8"] == pytest.approx(1.3, rel=0.15)
    scored = leave_one_source_out(a76_raw, rows, ops)
    assert len(scored) == len(rows)
    assert all(abs(pred / row.ms - 1) < 0.15 for row, pred in scored)


def test_bad_measurements_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("source_title,url\nx,y\n")
    with pytest.raises(ConfigError, match="missing columns"):
        load_measurements(bad)
    src = (TARGETS_DIR / "measurements" / "cortex-a76.csv").read_text().splitlines()
    bad.write_text("\n".join([src[0], src[1].replace("mobilenet_v1_1.0", "alexnet")]) + "\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_measurements(bad)


def test_write_fit_replaces_the_block_and_the_profile_still_loads(tmp_path):
    yaml_path = tmp_path / "cortex-a76.yaml"
    shutil.copy(TARGETS_DIR / "cortex-a76.yaml", yaml_path)
    fit = load_target(str(yaml_path)).latency_fit
    assert fit is not None
    changed = fit.model_copy(update={"bandwidth_scale": 1.5, "fitted": "2030-01-01"})
    write_fit(yaml_path, changed)
    write_fit(yaml_path, changed)  # idempotent: one block, not two
    text = yaml_path.read_text()
    assert text.count("latency_fit:") == 1 and "# Raspberry Pi 5 class board" in text  # comments kept
    again = load_target(str(yaml_path))
    assert again.latency_fit.bandwidth_scale == 1.5 and again.latency_fit.fitted == "2030-01-01"
    assert again.compute == load_target("cortex-a76").compute


def test_every_predicted_figure_of_a_fitted_arm_target_carries_its_error():
    model = LatencyModel.for_target(load_target("cortex-a76"))
    err = model.error()
    assert err["n"] >= 10 and err["method"] == "leave-one-source-out" and 0 < err["median_ratio"] < 2
    assert "published measurements" in model.describe() and "median predicted/measured" in model.describe()
    assert LatencyModel.for_target(load_target("x86-64-host")).error() is None


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_predict_json_is_machine_readable_and_adds_up(capsys):
    code, out, _ = _run(capsys, "predict", "--target", "cortex-a76", "--teacher",
                        "edgekd.models.standard_nets:mobilenet_v2", "--input-shape", "1,3,96,96",
                        "--precision", "int8", "--threads", "1", "--json")  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["evidence"] == "predicted" and result["predictor_error"]["n"] >= 10
    assert result["predicted_ms"] == pytest.approx(sum(row["ms"] for row in result["layers"]))
    assert {"pointwise", "depthwise", "first_conv"} <= {row["kernel"] for row in result["layers"]}


def test_predict_prints_figure_and_breakdown(capsys):
    code, out, _ = _run(capsys, "predict", "--target", "cortex-a76", "--top", "3")
    assert code == 0
    assert "predicted" in out and " ms" in out and "by kernel:" in out and "more layers" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--teacher", "edgekd.models.standard_nets:mobilenet_v2"), "--input-shape is needed"),
        (("--input-shape", "1,x"), "not a list of positive integers"),
        (("--teacher", "nosuchmodule:f", "--input-shape", "1,3,8,8"), "cannot import module"),
    ],
)
def test_predict_bad_input_is_one_line_exit_2(capsys, args, message):
    code, _, err = _run(capsys, "predict", *args)
    assert code == 2 and err.startswith("error: ") and "\n" not in err and message in err


def test_calibrate_from_measurements_writes_the_profile(capsys, tmp_path, a76_raw):
    yaml_path = tmp_path / "cortex-a76.yaml"
    shutil.copy(TARGETS_DIR / "cortex-a76.yaml", yaml_path)
    csv_path = _rows(tmp_path, load_target("cortex-a76"), {"https://a": [("mobilenet_v3_small", 64, 1)],
                                                           "https://b": [("mobilenet_v1_0.5", 64, 4)]})  # fmt: skip
    code, out, _ = _run(capsys, "calibrate-latency", "--target", str(yaml_path), "--from-measurements",
                        "--measurements", str(csv_path))  # fmt: skip
    assert code == 0 and "leave-one-source-out" in out and "within ±25 %" in out
    fit = load_target(str(yaml_path)).latency_fit
    assert fit.n == 4 and fit.error.sources == 2 and fit.error.n == 4


def test_calibrate_from_measurements_refuses_x86(capsys):
    code, _, err = _run(capsys, "calibrate-latency", "--target", "x86-64-host", "--from-measurements", "--dry-run")
    assert code == 2 and "Arm" in err and "\n" not in err
