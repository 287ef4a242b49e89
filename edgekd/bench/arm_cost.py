"""Operator costs as TFLite/XNNPACK runs them on an Arm core (the ``aarch64`` targets).

The structure follows the runtime, the numbers come from the target profile (and a fit to published
device measurements, ``TargetProfile.latency_fit``):

* kernel classes as XNNPACK has them, each with an fp32 and an int8 efficiency (fraction of the
  core's peak): 1x1 convolution as GEMM (``pointwise``), kxk convolution as indirect GEMM
  (``conv``), depthwise, the 3-input-channel first convolution (``first_conv``) and fully
  connected (``linear``); a kernel costs ``max(compute, memory)``;
* activations TFLite fuses into the producing kernel (ReLU, ReLU6: an output clamp) cost nothing;
* a residual add, an activation it does not fuse (hard-swish, sigmoid), pools, concatenation and
  multiplies are their own memory-bound operators: bytes moved / (bandwidth x the share of it
  they reach), spread across threads like the kernels (XNNPACK parallelises them);
* each operator the runtime dispatches costs a fixed overhead, plus a thread-pool hand-off
  (``thread_sync_us``) when it runs on more than one thread; threads speed compute and memory passes
  up by ``1 + (t - 1) x thread_scaling``.

Example:
    >>> cost = ArmCost(profile)  # doctest: +SKIP
    >>> cost.op_ms(op, "int8", threads=1)  # doctest: +SKIP
"""

from __future__ import annotations

from edgekd.bench.latency_trace import OpCost
from edgekd.config.target_profile import Precision, TargetProfile

BYTES = {"fp32": 4, "int8": 1}
# activations TFLite folds into the conv/FC as an output clamp (fused_activation_function)
FUSED_CLAMPS = {"relu", "relu6", "hardtanh"}
# tensor passes of an unfused epilogue: an add reads two and writes one, an activation reads and writes
EPILOGUE_PASSES = {"add": 3}


def kernel_class(op: OpCost) -> str:
    """XNNPACK's kernel for a costed op: pointwise | conv | first_conv | depthwise | linear | elementwise."""
    if op.kind == "conv" and 0 < op.in_channels <= 4:
        return "first_conv"
    return op.kind


class ArmCost:
    """Per-operator milliseconds on one Arm core cluster, from the profile and its fitted constants."""

    def __init__(self, profile: TargetProfile) -> None:
        self.profile = profile
        c = profile.compute
        fit = profile.latency_fit
        self.compute_scale = {p: (fit.compute_scale.get(p, 1.0) if fit else 1.0) for p in ("fp32", "int8")}
        self.depthwise_scale = {p: (fit.depthwise_scale.get(p, 1.0) if fit else 1.0) for p in ("fp32", "int8")}
        self.bandwidth_gbs = c.mem_bandwidth_gbs * (fit.bandwidth_scale if fit else 1.0)
        self.overhead_scale = fit.overhead_scale if fit else 1.0
        self.overhead_us = c.op_overhead_us * self.overhead_scale
        self.thread_scaling = fit.thread_scaling if fit and fit.thread_scaling is not None else c.thread_scaling

    def speedup(self, threads: int) -> float:
        t = max(1, min(threads, self.profile.cpu.cores))
        return 1.0 + (t - 1) * self.thread_scaling

    def efficiency(self, cls: str, precision: Precision) -> float:
        eff = self.profile.compute.efficiency[precision]
        value = eff.first_conv if cls == "first_conv" else getattr(eff, cls)
        if value is None:  # no first_conv figure: the stem runs as a dense conv
            value = eff.conv
        if cls == "elementwise":
            return value
        scale = self.depthwise_scale[precision] if cls == "depthwise" else self.compute_scale[precision]
        return value * scale

    def op_ms(self, op: OpCost, precision: Precision, threads: int = 1, clock_ghz: float | None = None) -> float:
        """Milliseconds for ``op``; ``clock_ghz`` runs the cores at another clock (a measured device's)."""
        c = self.profile.compute
        sync_us = c.thread_sync_us if min(threads, self.profile.cpu.cores) > 1 else 0.0
        overhead_ms = (self.overhead_us + sync_us * self.overhead_scale) * 1e-3
        if op.layout:  # x86 blocked-layout reorders: XNNPACK works in NHWC throughout
            return 0.0
        if op.kind == "shape":  # reshape/flatten: a dispatch that copies nothing
            return op.nodes * 0.1 * overhead_ms
        speed = self.speedup(threads)
        bandwidth = self.bandwidth_gbs * 1e9 * speed
        if op.kind == "elementwise":
            if op.epilogue in FUSED_CLAMPS:
                return 0.0
            passes = EPILOGUE_PASSES.get(op.epilogue, 2) if op.epilogue else None
            elems = op.macs * passes if passes is not None else op.activation_elems
            dispatch = 1 if op.epilogue else op.nodes
            share = self.efficiency("elementwise", precision)
            return dispatch * overhead_ms + 1e3 * elems * BYTES[precision] / (bandwidth * share)
        cls = kernel_class(op)
        peak = c.fp32_gflops_per_core if precision == "fp32" else c.int8_gops_per_core
        if clock_ghz:
            peak *= clock_ghz / self.profile.cpu.freq_ghz
        compute_s = 2.0 * op.macs / (peak * 1e9 * self.efficiency(cls, precision) * speed)
        memory_s = (op.activation_elems + op.weight_elems) * BYTES[precision] / bandwidth
        return op.nodes * overhead_ms + 1e3 * max(compute_s, memory_s)

    def predict_ms(self, ops: list[OpCost], precision: Precision, threads: int = 1, clock_ghz: float | None = None):
        return sum(self.op_ms(op, precision, threads, clock_ghz) for op in ops)
