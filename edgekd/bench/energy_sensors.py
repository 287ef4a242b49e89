"""Energy sensors: small readers and parsers for what a machine can measure (RAPL, hwmon, Pi 5 PMIC, battery).

Two kinds of sensor:

* **counters** accumulate energy; read before and after a run: Intel/AMD RAPL through powercap
  (``/sys/class/powercap/intel-rapl:N/energy_uj``, µJ, wraps at ``max_energy_range_uj``) and hwmon
  ``energyN_input`` (µJ, e.g. ``amd_energy``);
* **gauges** give instantaneous power; sampled in a thread during the run and integrated: hwmon
  ``powerN_input`` (µW, e.g. INA219/INA226 boards), Raspberry Pi 5 PMIC rails (``vcgencmd
  pmic_read_adc``), Android battery current × voltage (sysfs ``current_now``/``voltage_now`` or
  ``dumpsys battery``).

Every parser is pure (text in, numbers out) so it is tested on captured text; readers take a root
folder or a ``read_text`` callable, so an adb or ssh runner can pass a remote one. Meters that turn
these readings into the energy of a run live in :mod:`edgekd.bench.energy_meters`.

Example:
    >>> parse_pmic_adc("   VDD_CORE_A current(7)=2.01733000A")
    {'VDD_CORE': {'A': 2.01733}}
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import RunnerError

logger = logging.getLogger(__name__)

POWERCAP_ROOT = Path("/sys/class/powercap")
HWMON_ROOT = Path("/sys/class/hwmon")
POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")

ReadText = Callable[[str], str]
"""Reads one (possibly remote) file and returns its text; OSError when it cannot."""


class SensorError(RunnerError):
    """A sensor exists but could not give a usable reading (permissions, a charging phone, too short a run)."""


# --- RAPL (powercap) ----------------------------------------------------------------------------


def rapl_domains(root: Path = POWERCAP_ROOT) -> list[Path]:
    """Top-level RAPL package domains (``intel-rapl:N``; sub-zones ``intel-rapl:N:M`` excluded)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)


def read_rapl_counters(root: Path = POWERCAP_ROOT) -> dict[str, int]:
    """Each readable package domain's energy counter, microjoules, by domain name.

    Reading ``energy_uj`` needs root since Linux 5.10 (CVE-2020-8694); unreadable counters are left
    out (see :func:`rapl_problem` for why).
    """
    counters = {}
    for domain in rapl_domains(root):
        try:
            counters[domain.name] = int((domain / "energy_uj").read_text().strip())
        except (OSError, ValueError) as exc:
            logger.debug("cannot read %s: %s", domain / "energy_uj", exc)
    return counters


def rapl_problem(root: Path = POWERCAP_ROOT) -> str | None:
    """Why RAPL cannot be used here (one line), or None when every package counter is readable."""
    domains = rapl_domains(root)
    if not domains:
        return f"no RAPL package domains under {root} (virtual machines and most Arm boards have none)"
    unreadable = [d.name for d in domains if d.name not in read_rapl_counters(root)]
    if unreadable:
        return (f"RAPL counters {', '.join(unreadable)} are not readable (root-only since Linux 5.10); "
                f"run as root or make {root}/intel-rapl:*/energy_uj readable")  # fmt: skip
    return None


def rapl_ranges(root: Path = POWERCAP_ROOT) -> dict[str, int]:
    """Each package domain's wrap-around value ``max_energy_range_uj`` (domains without one are left out)."""
    ranges = {}
    for domain in rapl_domains(root):
        try:
            ranges[domain.name] = int((domain / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError) as exc:
            logger.debug("cannot read %s: %s", domain / "max_energy_range_uj", exc)
    return ranges


def counter_delta_uj(before: dict[str, int], after: dict[str, int], ranges: dict[str, int]) -> int:
    """Energy between two counter readings, summed over the domains read both times; one wrap allowed.

    Raises:
        SensorError: a counter went backwards and its wrap range is unknown.
    """
    total = 0
    for name in sorted(before.keys() & after.keys()):
        delta = after[name] - before[name]
        if delta < 0:
            if name not in ranges:
                raise SensorError(f"energy counter {name} went backwards and its wrap range is unknown")
            delta += ranges[name]
        total += delta
    return total


# --- hwmon ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HwmonChannel:
    """One hwmon power or energy input.

    Attributes:
        device: the hwmon device's ``name`` (e.g. ``ina226``, ``amd_energy``).
        label: the channel's ``*_label`` text, else its file stem (``power1``).
        kind: ``"power"`` (µW, instantaneous) or ``"energy"`` (µJ, cumulative).
        path: the ``*_input`` file.
    """

    device: str
    label: str
    kind: str
    path: Path


def hwmon_channels(root: Path = HWMON_ROOT) -> list[HwmonChannel]:
    """Every ``power*_input`` and ``energy*_input`` under ``root/hwmon*``, sorted by device then file."""
    if not root.is_dir():
        return []
    channels = []
    for dev in sorted(root.glob("hwmon*")):
        try:
            device = (dev / "name").read_text().strip()
        except OSError:
            device = dev.name
        for path in sorted(dev.glob("*_input")):
            m = re.fullmatch(r"(power|energy)(\d+)_input", path.name)
            if m is None:
                continue
            label_file = dev / f"{m.group(1)}{m.group(2)}_label"
            try:
                label = label_file.read_text().strip()
            except OSError:
                label = f"{m.group(1)}{m.group(2)}"
            channels.append(HwmonChannel(device, label, m.group(1), path))
    return channels


def read_hwmon(channel: HwmonChannel) -> int:
    """The channel's raw value: µW for power, µJ for energy.

    Raises:
        SensorError: the file cannot be read or holds no integer.
    """
    try:
        return int(channel.path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise SensorError(f"cannot read {channel.path}: {exc}") from exc


# --- Raspberry Pi 5 PMIC --------------------------------------------------------------------------


def parse_pmic_adc(text: str) -> dict[str, dict[str, float]]:
    """Parse ``vcgencmd pmic_read_adc`` into ``{rail: {"A": amps, "V": volts}}``.

    Lines look like ``   VDD_CORE_A current(7)=2.01733000A`` and ``   VDD_CORE_V volt(15)=0.77830000V``;
    others are ignored. The parser is the bench script's (which runs on the board itself).

    Raises:
        SensorError: no rail line in ``text``.
    """
    from edgekd.bench.bench_script import pmic_rails

    rails = pmic_rails(text)
    if not rails:
        raise SensorError("vcgencmd pmic_read_adc printed no rail readings (is this a Raspberry Pi 5?)")
    return rails


def pmic_power_w(rails: dict[str, dict[str, float]]) -> float:
    """Sum of volts × amps over the rails that report both (the PMIC's outputs; its own conversion
    losses and the 5 V input rail ``EXT5V`` are not included)."""
    return sum(r["V"] * r["A"] for r in rails.values() if "V" in r and "A" in r)


def read_pmic_w(run: Callable[[list[str]], str] | None = None) -> float:
    """Current Pi 5 board power from its PMIC, W; ``run`` executes a command and returns stdout."""
    text = (run or _run)(["vcgencmd", "pmic_read_adc"])
    return pmic_power_w(parse_pmic_adc(text))


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SensorError(f"cannot run {' '.join(cmd)}: {exc}") from exc


# --- Android battery ------------------------------------------------------------------------------


def parse_dumpsys_battery(text: str) -> dict[str, str]:
    """``adb shell dumpsys battery`` as ``{key: value}`` (keys lower-cased, e.g. ``voltage``, ``usb powered``)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and value.strip():
            fields[key.strip().lower()] = value.strip()
    return fields


def battery_power_w(current_ua: float, voltage_uv: float) -> float:
    """Battery power from sysfs units (µA, µV). The current's sign differs between vendors
    (negative while discharging on many), so its magnitude is used."""
    return abs(current_ua) * 1e-6 * voltage_uv * 1e-6


def dumpsys_battery_w(text: str) -> float:
    """Battery power from ``dumpsys battery``: ``voltage`` (mV) × ``current now`` (mA, printed by some
    vendor builds only, e.g. Samsung).

    Raises:
        SensorError: the phone is on external power, or the text lacks voltage or current.
    """
    fields = parse_dumpsys_battery(text)
    plugged = [k for k in ("ac powered", "usb powered", "wireless powered") if fields.get(k) == "true"]
    if plugged:
        raise SensorError(f"phone is on external power ({plugged[0]}); unplug it and use adb over Wi-Fi")
    if "voltage" not in fields or "current now" not in fields:
        raise SensorError("dumpsys battery shows no 'current now'; read /sys/class/power_supply/battery instead")
    return battery_power_w(float(fields["current now"]) * 1000.0, float(fields["voltage"]) * 1000.0)


def read_battery_w(read_text: ReadText | None = None, root: str = str(POWER_SUPPLY_ROOT / "battery")) -> float:
    """Battery power from ``current_now`` (µA) and ``voltage_now`` (µV), W.

    Args:
        read_text: reads a file (an adb runner passes ``adb shell cat``); default: local files.
        root: the power-supply folder.

    Raises:
        SensorError: the phone is charging, or the files are missing or not numbers.
    """
    read = read_text or (lambda p: Path(p).read_text())
    try:
        status = read(f"{root}/status").strip()
        current, voltage = (float(read(f"{root}/{f}").strip()) for f in ("current_now", "voltage_now"))
    except (OSError, ValueError) as exc:
        raise SensorError(f"cannot read battery current/voltage under {root}: {exc}") from exc
    if status in ("Charging", "Full"):
        raise SensorError(f"battery status is '{status}'; unplug the phone (adb over Wi-Fi) to measure energy")
    return battery_power_w(current, voltage)
