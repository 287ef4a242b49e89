"""int8 vs fp32 latency per runtime, with the reason when int8 is not faster.

Hardware teams expect int8 to be faster. On many hosts it is not: x86 CPUs without VNNI multiply
int8 with AVX2 ``pmaddubsw`` sequences plus requantisation, and for small models the quantize /
dequantize nodes and per-operator overhead eat the gain. The report says which applies, from the
CPU's own feature flags, instead of leaving a slower int8 figure unexplained.

Example:
    >>> rows = compare_precisions([
    ...     {"format": "onnx", "precision": "fp32", "ms": 2.0, "runtime": "onnxruntime 1.32.0"},
    ...     {"format": "onnx", "precision": "int8", "ms": 1.0, "runtime": "onnxruntime 1.32.0"},
    ... ], cpu_flags={"avx2", "avx512_vnni"})
    >>> rows[0]["speedup"], rows[0]["int8_faster"]
    (2.0, True)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from edgekd.core.host import VNNI_FLAGS
from edgekd.core.host import cpu_flags as read_cpu_flags

logger = logging.getLogger(__name__)

ARM_DOT_FLAGS = ("asimddp", "i8mm")
FASTER_MARGIN = 1.05
"""int8 counts as faster only when it beats fp32 by more than run-to-run noise (5 %)."""


def int8_note(faster: bool, speedup: float, fmt: str, flags: set[str]) -> str:
    """Why int8 is (not) faster than fp32 in this runtime on this CPU, in one sentence."""
    vnni = [f for f in VNNI_FLAGS if f in flags]
    dot = [f for f in ARM_DOT_FLAGS if f in flags]
    if faster:
        via = ", ".join(vnni or dot) or "the CPU's int8 SIMD"
        return f"int8 is {speedup:.2f}x faster than fp32 in {fmt} (int8 kernels use {via})"
    if "avx2" in flags and not vnni:
        why = ("this CPU has no VNNI (avx512_vnni/avx_vnni): int8 convolutions run as AVX2 pmaddubsw "
               "sequences plus requantisation, about the cost of fp32 FMA")  # fmt: skip
    elif vnni:
        why = (f"although the CPU has {', '.join(vnni)}, this model is small: quantize/dequantize nodes and "
               "per-operator overhead outweigh the cheaper int8 arithmetic")  # fmt: skip
    elif flags & {"asimd", "neon"} and not dot:
        why = "this Arm core has no dot-product instructions (asimddp): int8 GEMM gains little over fp32 NEON"
    else:
        why = "int8 kernels gain little on this CPU for a model this small (overhead dominates)"
    return f"int8 is not faster than fp32 in {fmt} here ({speedup:.2f}x): {why}"


def compare_precisions(entries: Iterable[dict], cpu_flags: set[str] | None = None) -> list[dict]:
    """Pair fp32 and int8 measurements of the same format and explain the ratio.

    Args:
        entries: latency figures with ``format``, ``precision``, ``ms`` (same statistic and threads
            for all) and optionally ``runtime``.
        cpu_flags: the CPU's feature flags; read from ``/proc/cpuinfo`` when None.

    Returns:
        One row per format measured in both precisions: ``format``, ``runtime``, ``fp32_ms``,
        ``int8_ms``, ``speedup`` (fp32 / int8), ``int8_faster`` and a plain-language ``note``.
    """
    flags = cpu_flags if cpu_flags is not None else read_cpu_flags()
    by_format: dict[str, dict[str, dict]] = {}
    for e in entries:
        by_format.setdefault(e["format"], {})[e["precision"]] = e
    rows = []
    for fmt, pair in sorted(by_format.items()):
        if not {"fp32", "int8"} <= pair.keys():
            continue
        fp32, int8 = float(pair["fp32"]["ms"]), float(pair["int8"]["ms"])
        speedup = fp32 / int8 if int8 > 0 else float("inf")
        faster = speedup > FASTER_MARGIN
        rows.append({
            "format": fmt, "runtime": pair["int8"].get("runtime") or pair["fp32"].get("runtime"),
            "fp32_ms": round(fp32, 4), "int8_ms": round(int8, 4), "speedup": round(speedup, 3),
            "int8_faster": faster, "note": int8_note(faster, speedup, fmt, flags),
        })  # fmt: skip
        if not faster:
            logger.warning(rows[-1]["note"])
    return rows
