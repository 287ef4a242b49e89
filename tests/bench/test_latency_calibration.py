import json

import numpy as np
import pytest
from torch import nn

from edgekd.bench.latency_calibration import (
    KINDS,
    apply_calibration,
    calibrate,
    design_row,
    fit,
    load_calibration,
    local_onnx_timer,
    micro_models,
    write_calibration,
)
from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError


@pytest.fixture(scope="module")
def host():
    return load_target("x86-64-host")


def _truth(profile, eff, overhead_us, peak_scale=1.0, precision="fp32"):
    """A 'device' whose real figures differ from the profile's: predicted by the model with those figures."""
    peak = "fp32_gflops_per_core" if precision == "fp32" else "int8_gops_per_core"
    c = profile.compute
    compute = c.model_copy(update={
        "efficiency": {**c.efficiency, precision: c.efficiency[precision].model_copy(update=eff)},
        "op_overhead_us": overhead_us,
        peak: getattr(c, peak) * peak_scale,
    })  # fmt: skip
    model = LatencyModel(profile, compute)
    return lambda m, shape, precision, threads: model.predict_ms(trace_ops(m, shape), precision, threads)


def test_fit_recovers_known_figures_from_noise_free_measurements(host):
    truth = {"conv": 0.6, "depthwise": 0.2, "pointwise": 0.5, "linear": 0.4, "elementwise": 0.7}
    data = calibrate(host, _truth(host, truth, overhead_us=4.0))
    fitted = data["precisions"]["fp32"]
    assert fitted["op_overhead_us"] == pytest.approx(4.0, rel=1e-3)
    for kind in ("conv", "depthwise", "pointwise", "elementwise"):
        assert fitted["efficiency"][kind] == pytest.approx(truth[kind], rel=1e-3), kind
    assert fitted["median_abs_error_pct"] < 0.5
    assert fitted["peak_scale"] == 1.0


def test_efficiency_above_one_moves_into_the_peak(host):
    truth = {"conv": 1.0, "depthwise": 0.5, "pointwise": 1.0, "linear": 1.0, "elementwise": 1.0}
    data = calibrate(host, _truth(host, truth, overhead_us=2.0, peak_scale=1.5))
    fitted = data["precisions"]["fp32"]
    assert fitted["peak_scale"] == pytest.approx(1.5, rel=0.03)  # a few ops change bound with the peak
    assert all(0 < v <= 1.0 for v in fitted["efficiency"].values())
    calibrated = LatencyModel(host, apply_calibration(host, data), data)
    real = _truth(host, truth, overhead_us=2.0, peak_scale=1.5)
    errors = [abs(calibrated.predict_ms(trace_ops(m, shape), "fp32", 1) / real(m, shape, "fp32", 1) - 1)
              for _, m, shape in micro_models()]  # fmt: skip
    assert np.median(errors) < 0.03  # the applied figures reproduce the fit, not just the stored numbers


def test_design_row_times_coefficients_equal_the_models_prediction(host):
    model = LatencyModel(host)
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 1))
    ops = trace_ops(net, (1, 8, 10, 10))
    row, fixed = design_row(model, ops, "fp32", 1)
    eff = host.compute.efficiency["fp32"]
    shape_us = 0.1 * host.compute.op_overhead_us  # the uncalibrated model's shape-node overhead
    coef = np.array([host.compute.op_overhead_us, shape_us, 0.0, 1.0] + [1 / getattr(eff, k) for k in KINDS])
    assert row[0] == pytest.approx(4e-3)  # three convs and the reorder of the input into the blocked layout
    assert row[2] == pytest.approx(1e-3)  # one run
    assert row @ coef + fixed == pytest.approx(model.predict_ms(ops, "fp32", 1), rel=1e-9)


def test_design_row_fits_weight_streaming_bandwidth(host):
    """A large linear layer is weight-bound: its time goes to the bandwidth column, which the fit scales."""
    model = LatencyModel(host)
    ops = trace_ops(nn.Sequential(nn.Flatten(), nn.Linear(2048, 2048)), (1, 2048, 1, 1))
    row, _ = design_row(model, ops, "fp32", 1)
    weight_ms = 1e3 * 2048 * 2048 * 4 / (host.compute.mem_bandwidth_gbs * 1e9)
    assert row[3] == pytest.approx(weight_ms, rel=0.01)
    assert row[4 + KINDS.index("linear")] == 0


def test_calibration_file_round_trip_and_model_uses_it(host, tmp_path):
    truth = {"conv": 0.3, "depthwise": 0.1, "pointwise": 0.3, "linear": 0.3, "elementwise": 0.5}
    data = calibrate(host, _truth(host, truth, overhead_us=1.0))
    write_calibration(data, host, tmp_path)
    assert load_calibration(host, tmp_path)["target"] == "x86-64-host"
    model = LatencyModel.for_target(host, tmp_path)
    assert "calibrated" in model.describe() and "median error" in model.describe()
    assert model.compute.efficiency["fp32"].conv == pytest.approx(0.3, rel=1e-3)
    assert "uncalibrated" in LatencyModel.for_target(host, tmp_path / "none").describe()


def test_calibration_for_another_target_is_refused(host, tmp_path):
    (tmp_path / "x86-64-host.calibration.json").write_text(json.dumps({"target": "cortex-a76", "precisions": {}}))
    with pytest.raises(ConfigError, match="calibrates 'cortex-a76'"):
        load_calibration(host, tmp_path)


def test_fit_error_is_reported_honestly_for_a_misfit():
    rows = np.array([[1e-3, 1.0, 0, 0, 0, 0], [1e-3, 2.0, 0, 0, 0, 0], [1e-3, 3.0, 0, 0, 0, 0]])
    measured = np.array([1.0, 5.0, 3.0])  # not linear in the work: no figures fit all three
    result = fit(rows, np.zeros(3), measured, ["a", "b", "c"], "fp32")
    assert result.median_abs_error_pct > 10
    assert len(result.points) == 3


def test_local_timer_measures_a_real_micro_model():
    _, model, shape = micro_models()[0]
    ms = local_onnx_timer(runs=5, warmup=1)(model.eval(), shape, "fp32", 1)
    assert 0 < ms < 1000


def test_int8_is_fitted_separately_with_its_own_overhead(host):
    truth = {"conv": 0.3, "depthwise": 0.05, "pointwise": 0.35, "linear": 0.2, "elementwise": 0.4}
    fp32 = _truth(host, {"conv": 0.6}, overhead_us=2.0)
    int8 = _truth(host, truth, overhead_us=7.0, precision="int8")

    def device(m, shape, precision, threads):
        return (fp32 if precision == "fp32" else int8)(m, shape, precision, threads)

    data = calibrate(host, device, precisions=("fp32", "int8"))
    fitted = data["precisions"]["int8"]
    assert fitted["op_overhead_us"] == pytest.approx(7.0, rel=0.03)  # a few ops sit at the roofline knee
    assert data["precisions"]["fp32"]["op_overhead_us"] == pytest.approx(2.0, rel=1e-3)
    for kind in ("conv", "pointwise", "elementwise"):
        assert fitted["efficiency"][kind] == pytest.approx(truth[kind], rel=0.01), kind
    model = LatencyModel(host, apply_calibration(host, data), data)
    assert "int8" in model.describe() and "fp32" in model.describe()
    _, net, shape = micro_models()[0]
    assert model.predict_ms(trace_ops(net, shape), "int8", 1) == pytest.approx(int8(net, shape, "int8", 1), rel=1e-3)


def test_local_timer_measures_an_int8_micro_model():
    _, model, shape = next(m for m in micro_models() if m[0].startswith("fc"))
    ms = local_onnx_timer(runs=5, warmup=1)(model.eval(), shape, "int8", 1)
    assert 0 < ms < 1000


def test_timer_statistic_must_be_known():
    with pytest.raises(ConfigError, match="p50 or min"):
        local_onnx_timer(stat="mean")
