"""Arm numerical parity: run a ``.tflite`` under Arm emulation and compare it like the x86 parity check.

int8 kernels differ between x86 and Arm (XNNPACK's NEON/dot-product paths vs AVX2), so an artifact
that matches on this host may not on the board. This runs the real Arm kernels on an emulated core
(:class:`edgekd.bench.qemu_runner.QemuRunner`) over the given inputs, then compares them with
:func:`edgekd.export.parity.compare_logits`, so the record has the x86 parity record's fields plus
where it ran.

Example:
    >>> result = arm_parity(Path("student.tflite"), x_test, torch_logits, y_test)  # doctest: +SKIP
    >>> result.parity.agreement  # doctest: +SKIP
    0.997
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.bench.qemu_runner import QemuRunner
from edgekd.bench.runner_base import BenchSettings
from edgekd.core.errors import InputError, RunnerError
from edgekd.export.parity import ParityResult, compare_logits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmParityResult:
    """Parity on an emulated Arm core.

    Attributes:
        parity: the same comparison the x86 parity check makes.
        qemu_cpu: the emulated core (qemu ``-cpu``).
        runtime: runtime name and version inside the emulator.
        xnnpack: whether LiteRT ran the graph through XNNPACK (the kernels a board runs).
        seconds: wall time of the emulated run.
    """

    parity: ParityResult
    qemu_cpu: str
    runtime: str
    xnnpack: bool
    seconds: float

    def to_json(self) -> dict:
        """The x86 parity record's fields plus ``runner``, ``qemu_cpu``, ``runtime``, ``xnnpack``, ``evidence``."""
        return {
            **self.parity.to_json(),
            "runner": "qemu",
            "qemu_cpu": self.qemu_cpu,
            "runtime": self.runtime,
            "xnnpack": self.xnnpack,
            "evidence": "measured-emulated",
            "seconds": round(self.seconds, 1),
        }


def arm_outputs(model: Path, x: np.ndarray, runner: QemuRunner | None = None) -> tuple[np.ndarray, dict]:
    """The model's (dequantised) first output for every sample of ``x`` under emulation.

    Args:
        model: a ``.tflite`` (with its sidecar when its input is int8).
        x: float inputs, normalised, NCHW or the model's layout, shape (N, ...).
        runner: a QemuRunner (default: cortex-a76); connected here if it is not.

    Returns:
        Outputs of shape (N, K) and facts about the run (runtime, qemu cpu, xnnpack).

    Raises:
        InputError: ``x`` is empty or the model is unusable.
        RunnerError: the emulator is not set up or the run failed.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        raise InputError("Arm parity needs at least one sample")
    runner = runner or QemuRunner()
    with tempfile.TemporaryDirectory(prefix="edgekd-arm-parity-") as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, x)
        # The exported .tflite has batch 1; bench_script then runs one feed per sample, in order.
        settings = BenchSettings(threads=1, warmup=0, runs=1, input_npy=inputs, save_outputs=True)
        result = runner.run(runner.push(model), settings)
    if result.outputs is None or len(result.outputs) != len(x):
        got = None if result.outputs is None else result.outputs.shape
        raise RunnerError(f"emulated run of {Path(model).name} returned outputs {got} for {len(x)} samples")
    facts = {"runtime": result.runtime, "qemu_cpu": runner.cpu, "xnnpack": bool(result.extra.get("xnnpack"))}
    return result.outputs.reshape(len(x), -1), facts


def arm_parity(
    model: Path,
    x: np.ndarray,
    reference_logits: np.ndarray,
    labels: np.ndarray,
    runner: QemuRunner | None = None,
) -> ArmParityResult:
    """Run ``model`` under Arm emulation on ``x`` and compare with ``reference_logits`` and ``labels``.

    The reference is what the x86 parity check uses (the PyTorch logits), or the x86 LiteRT outputs
    to see whether the Arm kernels change the artifact's answers.

    Raises:
        InputError: the arrays do not line up or the model is unusable.
        RunnerError: the emulator is not set up or the run failed.
    """
    if reference_logits.ndim != 2 or len(reference_logits) != len(x) or len(labels) != len(x):
        raise InputError(
            f"parity inputs do not line up: x {len(x)}, reference {reference_logits.shape}, labels {len(labels)}"
        )
    started = time.perf_counter()
    outputs, facts = arm_outputs(Path(model), x, runner)
    seconds = time.perf_counter() - started
    parity = compare_logits(outputs, reference_logits, labels)  # computed in one emulated run
    if not facts["xnnpack"]:
        logger.warning("Arm parity of %s ran without XNNPACK: not the kernels a board runs", Path(model).name)
    logger.info("Arm parity (%s): agreement %.4f over %d samples", facts["qemu_cpu"], parity.agreement, parity.samples)
    return ArmParityResult(parity, facts["qemu_cpu"], facts["runtime"], facts["xnnpack"], seconds)
