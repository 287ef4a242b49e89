"""A target's latency calibration file (``targets/<name>.calibration.json``): where it is, reading it, applying it.

Apart from the fitting (:mod:`edgekd.bench.latency_calibration`) so the latency model can read a calibration
without importing the fitter, which itself builds on the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekd.config.target_profile import ComputeSpec, OpEfficiency, TargetProfile
from edgekd.config.targets import TARGETS_DIR
from edgekd.core.errors import ConfigError


def calibration_path(profile: TargetProfile, targets_dir: Path = TARGETS_DIR) -> Path:
    return targets_dir / f"{profile.name}.calibration.json"


def apply_calibration(profile: TargetProfile, data: dict) -> ComputeSpec:
    """The profile's compute figures with fitted efficiencies and overhead (per precision)."""
    c = profile.compute
    update: dict = {"efficiency": dict(c.efficiency)}
    fits = data.get("precisions", {})
    # one memory system: its bandwidth comes from the fp32 fit when there is one
    source = fits.get("fp32") or next(iter(fits.values()), {})
    update["mem_bandwidth_gbs"] = c.mem_bandwidth_gbs * source.get("mem_bandwidth_scale", 1.0)
    for precision, fitted in fits.items():
        update["efficiency"][precision] = OpEfficiency(**fitted["efficiency"])
        peak_key = "fp32_gflops_per_core" if precision == "fp32" else "int8_gops_per_core"
        update[peak_key] = getattr(c, peak_key) * fitted.get("peak_scale", 1.0)
        if precision == "fp32":
            update["op_overhead_us"] = fitted["op_overhead_us"]
    return c.model_copy(update=update)


def load_calibration(profile: TargetProfile, targets_dir: Path = TARGETS_DIR) -> dict | None:
    path = calibration_path(profile, targets_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON; delete it and re-run edgekd calibrate-latency") from exc
    if data.get("target") != profile.name:
        raise ConfigError(f"{path} calibrates '{data.get('target')}', not '{profile.name}'")
    return data
