"""Per-target roofline latency model.

Each operator costs ``overhead + max(compute time, memory time)``:

* compute time = FLOPs / (peak per core x efficiency of the op kind x thread speed-up)
* memory time  = bytes moved (activations in/out + weights) / memory bandwidth

Convolutions are classed as dense (``conv``), ``depthwise`` or 1x1 (``pointwise``); BatchNorm and
activations that follow a conv, linear or add are fused (free), as TFLite, ONNX Runtime and
OpenVINO all do. Figures come from the target profile, optionally overridden by a calibration
file written by ``edgekd calibrate-latency``.

Example:
    >>> ops = trace_ops(model, (1, 1, 28, 28))  # doctest: +SKIP
    >>> LatencyModel(profile).predict_ms(ops, "int8", threads=1)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from edgekd.config.target_profile import ComputeSpec, Precision, TargetProfile
from edgekd.errors import InputError

log = logging.getLogger(__name__)

BYTES = {"fp32": 4, "int8": 1}
FUSED_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Identity, nn.Dropout, nn.Flatten)
ACTIVATIONS = (nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU, nn.Tanh)
POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)
ELEMENTWISE_FUNCS = {
    "add",
    "mul",
    "sub",
    "truediv",
    "cat",
    "hardswish",
    "sigmoid",
    "mean",
    "softmax",
    "permute",
    "transpose",
}


@dataclass(frozen=True)
class OpCost:
    """One operator's work: ``macs`` multiply-accumulates (or element ops), memory in elements."""

    name: str
    kind: str  # conv | depthwise | pointwise | linear | elementwise
    macs: int
    activation_elems: int
    weight_elems: int


def _numel(meta: object) -> int:
    shape = getattr(meta, "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None else 0


def _conv_cost(name: str, mod: nn.Conv2d, in_elems: int, out_shape: torch.Size) -> OpCost:
    kh, kw = mod.kernel_size
    cin_per_group = mod.in_channels // mod.groups
    out_elems = int(out_shape.numel())
    macs = out_elems * cin_per_group * kh * kw
    if mod.groups > 1 and mod.groups == mod.in_channels:
        kind = "depthwise"
    elif kh * kw == 1:
        kind = "pointwise"
    else:
        kind = "conv"
    return OpCost(name, kind, macs, in_elems + out_elems, mod.weight.numel())


def _attention_costs(name: str, mod: nn.MultiheadAttention, query: object) -> list[OpCost]:
    """Self-attention as deployed runtimes run it: input projection, Q·K^T, softmax, A·V, output projection.

    ``query`` is laid out ``(L, N, E)`` (``(N, L, E)`` when ``batch_first``); the head split and merge
    are layout copies, costed as one memory-bound op.
    """
    shape = tuple(getattr(query, "shape", ()))
    if len(shape) != 3:
        return []
    tokens, batch = (shape[1], shape[0]) if mod.batch_first else (shape[0], shape[1])
    e, rows = mod.embed_dim, tokens * batch
    act = rows * e
    scores = batch * mod.num_heads * tokens * tokens
    return [
        OpCost(f"{name}.in_proj", "linear", rows * e * 3 * e, act + 3 * act, 3 * e * e),
        OpCost(f"{name}.heads", "elementwise", 3 * act, 6 * act, 0),
        OpCost(f"{name}.qk", "linear", batch * tokens * tokens * e, 2 * act + scores, 0),
        OpCost(f"{name}.softmax", "elementwise", scores, 2 * scores, 0),
        OpCost(f"{name}.av", "linear", batch * tokens * tokens * e, scores + 2 * act, 0),
        OpCost(f"{name}.out_proj", "linear", rows * e * e, 2 * act, e * e),
    ]


def trace_ops(model: nn.Module, input_shape: tuple[int, ...]) -> list[OpCost]:
    """The costed operators of ``model`` for one input of ``input_shape`` (batch included)."""
    if not list(model.children()):  # a bare layer traces to functions; wrap it to see the module
        model = nn.Sequential(model)
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise InputError(
            f"cannot trace the model's graph for latency prediction ({type(exc).__name__}: {exc}); "
            "models with data-dependent control flow are not supported yet"
        ) from exc
    example = torch.zeros(input_shape)
    was_training = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    model.train(was_training)
    modules = dict(gm.named_modules())
    ops: list[OpCost] = []
    for node in gm.graph.nodes:
        out_meta = node.meta.get("tensor_meta")
        out_elems = _numel(out_meta)
        in_elems = sum(_numel(a.meta.get("tensor_meta")) for a in node.all_input_nodes)
        if node.op == "call_module":
            mod = modules[node.target]
            if isinstance(mod, nn.Conv2d):
                ops.append(_conv_cost(node.target, mod, in_elems, torch.Size(out_meta.shape)))
            elif isinstance(mod, nn.Linear):
                rows = out_elems // mod.out_features
                ops.append(OpCost(node.target, "linear", rows * mod.in_features * mod.out_features,
                                  in_elems + out_elems, mod.weight.numel()))  # fmt: skip
            elif isinstance(mod, POOLS + ACTIVATIONS):
                ops.append(OpCost(node.target, "elementwise", max(in_elems, out_elems), in_elems + out_elems, 0))
            elif isinstance(mod, FUSED_MODULES):
                continue
            elif isinstance(mod, nn.MultiheadAttention):
                ops.extend(_attention_costs(node.target, mod, node.all_input_nodes[0].meta.get("tensor_meta")))
            elif isinstance(mod, nn.LayerNorm):
                ops.append(OpCost(node.target, "elementwise", 5 * in_elems, in_elems + out_elems, 0))
            else:
                log.debug("latency model: module %s (%s) not costed", node.target, type(mod).__name__)
        elif node.op in ("call_function", "call_method"):
            fname = getattr(node.target, "__name__", str(node.target)).strip("_")
            if fname in ELEMENTWISE_FUNCS and out_elems:
                ops.append(OpCost(node.name, "elementwise", out_elems, in_elems + out_elems, 0))
            elif fname in ("matmul", "bmm", "linear") and out_elems:
                a = node.all_input_nodes[0].meta.get("tensor_meta")
                k = int(a.shape[-1]) if a is not None else 1
                ops.append(OpCost(node.name, "linear", out_elems * k, in_elems + out_elems, 0))
    return ops


def count_macs(ops: list[OpCost]) -> int:
    """Multiply-accumulates of the compute ops (elementwise work excluded)."""
    return sum(op.macs for op in ops if op.kind != "elementwise")


class LatencyModel:
    """Predicts latency on a target from its profile's compute figures."""

    def __init__(self, profile: TargetProfile, compute: ComputeSpec | None = None, calibration: dict | None = None):
        self.profile = profile
        self.compute = compute or profile.compute
        self.calibration = calibration
        fitted = (calibration or {}).get("precisions", {})
        self.overhead_us = {p: fitted.get(p, {}).get("op_overhead_us", self.compute.op_overhead_us)
                            for p in ("fp32", "int8")}  # fmt: skip

    @classmethod
    def for_target(cls, profile: TargetProfile, targets_dir: Path | None = None) -> LatencyModel:
        """The profile's figures, refined by ``targets/<name>.calibration.json`` when one exists."""
        from edgekd.bench.latency_calibration import apply_calibration, load_calibration
        from edgekd.config.targets import TARGETS_DIR

        data = load_calibration(profile, targets_dir or TARGETS_DIR)
        if data is None:
            return cls(profile)
        return cls(profile, apply_calibration(profile, data), data)

    def describe(self) -> str:
        """Where the figures come from, for reports (e.g. 'calibrated 2026-11-24, median error 6.1 %')."""
        if not self.calibration:
            return f"latency model ({self.profile.name}, profile figures, uncalibrated)"
        errors = ", ".join(f"{p} {v['median_abs_error_pct']:.1f} %" for p, v in self.calibration["precisions"].items())
        return f"latency model ({self.profile.name}, calibrated {self.calibration['date'][:10]}, median error {errors})"

    def speedup(self, threads: int) -> float:
        t = max(1, min(threads, self.profile.cpu.cores))
        return 1.0 + (t - 1) * self.compute.thread_scaling

    def op_ms(self, op: OpCost, precision: Precision, threads: int) -> float:
        c = self.compute
        peak_gops = c.fp32_gflops_per_core if precision == "fp32" else c.int8_gops_per_core
        eff = getattr(c.efficiency[precision], op.kind)
        compute_s = 2.0 * op.macs / (peak_gops * 1e9 * eff * self.speedup(threads))
        act_bytes = op.activation_elems * BYTES[precision]
        weight_bytes = op.weight_elems * BYTES[precision]
        memory_s = (act_bytes + weight_bytes) / (c.mem_bandwidth_gbs * 1e9)
        overhead_ms = self.overhead_us[precision] * 1e-3
        if op.kind == "elementwise":  # memory-bound; its efficiency is the share of bandwidth it reaches
            return overhead_ms + 1e3 * memory_s / eff
        return overhead_ms + 1e3 * max(compute_s, memory_s)

    def predict_ms(self, ops: list[OpCost], precision: Precision, threads: int = 1) -> float:
        return sum(self.op_ms(op, precision, threads) for op in ops)

    def breakdown(self, ops: list[OpCost], precision: Precision, threads: int = 1) -> dict[str, float]:
        """Predicted milliseconds per op kind (for reports)."""
        out: dict[str, float] = {}
        for op in ops:
            out[op.kind] = out.get(op.kind, 0.0) + self.op_ms(op, precision, threads)
        return out
