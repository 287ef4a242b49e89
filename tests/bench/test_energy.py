import json

import pytest

from edgekd.bench.energy import (
    EnergyFigure,
    energy_entries,
    estimate_energy,
    figure_from_script,
    measured_by_artifact,
    measured_energy,
)
from edgekd.config.target_profile import PowerSpec
from edgekd.config.targets import load_target
from edgekd.gate.evidence import best_energy

PI5 = PowerSpec(idle_w=2.7, active_w_per_core=1.2)  # targets/cortex-a76.yaml


def test_estimate_is_hand_computed():
    # (2.7 W + 1.2 W x 2 cores) x 20 ms = 5.1 W x 20 ms = 102 mJ.
    fig = estimate_energy(20.0, 2, PI5)
    assert fig.mj_per_inference == pytest.approx(102.0)
    assert fig.evidence == "estimated"
    assert fig.method == "power-model"
    # One core, 10 ms: 3.9 W x 10 ms = 39 mJ.
    assert estimate_energy(10.0, 1, PI5).mj_per_inference == pytest.approx(39.0)


def test_estimate_rejects_bad_arguments():
    with pytest.raises(ValueError):
        estimate_energy(-1.0, 1, PI5)
    with pytest.raises(ValueError):
        estimate_energy(float("nan"), 1, PI5)
    with pytest.raises(ValueError):
        estimate_energy(1.0, 0, PI5)


def test_figure_json_round_trip():
    fig = EnergyFigure(1.5, "rapl", "measured")
    assert fig.to_json() == {"mj_per_inference": 1.5, "method": "rapl", "evidence": "measured"}
    assert EnergyFigure.from_json(json.loads(json.dumps(fig.to_json()))) == fig
    for bad in ({"mj_per_inference": 1.0}, {"mj_per_inference": "x", "method": "m", "evidence": "measured"},
                {"mj_per_inference": 1.0, "method": "m", "evidence": "guessed"}):  # fmt: skip
        with pytest.raises(ValueError):
            EnergyFigure.from_json(bad)


def test_measured_energy_per_inference():
    fig = measured_energy(2_500, 5, "hwmon:ina226:VDD_IN")
    assert fig.mj_per_inference == pytest.approx(0.5)
    assert (fig.evidence, fig.method) == ("measured", "hwmon:ina226:VDD_IN")
    with pytest.raises(ValueError):
        measured_energy(100, 0)
    with pytest.raises(ValueError):
        measured_energy(-1, 3)


ART = "student-onnx-fp32.onnx"
LATENCY = [
    {"ms": 2.0, "stat": "p50", "evidence": "predicted", "runtime": "model", "precision": "fp32", "threads": 1},
    {"ms": 3.0, "stat": "p50", "evidence": "measured-host", "runtime": "ort", "precision": "fp32", "threads": 2,
     "artifact": ART},
    {"ms": 4.0, "stat": "p90", "evidence": "measured-host", "runtime": "ort", "precision": "fp32", "threads": 2,
     "artifact": ART},
]  # fmt: skip


def test_entries_estimate_every_p50_figure():
    entries = energy_entries(LATENCY, PI5)
    assert len(entries) == 2  # the p90 figure is not used
    predicted, host = entries
    # (2.7 + 1.2 x 1) W x 2 ms = 7.8 mJ; (2.7 + 1.2 x 2) W x 3 ms = 15.3 mJ.
    assert predicted["mj"] == pytest.approx(7.8) and host["mj"] == pytest.approx(15.3)
    assert predicted["evidence"] == predicted["latency_evidence"] == "predicted"
    assert host["evidence"] == host["latency_evidence"] == "measured-host"
    assert all(e["basis"] == "estimated" and e["method"].startswith("power-model") for e in entries)
    assert "2.7 W idle + 1.2 W/core x 2" in host["method"]
    assert host["artifact"] == ART and "artifact" not in predicted
    assert (host["precision"], host["threads"], host["latency_ms"]) == ("fp32", 2, 3.0)
    json.dumps(entries)  # report-ready


def test_entries_add_measured_figures_first():
    entries = energy_entries(LATENCY, PI5, {ART: EnergyFigure(0.9, "rapl", "measured"), "other": None})
    host = [e for e in entries if e["evidence"] == "measured-host"]
    assert [(e["basis"], e["method"][:11], e["mj"]) for e in host] == [
        ("measured", "rapl", 0.9),
        ("estimated", "power-model", pytest.approx(15.3)),
    ]


def test_gate_reads_the_entries():
    entries = energy_entries(LATENCY, PI5, {ART: EnergyFigure(0.9, "rapl", "measured")})
    # Host is the target: the measured figure wins over the host estimate of the same level.
    assert best_energy(entries, "fp32", host_is_target=True)["basis"] == "measured"
    # Host is not the target: only the prediction-based estimate is usable.
    chosen = best_energy(entries, "fp32", host_is_target=False)
    assert (chosen["evidence"], chosen["mj"]) == ("predicted", pytest.approx(7.8))
    assert best_energy(entries, "int8", host_is_target=True) is None


def test_entries_with_a_bundled_profile():
    profile = load_target("intel-cpu-openvino")
    entries = energy_entries(LATENCY[:1], profile.power)
    expected = (profile.power.idle_w + profile.power.active_w_per_core) * 2.0
    assert entries[0]["mj"] == pytest.approx(expected)


def test_measured_by_artifact_reads_bench_records():
    records = {
        "a.onnx": {"stats": {}, "energy": {"mj_per_inference": 1.25, "method": "rapl", "evidence": "measured"}},
        "b.onnx": {"stats": {}},
        "c.onnx": {"stats": {}, "energy": {"mj_per_inference": "n/a"}},
    }
    assert measured_by_artifact(records) == {"a.onnx": EnergyFigure(1.25, "rapl", "measured")}


def test_figure_from_script_extra():
    fig = figure_from_script({"energy_uj": 12_000, "energy_method": "rapl", "wall_s": 1.0}, 40)
    assert fig == EnergyFigure(pytest.approx(0.3), "rapl", "measured")
    assert figure_from_script({"wall_s": 1.0}, 40) is None
    assert figure_from_script({"energy_uj": None}, 40) is None


def test_no_energy_from_emulated_latency():
    emulated = {**LATENCY[0], "evidence": "measured-emulated", "artifact": "student-tflite-int8.tflite"}
    assert energy_entries([emulated], PI5) == []
