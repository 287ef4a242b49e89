"""Energy per inference: estimated from the target's power figures, or measured through RAPL.

The estimate is a simple power model: ``(idle_w + active_w_per_core * threads) * latency``. It
charges the whole board's idle power to the inference, so it is an upper-bound style figure for
a device that does nothing else; it says nothing about DVFS, memory traffic or accelerators.

Measurement uses Linux powercap RAPL counters (``/sys/class/powercap/intel-rapl:*/energy_uj``)
when the host exposes them (Intel, and AMD Zen on recent kernels, on bare metal). Virtual machines
usually do not; ``read_rapl_energy_uj`` then returns None.

Example:
    >>> from edgekd.config.target_profile import PowerSpec
    >>> estimate_energy(10.0, 1, PowerSpec(idle_w=2.7, active_w_per_core=1.2)).mj_per_inference
    39.0
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from edgekd.config.target_profile import PowerSpec

logger = logging.getLogger(__name__)

POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class EnergyFigure:
    """Energy of one inference.

    Attributes:
        mj_per_inference: millijoules per inference.
        method: how it was obtained, e.g. ``"power-model"`` or ``"rapl"``.
        evidence: ``"measured"`` (a counter was read) or ``"estimated"`` (a power model).
    """

    mj_per_inference: float
    method: str
    evidence: Literal["measured", "estimated"]

    def to_json(self) -> dict:
        """A JSON-able dict of every field."""
        return asdict(self)


def estimate_energy(latency_ms: float, threads: int, power: PowerSpec) -> EnergyFigure:
    """Estimate energy per inference from latency and the target's power figures.

    Args:
        latency_ms: latency of one inference (e.g. the p50), milliseconds.
        threads: busy cores during the inference.
        power: the target profile's idle and per-core active power.

    Returns:
        ``(idle_w + active_w_per_core * threads) * latency_ms`` — W × ms = mJ.

    Raises:
        ValueError: negative or non-finite latency, or fewer than one thread.
    """
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise ValueError(f"latency_ms must be a finite non-negative number, got {latency_ms}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    watts = power.idle_w + power.active_w_per_core * threads
    return EnergyFigure(mj_per_inference=watts * latency_ms, method="power-model", evidence="estimated")


def rapl_domains(root: Path = POWERCAP_ROOT) -> list[Path]:
    """Top-level RAPL package domains (``intel-rapl:N``; sub-zones ``intel-rapl:N:M`` excluded)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)


def read_rapl_counters(root: Path = POWERCAP_ROOT) -> dict[str, int]:
    """Each readable package domain's energy counter, microjoules, by domain name.

    Reading ``energy_uj`` often needs root since Linux 5.10 (CVE-2020-8694); unreadable counters
    are left out.
    """
    counters = {}
    for domain in rapl_domains(root):
        try:
            counters[domain.name] = int((domain / "energy_uj").read_text().strip())
        except (OSError, ValueError) as exc:
            logger.debug("cannot read %s: %s", domain / "energy_uj", exc)
    return counters


def read_rapl_energy_uj(root: Path = POWERCAP_ROOT) -> int | None:
    """Sum of the package energy counters in microjoules, or None when there are none to read.

    Counters wrap; to measure an interval, diff two :func:`read_rapl_counters` readings with
    :func:`rapl_delta_uj`.
    """
    counters = read_rapl_counters(root)
    return sum(counters.values()) if counters else None


def rapl_delta_uj(before: dict[str, int], after: dict[str, int], root: Path = POWERCAP_ROOT) -> int:
    """Energy between two :func:`read_rapl_counters` readings, allowing one wrap per domain."""
    total = 0
    for name in before.keys() & after.keys():
        delta = after[name] - before[name]
        if delta < 0:
            delta += int((root / name / "max_energy_range_uj").read_text().strip())
        total += delta
    return total


def measured_energy(delta_uj: int, inferences: int) -> EnergyFigure:
    """Energy per inference from a RAPL difference over ``inferences`` runs (package energy,
    including whatever else the host ran meanwhile)."""
    if inferences < 1:
        raise ValueError("inferences must be at least 1")
    return EnergyFigure(mj_per_inference=delta_uj / 1000.0 / inferences, method="rapl", evidence="measured")
