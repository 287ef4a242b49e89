import itertools
import time

import pytest

from edgekd.bench.energy import measure_energy
from edgekd.bench.energy_meters import (
    CounterMeter,
    SamplingMeter,
    battery_meter,
    find_meter,
    hwmon_meter,
    integrate_uj,
    pmic_meter,
)
from edgekd.bench.energy_sensors import HwmonChannel, SensorError


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "sampler thread made no progress"
        time.sleep(0.002)


def test_integrate_is_trapezoid_in_microjoules():
    # 0-1 s ramps 1 -> 3 W (2 J), 1-3 s holds 3 W (6 J): 8 J.
    assert integrate_uj([(0.0, 1.0), (1.0, 3.0), (3.0, 3.0)]) == pytest.approx(8e6)
    with pytest.raises(SensorError, match="too few"):
        integrate_uj([(0.0, 1.0)])


def test_counter_meter_reads_before_and_after_with_wrap():
    readings = iter([{"intel-rapl:0": 9_500}, {"intel-rapl:0": 500}])
    meter = CounterMeter(lambda: next(readings), {"intel-rapl:0": 10_000}, "rapl")
    meter.start()
    assert meter.stop() == 1_000.0
    with pytest.raises(SensorError, match="before it was started"):
        meter.stop()


def test_measure_energy_divides_by_inferences():
    readings = iter([{"pkg": 0}, {"pkg": 2_500}])
    meter = CounterMeter(lambda: next(readings), {}, "rapl")
    figure = measure_energy(meter, lambda: 5)  # 2 500 µJ over 5 inferences
    assert (figure.mj_per_inference, figure.method, figure.evidence) == (pytest.approx(0.5), "rapl", "measured")


def test_sampling_meter_integrates_a_constant_gauge():
    ticks = itertools.count()
    meter = SamplingMeter(lambda: 2.0, "fake", interval_s=0.001, clock=lambda: next(ticks) * 0.1)
    meter.start()
    _wait_for(lambda: len(meter.samples) >= 4)
    used = meter.stop()
    span = meter.samples[-1][0] - meter.samples[0][0]
    assert span > 0
    assert used == pytest.approx(2.0 * span * 1e6)  # 2 W over the sampled span


def test_sampling_meter_passes_on_sensor_errors():
    calls = itertools.count()

    def flaky() -> float:
        if next(calls) > 0:
            raise SensorError("battery status is 'Charging'; unplug the phone")
        return 1.0

    meter = SamplingMeter(flaky, "fake", interval_s=0.001)
    meter.start()
    _wait_for(lambda: meter._error is not None)
    with pytest.raises(SensorError, match="Charging"):
        meter.stop()


def test_find_meter_prefers_readable_rapl(tmp_path):
    d = tmp_path / "powercap" / "intel-rapl:0"
    d.mkdir(parents=True)
    (d / "energy_uj").write_text("100\n")
    (d / "max_energy_range_uj").write_text("1000\n")
    meter = find_meter(tmp_path / "powercap", tmp_path / "hwmon", which=lambda name: None)
    assert isinstance(meter, CounterMeter) and meter.method == "rapl" and meter.ranges == {"intel-rapl:0": 1000}
    meter.start()
    (d / "energy_uj").write_text("40\n")  # wrapped: 900 + 40
    assert meter.stop() == 940.0


def test_find_meter_falls_back_to_hwmon_then_none(tmp_path):
    dev = tmp_path / "hwmon" / "hwmon3"
    dev.mkdir(parents=True)
    (dev / "name").write_text("ina219\n")
    (dev / "power1_input").write_text("2500000\n")
    meter = find_meter(tmp_path / "powercap", tmp_path / "hwmon", which=lambda name: None)
    assert isinstance(meter, SamplingMeter) and meter.method == "hwmon:ina219:power1"
    assert meter.read_w() == pytest.approx(2.5)
    assert find_meter(tmp_path / "powercap", tmp_path / "none", which=lambda name: None) is None


def test_find_meter_skips_a_vcgencmd_without_pmic(tmp_path):
    # vcgencmd "exists" but cannot run here (or is a Pi 4 without the PMIC ADC): no meter, no error.
    assert find_meter(tmp_path / "p", tmp_path / "h", which=lambda name: "/nonexistent/vcgencmd") is None


def test_hwmon_meter_kinds(tmp_path):
    e = tmp_path / "energy1_input"
    e.write_text("1000\n")
    counter = hwmon_meter([HwmonChannel("amd_energy", "core0", "energy", e)])
    assert isinstance(counter, CounterMeter) and counter.method == "hwmon:amd_energy:core0"
    counter.start()
    e.write_text("4000\n")
    assert counter.stop() == 3000.0
    with pytest.raises(ValueError):
        hwmon_meter([HwmonChannel("a", "x", "energy", e), HwmonChannel("a", "y", "power", e)])


def test_battery_and_pmic_meters_read_through_the_given_transport():
    files = {"/sys/class/power_supply/battery/status": "Discharging",
             "/sys/class/power_supply/battery/current_now": "-250000",
             "/sys/class/power_supply/battery/voltage_now": "4000000"}  # fmt: skip
    battery = battery_meter(files.__getitem__)
    assert battery.method == "android-battery" and battery.read_w() == pytest.approx(1.0)
    pmic_text = "  VDD_CORE_A current(7)=2.0A\n  VDD_CORE_V volt(15)=0.8V\n"
    pmic = pmic_meter(lambda cmd: pmic_text)
    assert pmic.method == "pi5-pmic" and pmic.read_w() == pytest.approx(1.6)
