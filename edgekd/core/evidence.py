"""Evidence levels: where a latency or energy figure came from.

One definition for the runners (which stamp their samples), the report (which stores the level next to
each figure), energy (which derives nothing from emulation) and the gate (which trusts the best level
usable for the target). A ``StrEnum``: members compare equal to, and serialise as, their plain strings,
so reports written before this enum existed read back unchanged.

Example:
    >>> Evidence("measured-host") is Evidence.MEASURED_HOST
    True
    >>> f"{Evidence.PREDICTED}"
    'predicted'
"""

from __future__ import annotations

from enum import StrEnum


class Evidence(StrEnum):
    """Where a figure came from, best first."""

    MEASURED_DEVICE = "measured-device"  # on the target board (ssh, adb)
    MEASURED_EMULATED = "measured-emulated"  # under qemu: proves the Arm kernels run, never how fast
    MEASURED_HOST = "measured-host"  # on this machine
    PREDICTED = "predicted"  # the target's latency model

    @property
    def measured(self) -> bool:
        return self is not Evidence.PREDICTED


EVIDENCE_LEVELS: tuple[str, ...] = tuple(e.value for e in Evidence)
"""Every level as a plain string, best first."""
