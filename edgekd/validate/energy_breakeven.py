"""Energy break-even: after how many inferences does distilling a student pay for its own training energy?

Distillation costs energy once, on the training host; every inference the student serves instead of
the teacher saves a little on the target. The formula::

    distill_energy_J = distill_seconds × host_power_W
    saved_mJ         = teacher_mJ_per_inference − student_mJ_per_inference
    inferences       = ⌈ 1000 × distill_energy_J / saved_mJ ⌉          (only when saved_mJ > 0)

When the student saves nothing (``saved_mJ <= 0``) it never breaks even: ``inferences`` is ``None``
(JSON has no infinity) and ``breaks_even`` is False. A free distillation (0 s or 0 W) breaks even at
0 inferences.

The host power is the training host's profile ``power`` section (``targets/x86-64-host.yaml`` for
the machine edgekd runs on): ``idle_w + active_w_per_core × cores`` with every core busy training,
see :func:`host_power_w`. The per-inference figures should come from the same target and evidence
level (e.g. both ``estimated`` from :func:`edgekd.bench.energy.estimate_energy`); the result is as
rough as those figures.

Example:
    >>> r = breakeven(distill_seconds=600, host_power_w=7.0, teacher_mj_per_inference=3.0,
    ...               student_mj_per_inference=1.0)
    >>> r["distill_energy_j"], r["saved_mj_per_inference"], r["inferences"]
    (4200.0, 2.0, 2100000)
"""

from __future__ import annotations

import math

from edgekd.config.target_profile import PowerSpec
from edgekd.core.errors import InputError

# Quotients this close (relative) to an integer are that integer: 0.3 - 0.1 style float noise must
# not add one inference to an exact break-even point.
_REL_TOL = 1e-12


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(f"energy break-even: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def host_power_w(power: PowerSpec, cores: int) -> float:
    """Power drawn by a training host with ``cores`` busy cores: ``idle_w + active_w_per_core × cores``.

    Args:
        power: the host profile's ``power`` section, e.g. ``load_target("x86-64-host").power``.
        cores: cores busy during distillation (torch uses every core by default: the profile's ``cpu.cores``).

    Raises:
        InputError: fewer than one core.
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise InputError(f"energy break-even: cores must be an integer >= 1, got {cores!r}")
    return power.idle_w + power.active_w_per_core * cores


def _ceil(quotient: float) -> int:
    nearest = round(quotient)
    if abs(quotient - nearest) <= _REL_TOL * max(1.0, quotient):
        return int(nearest)
    return math.ceil(quotient)


def breakeven(
    distill_seconds: float, host_power_w: float, teacher_mj_per_inference: float, student_mj_per_inference: float
) -> dict:
    """Inferences after which the student's per-inference saving repays the distillation energy.

    Args:
        distill_seconds: wall time of distillation (training) on the host, seconds.
        host_power_w: the host's power while training, watts (see :func:`host_power_w`).
        teacher_mj_per_inference: the teacher's energy per inference on the target, millijoules.
        student_mj_per_inference: the deployed student's energy per inference on the target, millijoules.

    Returns:
        JSON-able dict: the inputs, ``distill_energy_j``, ``saved_mj_per_inference`` (negative when
        the student costs more), ``inferences`` (smallest count whose saving covers the distillation
        energy; ``None`` when the student saves nothing) and ``breaks_even``.

    Raises:
        InputError: a negative, NaN or infinite input.
    """
    seconds = _non_negative("distill_seconds", distill_seconds)
    watts = _non_negative("host_power_w", host_power_w)
    teacher = _non_negative("teacher_mj_per_inference", teacher_mj_per_inference)
    student = _non_negative("student_mj_per_inference", student_mj_per_inference)
    energy_j = seconds * watts
    saved_mj = teacher - student
    if energy_j == 0:
        inferences: int | None = 0
    elif saved_mj <= 0:
        inferences = None
    else:
        inferences = _ceil(1000.0 * energy_j / saved_mj)
    return {
        "distill_seconds": seconds,
        "host_power_w": watts,
        "distill_energy_j": energy_j,
        "teacher_mj_per_inference": teacher,
        "student_mj_per_inference": student,
        "saved_mj_per_inference": saved_mj,
        "inferences": inferences,
        "breaks_even": inferences is not None,
    }
