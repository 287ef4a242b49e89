"""Per-target roofline latency model.

Each operator costs ``overhead x nodes + max(compute time, memory time)``, plus a fixed cost per run:

* compute time = FLOPs / (peak per core x efficiency of the op kind x thread speed-up); on x86
  targets a conv's output channels are padded to one vector of fp32 lanes (the blocked layout)
* memory time  = bytes moved (activations in/out + weights) / memory bandwidth
* shape-only nodes (reshape arithmetic, attention head split) cost a small dispatch each

Operators come from :func:`~edgekd.bench.latency_trace.trace_ops`, which applies the runtimes'
fusions. Figures come from the target profile, optionally overridden by a calibration file written
by ``edgekd calibrate-latency`` (efficiencies, overheads, peak and bandwidth scale).

Arm (``aarch64``) targets are costed as TFLite/XNNPACK runs them instead (:mod:`edgekd.bench.arm_cost`:
its kernel classes, fused clamps, memory-bound adds spread over threads), with the constants the
profile's ``latency_fit`` fitted to published device measurements; :meth:`LatencyModel.error`
gives that fit's leave-one-source-out error, which every ``predicted`` figure should carry.

Example:
    >>> ops = trace_ops(model, (1, 1, 28, 28))  # doctest: +SKIP
    >>> LatencyModel(profile).predict_ms(ops, "int8", threads=1)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgekd.bench.arm_cost import ArmCost, kernel_class
from edgekd.bench.latency_trace import OpCost, align_to_graph, count_macs, onnx_graph_nodes, trace_ops
from edgekd.config.target_profile import ComputeSpec, Precision, TargetProfile

log = logging.getLogger(__name__)

BYTES = {"fp32": 4, "int8": 1}
__all__ = ["BYTES", "LatencyModel", "OpCost", "align_to_graph", "count_macs", "onnx_graph_nodes", "trace_ops"]


class LatencyModel:
    """Predicts latency on a target from its profile's compute figures.

    A calibration (``edgekd calibrate-latency``) adds, per precision, the fitted per-operator overhead,
    the overhead of a shape-only node and a fixed cost per inference (session run, input/output copies).
    """

    def __init__(self, profile: TargetProfile, compute: ComputeSpec | None = None, calibration: dict | None = None):
        self.profile = profile
        self.compute = compute or profile.compute
        self.calibration = calibration
        fitted = (calibration or {}).get("precisions", {})
        default = self.compute.op_overhead_us
        self.overhead_us = {p: fitted.get(p, {}).get("op_overhead_us", default) for p in ("fp32", "int8")}
        # uncalibrated, a shape node costs a tenth of an operator dispatch and a run costs nothing extra
        self.shape_overhead_us = {p: fitted.get(p, {}).get("shape_overhead_us", 0.1 * self.overhead_us[p])
                                  for p in ("fp32", "int8")}  # fmt: skip
        self.run_overhead_us = {p: fitted.get(p, {}).get("run_overhead_us", 0.0) for p in ("fp32", "int8")}
        # share of the bandwidth a conv or linear layer's own traffic (weight streaming) reaches
        self.weight_share = {p: fitted.get(p, {}).get("weight_bandwidth_share", 1.0) for p in ("fp32", "int8")}
        # x86 runtimes (ONNX Runtime's NCHWc, oneDNN) run convs in a blocked layout of one vector of
        # fp32 channels: a conv's output channels are padded to it, and reorders join plain-layout ops
        self.blocked_layout = profile.arch == "x86_64"
        self.channel_block = max(1, profile.cpu.simd_width_bits // 32) if self.blocked_layout else 1
        self.arm = ArmCost(profile) if profile.arch == "aarch64" and calibration is None else None

    @classmethod
    def for_target(cls, profile: TargetProfile, targets_dir: Path | None = None) -> LatencyModel:
        """The profile's figures, refined by ``targets/<name>.calibration.json`` when one exists."""
        from edgekd.bench.latency_calibration_file import apply_calibration, load_calibration
        from edgekd.config.targets import TARGETS_DIR

        data = load_calibration(profile, targets_dir or TARGETS_DIR)
        if data is None:
            return cls(profile)
        return cls(profile, apply_calibration(profile, data), data)

    def error(self) -> dict | None:
        """The predictor's measured error (predicted / measured) on published device figures, or None."""
        fit = self.profile.latency_fit
        return fit.error.model_dump() if self.arm is not None and fit is not None else None

    def describe(self) -> str:
        """Where the figures come from, for reports (e.g. 'calibrated 2026-11-24, median error 6.1 %')."""
        if self.arm is not None:
            fit = self.profile.latency_fit
            if fit is None:
                return f"latency model ({self.profile.name}, TFLite/XNNPACK structure, profile figures, unfitted)"
            e = fit.error
            err = "error unknown"
            if e.median_ratio is not None:
                err = (
                    f"{e.method} on {e.n} published measurements: median predicted/measured "
                    f"{e.median_ratio:.2f}, {100 * (e.within_25pct or 0):.0f} % within ±25 %"
                )
            return f"latency model ({self.profile.name}, TFLite/XNNPACK structure, fitted {fit.fitted}; {err})"
        if not self.calibration:
            return f"latency model ({self.profile.name}, profile figures, uncalibrated)"
        errors = ", ".join(f"{p} {v['median_abs_error_pct']:.1f} %" for p, v in self.calibration["precisions"].items())
        return f"latency model ({self.profile.name}, calibrated {self.calibration['date'][:10]}, median error {errors})"

    def speedup(self, threads: int) -> float:
        t = max(1, min(threads, self.profile.cpu.cores))
        return 1.0 + (t - 1) * self.compute.thread_scaling

    def op_ms(self, op: OpCost, precision: Precision, threads: int, clock_ghz: float | None = None) -> float:
        if self.arm is not None:
            return self.arm.op_ms(op, precision, threads, clock_ghz)
        if op.kind == "shape":
            return op.nodes * self.shape_overhead_us[precision] * 1e-3
        if op.layout and not self.blocked_layout:
            return 0.0
        c = self.compute
        peak_gops = c.fp32_gflops_per_core if precision == "fp32" else c.int8_gops_per_core
        eff = getattr(c.efficiency[precision], op.kind)
        compute_s = 2.0 * self.padded_macs(op, precision) / (peak_gops * 1e9 * eff * self.speedup(threads))
        act_bytes = op.activation_elems * BYTES[precision]
        weight_bytes = op.weight_elems * BYTES[precision]
        memory_s = (act_bytes + weight_bytes) / (c.mem_bandwidth_gbs * 1e9)
        overhead_ms = op.nodes * self.overhead_us[precision] * 1e-3
        if op.kind == "elementwise":  # memory-bound; its efficiency is the share of bandwidth it reaches
            return overhead_ms + 1e3 * memory_s / eff
        return overhead_ms + 1e3 * max(compute_s, memory_s / self.weight_share[precision])

    def padded_macs(self, op: OpCost, precision: Precision) -> float:
        """MACs as the kernel computes them: on x86 fp32, channels padded to whole vectors (blocks).

        Output channels always pad; a conv's input channels pad once they fill a block, and always
        for a 1x1 conv (below a block a dense conv reads plain NCHW input, the pointwise kernel
        cannot); a depthwise conv's input is its output.
        """
        block = self.channel_block if precision == "fp32" else 1
        if not op.channels or block == 1:
            return float(op.macs)

        def pad(c: int) -> float:
            return (-(-c // block) * block) / c

        scale = pad(op.channels)
        if op.in_channels >= block or (op.kind == "pointwise" and op.in_channels > 4):
            scale *= pad(op.in_channels)
        return op.macs * scale

    def predict_ms(
        self, ops: list[OpCost], precision: Precision, threads: int = 1, clock_ghz: float | None = None
    ) -> float:
        """Predicted milliseconds; ``clock_ghz`` (Arm only) runs the cores at a measured device's clock."""
        run_ms = self.run_overhead_us[precision] * 1e-3
        return run_ms + sum(self.op_ms(op, precision, threads, clock_ghz) for op in ops)

    def breakdown(self, ops: list[OpCost], precision: Precision, threads: int = 1) -> dict[str, float]:
        """Predicted milliseconds per op kind (for reports); ``run`` is the fixed cost per inference."""
        out: dict[str, float] = {"run": self.run_overhead_us[precision] * 1e-3}
        for op in ops:
            key = kernel_class(op) if self.arm is not None else op.kind
            out[key] = out.get(key, 0.0) + self.op_ms(op, precision, threads)
        return out
