"""Energy meters: measure the energy of a run from the sensors in :mod:`edgekd.bench.energy_sensors`.

A :class:`CounterMeter` reads cumulative counters (RAPL, hwmon energy) before and after; a
:class:`SamplingMeter` samples an instantaneous power gauge (hwmon power, Pi 5 PMIC, Android battery)
in a background thread and integrates. :func:`find_meter` picks the best one this machine has.

Example:
    >>> meter = find_meter()  # doctest: +SKIP
    >>> if meter is not None:  # doctest: +SKIP
    ...     figure = measure_energy(meter, lambda: run_inferences(500))  # edgekd.bench.energy
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from edgekd.bench.energy_sensors import (
    HWMON_ROOT,
    POWERCAP_ROOT,
    HwmonChannel,
    ReadText,
    SensorError,
    counter_delta_uj,
    hwmon_channels,
    rapl_problem,
    rapl_ranges,
    read_battery_w,
    read_hwmon,
    read_pmic_w,
    read_rapl_counters,
)

logger = logging.getLogger(__name__)


class EnergyMeter(Protocol):
    """Measures the energy used between :meth:`start` and :meth:`stop`.

    Attributes:
        method: how, for reports (``rapl``, ``hwmon:ina226``, ``pi5-pmic``, ``android-battery``).
    """

    method: str

    def start(self) -> None:
        """Begin measuring."""
        ...

    def stop(self) -> float:
        """End measuring; microjoules used since :meth:`start`."""
        ...


class CounterMeter:
    """A meter over cumulative counters (RAPL, hwmon energy): read before and after.

    Args:
        read: returns ``{domain: µJ}``.
        ranges: each domain's wrap value (a domain that wraps without one is an error).
        method: label for reports.
    """

    def __init__(self, read: Callable[[], dict[str, int]], ranges: dict[str, int], method: str) -> None:
        self.read, self.ranges, self.method = read, ranges, method
        self._before: dict[str, int] | None = None

    def start(self) -> None:
        self._before = self.read()

    def stop(self) -> float:
        if self._before is None:
            raise SensorError("energy meter stopped before it was started")
        before, self._before = self._before, None
        return float(counter_delta_uj(before, self.read(), self.ranges))


class SamplingMeter:
    """A meter over an instantaneous power gauge, sampled in a background thread.

    Energy is the trapezoid integral of the samples over time, so a run must last at least two
    sampling intervals (the gauge's own update rate limits accuracy further).

    Args:
        read_w: returns the current power in watts.
        method: label for reports.
        interval_s: time between samples.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        read_w: Callable[[], float],
        method: str,
        interval_s: float = 0.05,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.read_w, self.method, self.interval_s, self.clock = read_w, method, interval_s, clock
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: SensorError | None = None

    def _sample(self) -> None:
        self.samples.append((self.clock(), self.read_w()))

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self._sample()
        except SensorError as exc:
            self._error = exc

    def start(self) -> None:
        self.samples, self._error = [], None
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="edgekd-energy-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> float:
        if self._thread is None:
            raise SensorError("energy meter stopped before it was started")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        self._sample()
        return integrate_uj(self.samples)


def integrate_uj(samples: list[tuple[float, float]]) -> float:
    """Trapezoid integral of ``(seconds, watts)`` samples, microjoules.

    Raises:
        SensorError: fewer than two samples.
    """
    if len(samples) < 2:
        raise SensorError("too few power samples to integrate; run longer (more runs or --min-seconds)")
    joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(samples))
    return joules * 1e6


def hwmon_meter(channels: list[HwmonChannel]) -> EnergyMeter:
    """A meter summing hwmon channels of one kind: a counter for energy inputs, sampled for power inputs."""
    kinds = {c.kind for c in channels}
    if len(kinds) != 1:
        raise ValueError(f"hwmon_meter needs channels of one kind, got {sorted(kinds)}")
    method = f"hwmon:{channels[0].device}:{'+'.join(c.label for c in channels)}"
    if kinds == {"energy"}:
        return CounterMeter(lambda: {c.label: read_hwmon(c) for c in channels}, {}, method)
    return SamplingMeter(lambda: sum(read_hwmon(c) for c in channels) * 1e-6, method)


def find_meter(
    powercap: Path = POWERCAP_ROOT,
    hwmon: Path = HWMON_ROOT,
    which: Callable[[str], str | None] = shutil.which,
) -> EnergyMeter | None:
    """The best local meter: readable RAPL, hwmon energy, hwmon power, the Pi 5 PMIC; None if none.

    Each unusable source is logged at debug level with the reason.
    """
    problem = rapl_problem(powercap)
    if problem is None:
        return CounterMeter(lambda: read_rapl_counters(powercap), rapl_ranges(powercap), "rapl")
    logger.debug("%s", problem)
    channels = hwmon_channels(hwmon)
    for kind in ("energy", "power"):
        chosen = [c for c in channels if c.kind == kind]
        if not chosen:
            continue
        device = chosen[0].device  # one device only: several could measure overlapping rails
        return hwmon_meter([c for c in chosen if c.device == device])
    if which("vcgencmd") is not None:
        try:
            read_pmic_w()  # older Pis have vcgencmd but no PMIC ADC
            return pmic_meter()
        except SensorError as exc:
            logger.debug("%s", exc)
    logger.debug("no hwmon power/energy inputs under %s and no vcgencmd", hwmon)
    return None


def battery_meter(read_text: ReadText | None = None, interval_s: float = 0.25) -> SamplingMeter:
    """A meter over an Android battery (``read_text`` reads a phone file, e.g. through ``adb shell cat``).

    The battery gauge updates a few times a second at most: runs shorter than a few seconds give
    coarse figures. The phone must run on battery (SensorError otherwise).
    """
    return SamplingMeter(lambda: read_battery_w(read_text), "android-battery", interval_s=interval_s)


def pmic_meter(run: Callable[[list[str]], str] | None = None, interval_s: float = 0.1) -> SamplingMeter:
    """A meter over the Raspberry Pi 5 PMIC (``run`` executes a command there, e.g. over ssh)."""
    return SamplingMeter(lambda: read_pmic_w(run), "pi5-pmic", interval_s=interval_s)
