from pathlib import Path

import pytest

from edgekd.bench.energy_sensors import (
    HwmonChannel,
    SensorError,
    battery_power_w,
    counter_delta_uj,
    dumpsys_battery_w,
    hwmon_channels,
    parse_dumpsys_battery,
    parse_pmic_adc,
    pmic_power_w,
    rapl_problem,
    rapl_ranges,
    read_battery_w,
    read_hwmon,
    read_pmic_w,
    read_rapl_counters,
)
from edgekd.errors import RunnerError

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5, written from the documented format: one line per
# PMIC ADC channel, `<RAIL>_A current(<n>)=<amps>A` or `<RAIL>_V volt(<n>)=<volts>V`, right-aligned.
PMIC_TEXT = """\
     3V7_WL_SW_A current(0)=0.00390372A
       3V3_SYS_A current(1)=0.05172960A
       1V8_SYS_A current(2)=0.16006200A
      DDR_VDD2_A current(3)=0.02049600A
      DDR_VDDQ_A current(4)=0.00000000A
       1V1_SYS_A current(5)=0.18837900A
       0V8_SYS_A current(6)=0.20976300A
      VDD_CORE_A current(7)=0.78095200A
       3V3_DAC_A current(17)=0.00030525A
       3V3_ADC_A current(18)=0.00000000A
       0V8_AON_A current(16)=0.00000000A
          HDMI_A current(22)=0.00000000A
     3V7_WL_SW_V volt(8)=3.71302000V
       3V3_SYS_V volt(9)=3.31216000V
       1V8_SYS_V volt(10)=1.79893000V
      DDR_VDD2_V volt(11)=1.10879000V
      DDR_VDDQ_V volt(12)=0.60024420V
       1V1_SYS_V volt(13)=1.10415000V
       0V8_SYS_V volt(14)=0.80073260V
      VDD_CORE_V volt(15)=0.72075700V
       3V3_DAC_V volt(20)=3.30476000V
       3V3_ADC_V volt(21)=3.30537000V
       0V8_AON_V volt(19)=0.79970700V
          HDMI_V volt(23)=5.15930000V
         EXT5V_V volt(24)=5.15930000V
          BATT_V volt(25)=0.00000000V
"""

# `adb shell dumpsys battery` from a vendor build that adds `current now` (mA); AOSP prints
# voltage in mV and no current.
DUMPSYS_TEXT = """\
Current Battery Service state:
  AC powered: false
  USB powered: {usb}
  Wireless powered: false
  Max charging current: 0
  Charge counter: 2779000
  status: 3
  health: 2
  present: true
  level: 84
  scale: 100
  voltage: 4000
  temperature: 326
  technology: Li-ion
  current now: -500
"""


def _fake_powercap(root: Path, domains: dict[str, tuple[int, int]]) -> None:
    for name, (energy, max_range) in domains.items():
        d = root / name
        d.mkdir(parents=True)
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")


def test_rapl_sums_package_domains_only(tmp_path):
    _fake_powercap(tmp_path, {"intel-rapl:0": (1000, 10_000), "intel-rapl:1": (500, 20_000), "intel-rapl:0:0": (7, 5)})
    assert read_rapl_counters(tmp_path) == {"intel-rapl:0": 1000, "intel-rapl:1": 500}
    assert rapl_ranges(tmp_path) == {"intel-rapl:0": 10_000, "intel-rapl:1": 20_000}
    assert rapl_problem(tmp_path) is None


def test_rapl_absent_says_so(tmp_path):
    assert read_rapl_counters(tmp_path / "missing") == {}
    assert "no RAPL package domains" in rapl_problem(tmp_path)


def test_rapl_permission_error_is_reported_not_raised(tmp_path, monkeypatch):
    _fake_powercap(tmp_path, {"intel-rapl:0": (1000, 10_000), "intel-rapl:1": (500, 10_000)})
    real = Path.read_text

    def root_only(self, *args, **kwargs):
        if self == tmp_path / "intel-rapl:1" / "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", root_only)
    assert read_rapl_counters(tmp_path) == {"intel-rapl:0": 1000}
    problem = rapl_problem(tmp_path)
    assert "intel-rapl:1" in problem and "root" in problem and "\n" not in problem


def test_counter_delta_handles_one_wrap_per_domain():
    before = {"intel-rapl:0": 9_000, "intel-rapl:1": 100}
    after = {"intel-rapl:0": 1_000, "intel-rapl:1": 600}  # domain 0 wrapped at 10 000
    assert counter_delta_uj(before, after, {"intel-rapl:0": 10_000, "intel-rapl:1": 10_000}) == 2_000 + 500
    # A domain read only once (it became unreadable) is left out.
    assert counter_delta_uj({"a": 5, "b": 1}, {"a": 7}, {}) == 2
    with pytest.raises(SensorError, match="wrap range is unknown"):
        counter_delta_uj({"a": 9}, {"a": 1}, {})


def test_sensor_error_is_a_runner_error():
    assert issubclass(SensorError, RunnerError)


def _fake_hwmon(root: Path) -> None:
    ina = root / "hwmon0"
    ina.mkdir(parents=True)
    (ina / "name").write_text("ina226\n")
    (ina / "power1_input").write_text("1500000\n")  # µW
    (ina / "power1_label").write_text("VDD_IN\n")
    (ina / "in1_input").write_text("5000\n")  # voltage: not a power or energy channel
    amd = root / "hwmon1"
    amd.mkdir()
    (amd / "name").write_text("amd_energy\n")
    (amd / "energy1_input").write_text("123456789\n")  # µJ
    (amd / "energy2_input").write_text("42\n")


def test_hwmon_lists_power_and_energy_channels(tmp_path):
    _fake_hwmon(tmp_path)
    channels = hwmon_channels(tmp_path)
    assert [(c.device, c.label, c.kind) for c in channels] == [
        ("ina226", "VDD_IN", "power"),
        ("amd_energy", "energy1", "energy"),
        ("amd_energy", "energy2", "energy"),
    ]
    assert read_hwmon(channels[0]) == 1_500_000
    assert read_hwmon(channels[1]) == 123_456_789
    assert hwmon_channels(tmp_path / "missing") == []


def test_hwmon_unreadable_channel_raises_sensor_error(tmp_path):
    with pytest.raises(SensorError, match="cannot read"):
        read_hwmon(HwmonChannel("ina226", "x", "power", tmp_path / "power9_input"))


def test_pmic_parser_pairs_rails():
    rails = parse_pmic_adc(PMIC_TEXT)
    assert len(rails) == 14  # 12 rails with current and voltage, plus EXT5V and BATT (voltage only)
    assert rails["VDD_CORE"] == {"A": pytest.approx(0.780952), "V": pytest.approx(0.720757)}
    assert rails["EXT5V"] == {"V": pytest.approx(5.1593)}
    paired = [r for r in rails.values() if set(r) == {"A", "V"}]
    assert len(paired) == 12


def test_pmic_power_is_sum_of_rail_products():
    text = "  VDD_CORE_A current(7)=2.00000000A\n  VDD_CORE_V volt(15)=0.75000000V\n" \
           "  3V3_SYS_A current(1)=0.10000000A\n  3V3_SYS_V volt(9)=3.30000000V\n" \
           "  EXT5V_V volt(24)=5.10000000V\n"  # fmt: skip
    # 2.0 A x 0.75 V + 0.1 A x 3.3 V = 1.5 + 0.33 W; the 5 V input has no current and is not counted.
    assert pmic_power_w(parse_pmic_adc(text)) == pytest.approx(1.83)
    assert read_pmic_w(lambda cmd: text if cmd == ["vcgencmd", "pmic_read_adc"] else "") == pytest.approx(1.83)
    # The full capture lands in the Pi 5's idle range (about 1-3 W of rail power).
    assert 0.5 < pmic_power_w(parse_pmic_adc(PMIC_TEXT)) < 3.0


def test_pmic_parser_rejects_other_output():
    with pytest.raises(SensorError, match="Raspberry Pi 5"):
        parse_pmic_adc('error=1 error_msg="Command not registered"\n')


def test_battery_power_from_sysfs_units():
    # 350 mA x 3.9 V = 1.365 W, whatever the sign of the current.
    assert battery_power_w(-350_000, 3_900_000) == pytest.approx(1.365)
    assert battery_power_w(350_000, 3_900_000) == pytest.approx(1.365)


def _fake_battery(root: Path, status: str) -> None:
    root.mkdir(parents=True)
    (root / "status").write_text(f"{status}\n")
    (root / "current_now").write_text("-350000\n")
    (root / "voltage_now").write_text("3900000\n")


def test_battery_sysfs_reader(tmp_path):
    _fake_battery(tmp_path / "battery", "Discharging")
    assert read_battery_w(root=str(tmp_path / "battery")) == pytest.approx(1.365)


def test_battery_reader_with_a_remote_read_function():
    files = {"/sys/class/power_supply/battery/status": "Discharging\n",
             "/sys/class/power_supply/battery/current_now": "200000\n",
             "/sys/class/power_supply/battery/voltage_now": "4000000\n"}  # fmt: skip
    assert read_battery_w(files.__getitem__) == pytest.approx(0.8)


def test_battery_refuses_a_charging_phone(tmp_path):
    _fake_battery(tmp_path / "battery", "Charging")
    with pytest.raises(SensorError, match="unplug"):
        read_battery_w(root=str(tmp_path / "battery"))
    with pytest.raises(SensorError, match="cannot read"):
        read_battery_w(root=str(tmp_path / "missing"))


def test_dumpsys_battery_parser():
    fields = parse_dumpsys_battery(DUMPSYS_TEXT.format(usb="false"))
    assert fields["voltage"] == "4000" and fields["usb powered"] == "false" and fields["current now"] == "-500"
    assert "current battery service state" not in fields  # a heading, no value
    # 500 mA x 4.000 V = 2.0 W.
    assert dumpsys_battery_w(DUMPSYS_TEXT.format(usb="false")) == pytest.approx(2.0)


def test_dumpsys_battery_refuses_usb_power_and_missing_current():
    with pytest.raises(SensorError, match="usb powered"):
        dumpsys_battery_w(DUMPSYS_TEXT.format(usb="true"))
    aosp = "\n".join(ln for ln in DUMPSYS_TEXT.format(usb="false").splitlines() if "current now" not in ln)
    with pytest.raises(SensorError, match="current now"):
        dumpsys_battery_w(aosp)


def test_this_host_powercap_state_is_described():
    # This VM (AMD EPYC guest) has no /sys/class/powercap; on bare metal the answer may be None.
    problem = rapl_problem()
    assert problem is None or ("RAPL" in problem and "\n" not in problem)
