"""An independent count of what the latency trace costs: ``FlopCounterMode`` over a real forward.

The trace (:func:`edgekd.bench.latency_trace.trace_ops`) finds convolutions, linears and matmuls in
the ``torch.fx`` graph; :func:`check_macs` counts the same work from the operators PyTorch actually
dispatches (convolution, mm, bmm, addmm, ...), per module. A gap over ``tolerance`` means the latency
model misses work: the result names the modules whose multiply-accumulates the trace did not cost,
as data for the report.

Example:
    >>> check = check_macs(model, (1, 3, 96, 96))  # doctest: +SKIP
    >>> check.ok, check.uncosted  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgekd.bench.latency_trace import OpCost, count_macs, trace_ops

log = logging.getLogger(__name__)

TOLERANCE = 0.03


@dataclass(frozen=True)
class MacCheck:
    """Traced vs counted multiply-accumulates; ``uncosted``: modules with counted work the trace missed."""

    traced: int
    counted: int
    uncosted: tuple[str, ...]
    tolerance: float = TOLERANCE

    @property
    def gap(self) -> float:
        """The share of counted MACs the trace does not cost, ``(counted - traced) / counted``, at least 0.

        The trace may cost more than the counter sees (PyTorch's counter has no formula for CPU
        fused attention kernels): that is not uncosted work.
        """
        return max(0, self.counted - self.traced) / self.counted if self.counted else 0.0

    @property
    def ok(self) -> bool:
        return self.gap <= self.tolerance

    def warning(self) -> str | None:
        if self.ok:
            return None
        where = f"; uncosted: {', '.join(self.uncosted[:8])}" if self.uncosted else ""
        return (f"latency model costs {self.traced:,} of {self.counted:,} MACs counted by PyTorch "
                f"({self.gap:.0%} gap){where}")  # fmt: skip

    def as_dict(self) -> dict:
        return {"traced_macs": self.traced, "counted_macs": self.counted, "gap": round(self.gap, 4),
                "ok": self.ok, "uncosted": list(self.uncosted), "warning": self.warning()}  # fmt: skip


def counted_macs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int]]:
    """Total MACs of one forward and each module's own MACs (excluding its children), by module path."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(input_shape))
    model.train(was_training)
    totals: dict[str, int] = {}
    for key, per_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        path = key.partition(".")[2]  # drop the root's class name
        totals[path] = sum(per_op.values()) // 2
    own = dict(totals)
    for path, macs in totals.items():
        if path:
            own[path.rpartition(".")[0] if "." in path else ""] = own.get(
                path.rpartition(".")[0] if "." in path else "", 0) - macs  # fmt: skip
    return counter.get_total_flops() // 2, {p: m for p, m in own.items() if m > 0}


def _covered(path: str, ops: list[OpCost]) -> bool:
    return any(op.macs and op.kind != "elementwise" and (op.name == path or op.name.startswith(f"{path}."))
               for op in ops)  # fmt: skip


def check_macs(model: nn.Module, input_shape: tuple[int, ...], tolerance: float = TOLERANCE) -> MacCheck:
    """Cross-check the trace's MACs against PyTorch's own count; warns (and returns) what it missed."""
    ops = trace_ops(model, input_shape)
    total, own = counted_macs(model, input_shape)
    uncosted = tuple(path or "<root>" for path in own if not _covered(path, ops))
    check = MacCheck(count_macs(ops), total, uncosted, tolerance)
    if not check.ok:
        log.warning("%s", check.warning())
    return check
