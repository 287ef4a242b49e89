"""Best-evidence selection: device > host (only when the host is the target) > predicted; never emulated."""

import pytest

from edgekd.config.targets import load_target
from edgekd.gate.evidence import best_energy, best_latency, deployed_latency, entry_at_level
from tests.gate.report_factory import lat, make_report


def test_local_target_uses_host_measurement_over_prediction():
    report = make_report("x86-64-host", host=(4.0, 5.0, 6.0), predicted=7.0)
    entry = deployed_latency(report, "p50", load_target("x86-64-host").measured_locally)
    assert (entry["evidence"], entry["ms"]) == ("measured-host", 4.0)


def test_ssh_target_ignores_host_measurement_and_uses_prediction():
    report = make_report("cortex-a76", host=(4.0, 5.0, 6.0), predicted=25.0)
    entry = deployed_latency(report, "p50", load_target("cortex-a76").measured_locally)
    assert (entry["evidence"], entry["ms"]) == ("predicted", 25.0)


def test_emulated_is_never_used_even_when_nothing_else_exists():
    report = make_report("cortex-a76", host=None, emulated=(900.0, 950.0, 990.0), predicted=None)
    assert deployed_latency(report, "p50", host_is_target=False) is None
    report = make_report("cortex-a76", host=None, emulated=(900.0, 950.0, 990.0), predicted=25.0)
    assert deployed_latency(report, "p50", host_is_target=False)["evidence"] == "predicted"


@pytest.mark.parametrize("target", ["x86-64-host", "cortex-a76"])
def test_device_measurement_wins_everywhere(target):
    report = make_report(target, device=(20.0, 22.0, 29.0), host=(4.0, 5.0, 6.0), predicted=25.0)
    entry = deployed_latency(report, "p90", load_target(target).measured_locally)
    assert (entry["evidence"], entry["ms"]) == ("measured-device", 22.0)


@pytest.mark.parametrize(("stat", "ms"), [("p50", 4.0), ("p90", 5.0), ("p99", 6.0)])
def test_measured_figure_at_the_chosen_percentile(stat, ms):
    assert deployed_latency(make_report(), stat, host_is_target=True)["ms"] == ms


def test_prediction_stands_in_for_any_percentile():
    entries = [lat(7.0, "p50", "predicted", "fp32")]
    assert best_latency(entries, "student-onnx-fp32", "fp32", "p99", host_is_target=True)["ms"] == 7.0


def test_other_artifacts_and_precisions_are_not_the_deployed_one():
    entries = [
        lat(1.0, "p50", "measured-host", "int8", "student-onnx-int8.onnx"),  # other precision
        lat(2.0, "p50", "measured-host", "fp32", "student-openvino-fp32.xml"),  # other format
        lat(3.0, "p50", "measured-host", "fp32", "teacher onnx-fp32"),
        lat(9.0, "p50", "predicted", "int8"),
    ]
    assert best_latency(entries, "student-onnx-fp32", "fp32", "p50", host_is_target=True) is None
    entries.append(lat(4.0, "p50", "measured-host", "fp32", "student-onnx-fp32.onnx"))
    assert best_latency(entries, "student-onnx-fp32", "fp32", "p50", host_is_target=True)["ms"] == 4.0


def test_entry_at_level_finds_exactly_that_level():
    report = make_report(host=(4.0, 5.0, 6.0), predicted=7.0)
    entries = report["student"]["latency"]
    assert entry_at_level(entries, "student-onnx-fp32", "fp32", "p90", "measured-host")["ms"] == 5.0
    assert entry_at_level(entries, "student-onnx-fp32", "fp32", "p50", "measured-device") is None


def test_energy_uses_the_same_evidence_order():
    entries = [
        {"mj": 1.0, "evidence": "measured-emulated", "precision": "int8"},
        {"mj": 2.0, "evidence": "measured-host", "precision": "int8"},
        {"mj": 3.0, "evidence": "predicted", "precision": "int8"},
        {"mj": 0.5, "evidence": "measured-device", "precision": "fp32"},
    ]
    assert best_energy(entries, "int8", host_is_target=False)["mj"] == 3.0
    assert best_energy(entries, "int8", host_is_target=True)["mj"] == 2.0
    assert best_energy(entries, "fp32", host_is_target=False)["mj"] == 0.5
