"""Fit a target's latency-model figures to measurements (``edgekd calibrate-latency``).

A set of micro-models is exported to ONNX and timed on the target's runner: stacks of one operator
kind at small and large sizes (dense, 1x1, 3x3/5x5 depthwise, strided convs, linear layers, adds,
reshapes) and the blocks the zoo is built of (residual, inverted-residual with squeeze-excite,
dense concatenation, transformer blocks), plus near-empty models that pin the overheads. With each
conv/linear op taken as compute-bound (or weight-streaming) and each elementwise op as memory-bound,
a model's time is linear in the unknowns::

    t = run + n_ops * op_overhead + n_shape_nodes * shape_overhead
        + weight_bytes / bandwidth + sum_k work_k / efficiency_k

so they come from a non-negative least-squares fit on relative error. The fitted figures are stored
next to the profile (``targets/<name>.calibration.json``) and used by
:class:`~edgekd.bench.latency_model.LatencyModel` from then on, with the fit's own error.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.bench.latency_calibration_file import (  # noqa: F401 (re-exported: the fitter's public API)
    apply_calibration,
    calibration_path,
    load_calibration,
)
from edgekd.bench.latency_model import BYTES, LatencyModel, OpCost, trace_ops
from edgekd.config.target_profile import Precision, TargetProfile
from edgekd.config.targets import TARGETS_DIR
from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import ConfigError
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter

log = logging.getLogger(__name__)

KINDS = ("conv", "depthwise", "pointwise", "linear", "elementwise")
OVERHEADS = ("op_overhead_us", "shape_overhead_us", "run_overhead_us")
# leading design-matrix columns: the three overheads (us) and 1 / the bandwidth scale of weight streaming
LEADING = (*OVERHEADS, "inv_bandwidth_scale")


class _Add(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.n):
            x = x + x * 0.5
        return x


class _Reshapes(nn.Module):
    """Shape-only work: flatten and unflatten the channel axis ``n`` times (shape nodes, aliasing)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.n):
            x = x.flatten(2).unflatten(2, (x.shape[2], x.shape[3]))
        return x


class _Residual(nn.Module):
    """conv-BN-ReLU, conv-BN, residual add, ReLU: all fused into two convs by ONNX Runtime."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.b(self.a(x)) + x)


class _Dense(nn.Module):
    """Pre-activation BN-ReLU-conv whose output is concatenated onto its input (unfused BN, ReLU, concat)."""

    def __init__(self, c: int, growth: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, growth, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.layer(x)), dim=1)


def _mbconv(c: int, expand: int, kernel: int, se: bool) -> nn.Module:
    from edgekd.models.zoo_cnn import SqueezeExcite

    e = c * expand
    layers = [nn.Conv2d(c, e, 1), nn.BatchNorm2d(e), nn.Hardswish(),
              nn.Conv2d(e, e, kernel, padding=kernel // 2, groups=e), nn.BatchNorm2d(e), nn.Hardswish()]  # fmt: skip
    return nn.Sequential(*layers, *([SqueezeExcite(e)] if se else []), nn.Conv2d(e, c, 1), nn.BatchNorm2d(c))


class _Tokens(nn.Module):
    """(N, C, H, W) -> transformer blocks on H*W tokens -> mean token, as the zoo's ViT runs them."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        from edgekd.models.zoo_transformer import TransformerBlock

        self.blocks = nn.Sequential(*(TransformerBlock(dim, 2) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.flatten(2).permute(2, 0, 1)).mean(dim=0)


def micro_models() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, model, input shape) stacks covering every op kind and block the zoo uses, small and large."""
    out: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    for c, hw, n in ((16, 28, 4), (32, 28, 4), (64, 14, 4), (96, 28, 2), (128, 7, 6), (192, 14, 2), (256, 4, 4)):
        out.append((f"conv{c}x{hw}", nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1) for _ in range(n)]), (1, c, hw, hw)))
        out.append((f"pw{c}x{hw}", nn.Sequential(*[nn.Conv2d(c, c, 1) for _ in range(n)]), (1, c, hw, hw)))
        dw = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, groups=c) for _ in range(n)])
        out.append((f"dw{c}x{hw}", dw, (1, c, hw, hw)))
    out.append(("conv8x56", nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(4)]), (1, 8, 56, 56)))
    out.append(("dw5x5-96x14", nn.Sequential(*[nn.Conv2d(96, 96, 5, padding=2, groups=96) for _ in range(4)]),
                (1, 96, 14, 14)))  # fmt: skip
    out.append(("stride-conv", nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1)), (1, 16, 28, 28)))
    for c, hw in ((16, 28), (64, 14), (128, 7)):
        stem = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU())  # residual adds fuse after a conv
        out.append((f"res{c}x{hw}", nn.Sequential(stem, *[_Residual(c) for _ in range(2)]), (1, c, hw, hw)))
    for c, hw, se in ((16, 14, True), (32, 7, True), (24, 14, False)):
        out.append((f"mb{'se' if se else ''}{c}x{hw}", nn.Sequential(*[_mbconv(c, 4, 3, se) for _ in range(3)]),
                    (1, c, hw, hw)))  # fmt: skip
    for c, hw in ((16, 14), (64, 7)):
        dense = nn.Sequential(*[_Dense(c + i * 16, 16) for i in range(4)])
        out.append((f"dense{c}x{hw}", dense, (1, c, hw, hw)))
    for dim, hw in ((32, 7), (64, 7), (128, 7), (64, 10)):
        out.append((f"vit{dim}x{hw}", _Tokens(dim, 2), (1, dim, hw, hw)))
    # 4-D input, as a classifier head sees it after pooling; weights stay within the caches (<= 12 MB): the
    # model has no cache hierarchy, and a 16 MB layer streamed from DRAM ran 2x slower than it predicts
    for f, n in ((256, 4), (512, 4), (1024, 3)):
        out.append((f"fc{f}", nn.Sequential(nn.Flatten(), *[nn.Linear(f, f) for _ in range(n)]), (1, f, 1, 1)))
    for c, hw, n in ((32, 28, 8), (128, 28, 4), (256, 14, 8)):
        out.append((f"add{c}x{hw}", _Add(n), (1, c, hw, hw)))
    # many operators with next to no work: they pin down the per-operator, per-shape-node and
    # per-run overheads, which the stacks above (2-8 ops of real work each) cannot tell apart
    out.append(("tinypw", nn.Sequential(*[nn.Conv2d(16, 16, 1) for _ in range(32)]), (1, 16, 4, 4)))
    dw = nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1, groups=16) for _ in range(32)])
    out.append(("tinydw", dw, (1, 16, 4, 4)))
    out.append(("tinyadd", _Add(24), (1, 8, 4, 4)))
    out.append(("tinyshape", _Reshapes(16), (1, 8, 4, 4)))
    out.append(("single", nn.Sequential(nn.Conv2d(16, 16, 1)), (1, 16, 2, 2)))
    out.append(("single-add", _Add(1), (1, 8, 2, 2)))
    return out


def design_row(model: LatencyModel, ops: list[OpCost], precision: Precision, threads: int) -> tuple[np.ndarray, float]:
    """Coefficients of (op, shape-node and run overheads in us, 1/bandwidth scale, 1/eff_conv, ...,
    1/eff_elementwise) for one model, in ms, and fixed milliseconds (none today; kept for callers)."""
    c = model.compute
    peak = (c.fp32_gflops_per_core if precision == "fp32" else c.int8_gops_per_core) * 1e9 * model.speedup(threads)
    n = len(LEADING)
    row = np.zeros(n + len(KINDS))
    row[2] = 1e-3  # one run
    for op in ops:
        if op.kind == "shape":
            row[1] += 1e-3 * op.nodes
            continue
        if op.layout and not model.blocked_layout:
            continue
        row[0] += 1e-3 * op.nodes  # overheads are fitted in microseconds
        memory_ms = 1e3 * (op.activation_elems + op.weight_elems) * BYTES[precision] / (c.mem_bandwidth_gbs * 1e9)
        if op.kind == "elementwise":  # the unknown is the share of bandwidth reached
            row[n + KINDS.index("elementwise")] += memory_ms
            continue
        compute_ms = 1e3 * 2.0 * model.padded_macs(op, precision) / peak
        if memory_ms > compute_ms / getattr(c.efficiency[precision], op.kind):
            row[3] += memory_ms  # weight streaming dominates (large linear layers): bandwidth, not kernels
        else:
            row[n + KINDS.index(op.kind)] += compute_ms
    return row, 0.0


@dataclass
class Calibration:
    """Fitted figures for one precision, with the fit's error on the micro-models."""

    precision: Precision
    efficiency: dict[str, float]
    peak_scale: float
    overheads: dict[str, float]
    median_abs_error_pct: float
    within_10pct: float
    points: list[dict]

    @property
    def op_overhead_us(self) -> float:
        return self.overheads["op_overhead_us"]

    def to_json(self) -> dict:
        return {
            "efficiency": {k: round(v, 4) for k, v in self.efficiency.items()},
            "peak_scale": round(self.peak_scale, 4),
            **{k: round(float(v), 3) for k, v in self.overheads.items()},
            "median_abs_error_pct": round(self.median_abs_error_pct, 2),
            "within_10pct": round(self.within_10pct, 3),
            "points": self.points,
        }


def fit(
    rows: np.ndarray, fixed_ms: np.ndarray, measured_ms: np.ndarray, names: list[str], precision: Precision
) -> Calibration:
    """Non-negative least squares on relative error (each model weighted by 1/measured).

    ``rows`` has the leading columns of :data:`LEADING` (rows with only the first of them, the
    per-operator overhead, are accepted too) followed by one column per kind of :data:`KINDS`.
    Fitted efficiencies above 1 mean the profile's nominal peak is too low (turbo clocks, wider
    units): the excess moves into ``peak_scale`` so every efficiency stays in (0, 1].
    """
    from scipy.optimize import nnls

    n = rows.shape[1] - len(KINDS)
    w = 1.0 / measured_ms
    coef, _ = nnls(rows * w[:, None], (measured_ms - fixed_ms) * w)
    predicted = rows @ coef + fixed_ms
    err = 100.0 * np.abs(predicted - measured_ms) / measured_ms
    used = rows[:, n:].sum(0) > 0
    raw = {k: 1.0 / coef[n + i] for i, k in enumerate(KINDS) if used[i] and coef[n + i] > 0}
    scale = max(1.0, *(v for k, v in raw.items() if k != "elementwise"))
    efficiency = {k: min(1.0, raw[k] / scale) if k in raw else 1.0 for k in KINDS if k != "elementwise"}
    points = [{"model": name, "measured_ms": round(float(m), 4), "predicted_ms": round(float(p), 4)}
              for name, m, p in zip(names, measured_ms, predicted, strict=True)]  # fmt: skip
    median, within = float(np.median(err)), float((err <= 10).mean())
    overheads = {k: float(coef[i]) for i, k in enumerate(OVERHEADS[: min(n, len(OVERHEADS))])}
    # Memory: elementwise ops and weight streaming were fitted as multiples of the profile's bandwidth.
    # Above 1 the bandwidth itself is higher (caches): it moves into the bandwidth scale, so that both
    # stay shares (0, 1] of the scaled bandwidth.
    mem = len(OVERHEADS)
    streaming = 1.0 / coef[mem] if n > mem and rows[:, mem].sum() > 0 and coef[mem] > 0 else None
    bw_scale = max(1.0, raw.get("elementwise", 1.0), streaming or 1.0)
    efficiency["elementwise"] = min(1.0, raw["elementwise"] / bw_scale) if "elementwise" in raw else 1.0
    if n > mem:
        overheads["mem_bandwidth_scale"] = bw_scale
        overheads["weight_bandwidth_share"] = min(1.0, (streaming or bw_scale) / bw_scale)
    return Calibration(precision, efficiency, scale, overheads, median, within, points)


Timer = Callable[[nn.Module, tuple[int, ...], Precision, int], float]


def calibrate(
    profile: TargetProfile,
    timer: Timer,
    precisions: tuple[Precision, ...] = ("fp32",),
    threads: int = 1,
    models: list[tuple[str, nn.Module, tuple[int, ...]]] | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict:
    """Time every micro-model with ``timer`` (returns p50 ms) and fit each precision's figures."""
    models = models or micro_models()
    latency = LatencyModel(profile)
    out: dict = {
        "target": profile.name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "threads": threads,
        "precisions": {},
    }
    for precision in precisions:
        rows, fixed, measured, names = [], [], [], []
        label = f"calibrate {profile.name} {precision} ({len(models)} micro-models)"
        with progress.task(label, len(models)) as task:
            for name, model, shape in models:
                row, const = design_row(latency, trace_ops(model.eval(), shape), precision, threads)
                rows.append(row)
                fixed.append(const)
                measured.append(timer(model.eval(), shape, precision, threads))
                names.append(name)
                task.advance(1)
        result = fit(np.array(rows), np.array(fixed), np.array(measured), names, precision)
        out["precisions"][precision] = result.to_json()
        log.info("%s %s: median error %.1f %%", profile.name, precision, result.median_abs_error_pct)
    return out


def write_calibration(data: dict, profile: TargetProfile, targets_dir: Path = TARGETS_DIR) -> Path:
    return atomic_write_text(calibration_path(profile, targets_dir), json.dumps(data, indent=2) + "\n")


def local_onnx_timer(runs: int = 50, warmup: int = 10, calibration_samples: int = 16, stat: str = "p50") -> Timer:
    """Times a micro-model on this machine as the project deploys it: the ONNX exporter (fp32, or QDQ
    int8 calibrated on random inputs), run in a fresh process by the local runner.

    ``stat`` is ``p50`` or ``min``; on a machine busy with other work the fastest run is the better
    estimate of the uncontended time (a longer inference is more often preempted), at the price of
    fitting a best case.
    """
    if stat not in ("p50", "min"):
        raise ConfigError(f"timer statistic '{stat}' must be p50 or min")
    import tempfile

    from edgekd.bench.local_runner import LocalRunner
    from edgekd.bench.runner_base import BenchSettings
    from edgekd.bench.stats import summarize
    from edgekd.export.base import SidecarInfo, get_exporter

    def timer(model: nn.Module, shape: tuple[int, ...], precision: Precision, threads: int) -> float:
        if len(shape) != 4:
            raise ConfigError(f"micro-model input {shape} must be 4-D (N, C, H, W) for the exporter")
        exporter = get_exporter("onnx")
        with torch.no_grad():
            outputs = int(model.eval()(torch.zeros(shape)).flatten(1).shape[1])
        info = SidecarInfo(tuple(f"o{i}" for i in range(outputs)), (0.0,) * shape[1], (1.0,) * shape[1], shape[1:])
        calib = np.random.default_rng(0).standard_normal((calibration_samples, *shape[1:])).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            art = exporter.export(model, torch.zeros(shape), precision, Path(tmp), info, calib)
            with LocalRunner() as runner:
                result = runner.run(
                    runner.push(Path(art.path)), BenchSettings(threads=threads, warmup=warmup, runs=runs)
                )
        return float(min(result.samples_ms)) if stat == "min" else summarize(result.samples_ms).p50_ms

    return timer
