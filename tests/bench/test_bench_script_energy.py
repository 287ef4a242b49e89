"""The bench script reads RAPL package counters around its timed loop (stdlib only, no sensor needed here)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from edgekd.bench import bench_script
from edgekd.bench.energy import figure_from_script


def _domain(root: Path, name: str, energy: int, max_range: int = 1000) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def test_only_package_domains_are_summed_and_a_wrap_is_undone(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_script, "POWERCAP", tmp_path)
    p0 = _domain(tmp_path, "intel-rapl:0", 900)
    p1 = _domain(tmp_path, "intel-rapl:1", 100)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a core sub-domain: already inside package 0
    domains = bench_script._rapl_packages()
    assert domains == [p0, p1]
    before = bench_script._rapl_read(domains)
    (p0 / "energy_uj").write_text("50\n")  # wrapped: 900 -> 1000 -> 50 is 150 uJ
    (p1 / "energy_uj").write_text("400\n")
    assert bench_script._rapl_delta_uj(domains, before, bench_script._rapl_read(domains)) == 150 + 300


def test_no_powercap_means_no_energy(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_script, "POWERCAP", tmp_path / "absent")
    assert bench_script._rapl_packages() == []


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3)).eval()
    net(torch.zeros(1, 1, 8, 8))
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(net, (torch.randn(1, 1, 8, 8),), str(path), dynamo=False, input_names=["x"])
    return path


@pytest.mark.parametrize("counter", [0, 12345])
def test_a_local_run_reports_the_counter_and_the_build_turns_it_into_a_figure(tmp_path, counter, onnx_model):
    """End to end through LocalRunner: a static fake counter gives 0 uJ over the loop, labelled rapl."""
    from edgekd.bench.local_runner import LocalRunner
    from edgekd.bench.runner_base import BenchSettings

    root = tmp_path / "powercap"
    _domain(root, "intel-rapl:0", counter)
    model = onnx_model
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("EDGEKD_POWERCAP_ROOT", str(root))
    try:
        with LocalRunner() as runner:
            result = runner.run(runner.push(model), BenchSettings(runs=5, warmup=1))
    finally:
        monkeypatch.undo()
    assert result.extra["energy_uj"] == 0.0
    assert result.extra["energy_method"].startswith("rapl")
    figure = figure_from_script(result.extra, len(result.samples_ms))
    assert figure is not None and figure.evidence == "measured" and figure.mj_per_inference == 0.0


PMIC_TEXT = """\
     3V7_WL_SW_A current(0)=0.10000000A
     3V7_WL_SW_V volt(8)=3.70000000V
     VDD_CORE_A current(7)=2.00000000A
     VDD_CORE_V volt(15)=0.80000000V
     EXT5V_V volt(24)=5.10000000V
"""


def test_pmic_rails_pair_current_and_voltage():
    rails = bench_script.pmic_rails(PMIC_TEXT)
    assert rails["VDD_CORE"] == {"A": 2.0, "V": 0.8}
    assert rails["EXT5V"] == {"V": 5.1}  # input voltage only: not a load rail
    assert sum(r["V"] * r["A"] for r in rails.values() if "A" in r and "V" in r) == pytest.approx(0.37 + 1.6)


def test_power_source_prefers_hwmon_then_pmic_then_a_discharging_battery(tmp_path, monkeypatch):
    hwmon, battery = tmp_path / "hwmon", tmp_path / "battery"
    monkeypatch.setattr(bench_script, "HWMON", hwmon)
    monkeypatch.setattr(bench_script, "BATTERY", battery)
    monkeypatch.setattr(bench_script.shutil, "which", lambda name: None)
    assert bench_script.power_source() is None
    battery.mkdir()
    (battery / "current_now").write_text("-500000\n")  # discharging: negative on many phones
    (battery / "voltage_now").write_text("4000000\n")
    (battery / "status").write_text("Charging\n")
    assert bench_script.power_source() is None  # a charger's current says nothing about the load
    (battery / "status").write_text("Discharging\n")
    method, read = bench_script.power_source()
    assert method.startswith("battery") and read() == pytest.approx(2.0)
    monkeypatch.setattr(bench_script.shutil, "which", lambda name: "/usr/bin/vcgencmd")
    monkeypatch.setattr(bench_script, "_pmic_watts", lambda: 1.97)
    method, read = bench_script.power_source()
    assert method.startswith("pi5-pmic") and read() == pytest.approx(1.97)
    (hwmon / "hwmon0").mkdir(parents=True)
    (hwmon / "hwmon0" / "power1_input").write_text("3500000\n")  # microwatts
    (hwmon / "hwmon0" / "power1_label").write_text("ina219\n")
    method, read = bench_script.power_source()
    assert method == "hwmon power sampling (ina219)" and read() == pytest.approx(3.5)


def test_sampler_integrates_mean_power_over_wall_time():
    readings = iter([2.0, 4.0] + [3.0] * 1000)
    with bench_script.PowerSampler(lambda: next(readings), period_s=0.001) as sampler:
        time.sleep(0.05)
    assert len(sampler.samples) >= 2
    mean = sum(sampler.samples) / len(sampler.samples)
    assert sampler.energy_uj(2.0) == pytest.approx(mean * 2.0 * 1e6)
    assert bench_script.PowerSampler(lambda: 1.0).energy_uj(1.0) is None  # never started: no samples


def test_a_board_with_an_ina_sensor_reports_measured_energy(tmp_path, onnx_model):
    """End to end through LocalRunner with a fake hwmon tree standing in for a board's INA219."""
    from edgekd.bench.local_runner import LocalRunner
    from edgekd.bench.runner_base import BenchSettings

    (tmp_path / "hwmon" / "hwmon3").mkdir(parents=True)
    (tmp_path / "hwmon" / "hwmon3" / "power1_input").write_text("5000000\n")  # 5 W
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("EDGEKD_POWERCAP_ROOT", str(tmp_path / "no-rapl"))
    monkeypatch.setenv("EDGEKD_HWMON_ROOT", str(tmp_path / "hwmon"))
    try:
        with LocalRunner() as runner:
            result = runner.run(runner.push(onnx_model), BenchSettings(runs=20, warmup=1, min_seconds=0.1))
    finally:
        monkeypatch.undo()
    assert result.extra["energy_method"].startswith("hwmon power sampling (hwmon3/power1_input)")
    figure = figure_from_script(result.extra, len(result.samples_ms))
    assert figure is not None and figure.evidence == "measured"
    # 5 W over the timed loop's wall time, shared by its inferences
    expected_mj = 5.0 * result.extra["wall_s"] * 1000 / len(result.samples_ms)
    assert figure.mj_per_inference == pytest.approx(expected_mj, rel=1e-6)
