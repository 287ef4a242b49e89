"""Energy per inference: measured where a sensor exists, otherwise estimated from the target's power figures.

The estimate is a simple power model: ``(idle_w + active_w_per_core * threads) * latency``. It
charges the whole board's idle power to the inference, so it is an upper-bound style figure for a
device that does nothing else; it says nothing about DVFS, memory traffic or accelerators.

Measurement happens on the device, in ``bench_script.py`` (RAPL counters, or hwmon/INA power, the
Pi 5 PMIC or a discharging phone's battery sampled during the timed loop), because that is where the
sensor is; :func:`figure_from_script` turns its reading into energy over the loop / inferences.

Report entries (:func:`energy_entries`) carry both where the figure comes from and how it was made:
``evidence`` is an evidence level as for latency (``measured-device``, ``measured-host``,
``predicted``; the gate picks the best usable one), ``basis`` says ``measured`` (a sensor was read)
or ``estimated`` (the power model), ``method`` names the sensor or the model.

Example:
    >>> from edgekd.config.target_profile import PowerSpec
    >>> estimate_energy(10.0, 1, PowerSpec(idle_w=2.7, active_w_per_core=1.2)).mj_per_inference
    39.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from edgekd.config.target_profile import PowerSpec
from edgekd.core.evidence import Evidence

logger = logging.getLogger(__name__)

ENERGY_STAT = "p50"
"""The latency statistic estimates are made from (the latency model predicts only this one)."""

NO_ENERGY_EVIDENCE = (Evidence.MEASURED_EMULATED,)
"""Latency evidence no energy is derived from: emulated wall time says nothing about a device's time."""


@dataclass(frozen=True)
class EnergyFigure:
    """Energy of one inference.

    Attributes:
        mj_per_inference: millijoules per inference.
        method: how it was obtained, e.g. ``"power-model"`` or ``"rapl"``.
        evidence: ``"measured"`` (a sensor was read) or ``"estimated"`` (a power model).
    """

    mj_per_inference: float
    method: str
    evidence: Literal["measured", "estimated"]

    def to_json(self) -> dict:
        """A JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> EnergyFigure:
        """Inverse of :meth:`to_json` (ValueError when a field is missing or wrong)."""
        try:
            figure = cls(float(data["mj_per_inference"]), str(data["method"]), data["evidence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an energy figure: {data!r}") from exc
        if figure.evidence not in ("measured", "estimated") or not math.isfinite(figure.mj_per_inference):
            raise ValueError(f"not an energy figure: {data!r}")
        return figure


def power_model_w(threads: int, power: PowerSpec) -> float:
    """Board power while ``threads`` cores run the inference, W."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return power.idle_w + power.active_w_per_core * threads


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
    watts = power_model_w(threads, power)
    return EnergyFigure(mj_per_inference=watts * latency_ms, method="power-model", evidence="estimated")


def measured_energy(delta_uj: float, inferences: int, method: str = "rapl") -> EnergyFigure:
    """Energy per inference from a sensor difference over ``inferences`` runs.

    The sensor sees the whole package or board, including whatever else ran meanwhile.
    """
    if inferences < 1:
        raise ValueError("inferences must be at least 1")
    if not math.isfinite(delta_uj) or delta_uj < 0:
        raise ValueError(f"energy difference must be finite and non-negative, got {delta_uj}")
    return EnergyFigure(mj_per_inference=delta_uj / 1000.0 / inferences, method=method, evidence="measured")


def energy_entries(
    latency: list[dict],
    power: PowerSpec,
    measured: Mapping[str, EnergyFigure] | None = None,
) -> list[dict]:
    """Energy entries for a report, one per ``p50`` latency entry, plus measured ones where a sensor ran.

    Emulated latencies (``measured-emulated``) get no entry.

    Args:
        latency: latency entries (``{ms, stat, evidence, precision, threads, artifact?}``).
        power: the target profile's power figures.
        measured: sensor figures by artifact name, taken in the same run as that artifact's latency.

    Returns:
        ``{mj, evidence, basis, method, latency_evidence, latency_ms, precision, threads, artifact?}``
        per figure; ``evidence`` is the latency entry's evidence level (a measured figure comes from
        the same run as its latency), ``basis`` is ``measured`` or ``estimated``.
    """
    measured = measured or {}
    entries = []
    for lat in latency:
        if lat.get("stat") != ENERGY_STAT or lat.get("evidence") in NO_ENERGY_EVIDENCE:
            continue
        threads = int(lat["threads"])
        watts = power_model_w(threads, power)
        estimate = estimate_energy(float(lat["ms"]), threads, power)
        method = f"power-model: ({power.idle_w:g} W idle + {power.active_w_per_core:g} W/core x {threads}) x p50"
        # A measured figure goes first: the gate keeps the first entry of the best evidence level.
        figure = measured.get(lat.get("artifact", ""))
        if figure is not None and figure.evidence == "measured":
            entries.append(_entry(lat, figure.mj_per_inference, "measured", figure.method))
        entries.append(_entry(lat, estimate.mj_per_inference, "estimated", method))
        logger.debug("energy estimate %.3f mJ at %.2f W for %s", estimate.mj_per_inference, watts, lat)
    return entries


def _entry(lat: dict, mj: float, basis: str, method: str) -> dict:
    entry = {"mj": round(mj, 4), "evidence": lat["evidence"], "basis": basis, "method": method,
             "latency_evidence": lat["evidence"], "latency_ms": lat["ms"], "precision": lat["precision"],
             "threads": lat["threads"]}  # fmt: skip
    if "artifact" in lat:
        entry["artifact"] = lat["artifact"]
    return entry


def measured_by_artifact(bench_records: Mapping[str, dict]) -> dict[str, EnergyFigure]:
    """Sensor figures from bench records (``record["energy"]``, an :meth:`EnergyFigure.to_json`), by artifact.

    Records without a usable ``energy`` field (no sensor on that runner) are left out.
    """
    figures = {}
    for name, record in bench_records.items():
        data = record.get("energy")
        if not data:
            continue
        try:
            figures[name] = EnergyFigure.from_json(data)
        except ValueError as exc:
            logger.warning("ignoring energy figure of %s: %s", name, exc)
    return figures


def figure_from_script(extra: Mapping, inferences: int) -> EnergyFigure | None:
    """The sensor figure a bench script reported (``energy_uj`` over the timed loop, ``energy_method``), or None.

    Args:
        extra: a run result's extra facts (:attr:`edgekd.bench.runner_base.RunResult.extra`).
        inferences: timed inferences the energy covers.
    """
    if extra.get("energy_uj") is None:
        return None
    return measured_energy(float(extra["energy_uj"]), inferences, str(extra.get("energy_method", "unknown")))
