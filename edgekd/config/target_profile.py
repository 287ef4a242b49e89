"""TargetProfile: everything edgekd knows about one hardware target.

Loaded from ``targets/<name>.yaml``; unknown keys are errors. ``edgekd targets schema`` prints the
JSON schema generated from these models (also committed as ``targets/schema.json``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["fp32", "int8"]
ExportFormat = Literal["onnx", "tflite", "openvino", "executorch"]
RunnerKind = Literal["local", "qemu", "ssh", "adb"]
Stat = Literal["p50", "p90", "p99"]
OpKind = Literal["conv", "depthwise", "pointwise", "linear", "elementwise"]


class StrictModel(BaseModel):
    # Unknown keys and non-finite numbers (nan, inf) are errors in every part of a profile.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CpuSpec(StrictModel):
    model: str = Field(description="CPU core, e.g. 'Cortex-A76'")
    cores: int = Field(gt=0)
    freq_ghz: float = Field(gt=0)
    simd: list[str] = Field(description="SIMD features, e.g. neon, dotprod, avx2, avx512_vnni")
    simd_width_bits: int = Field(gt=0)


class OpEfficiency(StrictModel):
    """Fraction of peak throughput each operator kind reaches (0-1]."""

    conv: float = Field(gt=0, le=1)
    depthwise: float = Field(gt=0, le=1)
    pointwise: float = Field(gt=0, le=1)
    linear: float = Field(gt=0, le=1)
    elementwise: float = Field(gt=0, le=1)
    first_conv: float | None = Field(
        default=None, gt=0, le=1, description="the 3-input-channel stem conv (Arm/XNNPACK kernel class); None = conv"
    )


class ComputeSpec(StrictModel):
    """Figures the roofline latency model needs (per core, single thread)."""

    fp32_gflops_per_core: float = Field(gt=0, description="peak fp32 FLOP/s per core, in G")
    int8_gops_per_core: float = Field(gt=0, description="peak int8 OP/s per core (MAC = 2 ops), in G")
    mem_bandwidth_gbs: float = Field(gt=0, description="sustained DRAM bandwidth, GB/s")
    op_overhead_us: float = Field(ge=0, description="fixed cost per operator dispatch, microseconds")
    thread_scaling: float = Field(default=0.85, gt=0, le=1, description="parallel efficiency of each extra thread")
    thread_sync_us: float = Field(
        default=0.0, ge=0, description="extra cost per operator when it runs on more than one thread (Arm predictor)"
    )
    efficiency: dict[Precision, OpEfficiency]

    @model_validator(mode="after")
    def _both_precisions(self) -> ComputeSpec:
        missing = {"fp32", "int8"} - set(self.efficiency)
        if missing:
            raise ValueError(f"efficiency needs entries for {sorted(missing)}")
        return self


class PowerSpec(StrictModel):
    idle_w: float = Field(ge=0, description="board/package power when idle, W")
    active_w_per_core: float = Field(gt=0, description="extra power per busy core, W")


class ExportSpec(StrictModel):
    format: ExportFormat
    precision: Precision


class BudgetSpec(StrictModel):
    latency_ms: float = Field(gt=0, description="default latency budget")
    stat: Stat = "p50"
    threads: int = Field(default=1, gt=0, description="threads the budget is measured with")
    max_accuracy_drop: float = Field(
        default=2.0, ge=0, le=100, description="largest allowed top-1 drop vs teacher, points"
    )


class ParitySpec(StrictModel):
    fp32_min_agreement: float = Field(default=0.99, ge=0, le=1)
    int8_min_agreement: float = Field(default=0.97, ge=0, le=1)
    fp32_max_abs_diff: float = Field(default=1e-3, gt=0)


class RunnerSpec(StrictModel):
    kind: RunnerKind
    host: str | None = None
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    serial: str | None = None
    qemu_cpu: str | None = None
    runtime: str | None = None
    expect_cpu: str | None = Field(
        default=None,
        description="for a local runner: regex the host's CPU name must match for host figures to count as "
        "this target's (e.g. 'Intel'); None = any host",
    )


class PruneSpec(StrictModel):
    round_to: int = Field(default=8, gt=0, description="channel multiple the target's kernels prefer")


class PredictorError(StrictModel):
    """How far the latency predictor is from published device measurements (predicted / measured)."""

    method: str = Field(description="e.g. 'leave-one-source-out' or 'in-sample (one source)'")
    n: int = Field(ge=0, description="measurements scored")
    sources: int = Field(ge=0, description="distinct sources (URLs) they come from")
    median_ratio: float | None = Field(default=None, description="median of predicted / measured")
    p25_ratio: float | None = None
    p75_ratio: float | None = None
    within_10pct: float | None = Field(default=None, ge=0, le=1)
    within_25pct: float | None = Field(default=None, ge=0, le=1)


class LatencyFit(StrictModel):
    """Constants ``edgekd calibrate-latency --from-measurements`` fitted, with provenance and error."""

    fitted: str = Field(description="ISO date of the fit")
    source: str = Field(description="the measurements file the fit used")
    n: int = Field(ge=0)
    compute_scale: dict[Precision, float] = Field(description="multiplies the GEMM-class efficiencies of a precision")
    depthwise_scale: dict[Precision, float] = Field(default_factory=dict, description="multiplies depthwise efficiency")
    bandwidth_scale: float = Field(gt=0, description="multiplies mem_bandwidth_gbs")
    overhead_scale: float = Field(default=1.0, gt=0, description="multiplies op_overhead_us")
    thread_scaling: float | None = Field(default=None, gt=0, le=1, description="None = the profile's")
    error: PredictorError


class TargetProfile(StrictModel):
    """One hardware target. The first entry of ``exports`` is the primary (deployed) artifact."""

    name: str
    description: str
    arch: Literal["aarch64", "x86_64"]
    cpu: CpuSpec
    compute: ComputeSpec
    power: PowerSpec
    exports: list[ExportSpec] = Field(min_length=1)
    budget: BudgetSpec
    parity: ParitySpec = ParitySpec()
    runner: RunnerSpec
    prune: PruneSpec = PruneSpec()
    onnx_opset: int = Field(default=17, ge=13)
    latency_fit: LatencyFit | None = Field(default=None, description="written by calibrate-latency")

    @property
    def primary(self) -> ExportSpec:
        return self.exports[0]

    @property
    def measured_locally(self) -> bool:
        """True when the machine edgekd runs on *is* this target (local runner, matching CPU)."""
        if self.runner.kind != "local":
            return False
        return self.runner.expect_cpu is None or bool(re.search(self.runner.expect_cpu, host_cpu_name(), re.I))


@functools.cache
def host_cpu_name() -> str:
    """The host CPU's model name from /proc/cpuinfo ('' where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
