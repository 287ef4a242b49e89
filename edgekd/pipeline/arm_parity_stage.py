"""Arm numerical parity in the build: the target's ``.tflite`` artifacts run on an emulated Arm core.

int8 kernels differ between x86 and Arm; the x86 parity check cannot see an artifact that only
misbehaves on the board. For Arm targets (``arch: aarch64``) each int8 ``.tflite`` artifact also runs under
qemu on the profile's core over the first ``export.arm_parity_samples`` test images (emulation runs
~1 s per image for the demo student, so this is a subset) and is compared like the x86 check. Where
the emulator is not set up, the record says so and how to fix it; it does not fail the build.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edgekd.core.hashing import sha256_file
from edgekd.core.stage import StageSpec
from edgekd.pipeline.stages import StageContext

log = logging.getLogger(__name__)


def arm_parity_stage(ctx: StageContext, artifact: Path, precision: str, reference: np.ndarray) -> dict | None:
    """The Arm parity record of one int8 ``.tflite`` artifact, or None where it does not apply.

    fp32 is left out: its kernels differ little between x86 and Arm, and it runs ~700x slower emulated.

    Args:
        ctx: the build's stage context.
        artifact: the cached ``.tflite`` file.
        precision: the artifact's precision (only int8 is checked).
        reference: the student's PyTorch logits on the whole test split (as for x86 parity).
    """
    from edgekd.bench import emulator_rootfs
    from edgekd.bench.arm_parity import arm_parity
    from edgekd.bench.qemu_runner import QemuRunner, qemu_cpu_for

    inp = ctx.inputs
    samples = inp.config.export.arm_parity_samples
    if inp.profile.arch != "aarch64" or artifact.suffix != ".tflite" or precision != "int8" or samples == 0:
        return None
    ready = emulator_rootfs.status()
    if not ready.ready:
        log.warning("Arm parity skipped: emulator %s; run `edgekd emulator setup`", ready.reason)
        return {"status": "skipped", "reason": f"Arm emulator {ready.reason}; run `edgekd emulator setup`"}
    cpu = qemu_cpu_for(inp.profile)
    key_in = {"artifact": sha256_file(artifact), "samples": samples, "cpu": cpu, "emulator": ready.key,
              "data": ctx.data_key}  # fmt: skip

    def produce(tmp: Path) -> None:
        idx = inp.data.test.subset_indices(samples)
        test = inp.data.test.take(idx)
        x = inp.data.to_tensor(test.x).numpy()
        with ctx.progress.task(f"Arm parity {artifact.name} on emulated {cpu} ({len(test)} images)", total=None):
            result = arm_parity(artifact, x, reference[idx], test.y, QemuRunner(cpu=cpu))
        (tmp / "arm_parity.json").write_text(json.dumps({"status": "checked", **result.to_json()}, indent=2))

    hit = ctx.runner.run(StageSpec("arm-parity", key_in, produce))
    return json.loads((hit / "arm_parity.json").read_text())
