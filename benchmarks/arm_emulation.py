"""Arm emulation: set-up time (from scratch and cached) and int8 parity with x86 on test images.

Builds the emulator into a fresh temporary ``EDGEKD_EMULATOR_DIR`` (timing ``edgekd emulator setup``
from scratch, then again cached), then runs an int8 ``.tflite`` over the first N test images under
qemu (Cortex-A76) and with x86 LiteRT, both through ``bench_script.py`` with XNNPACK, and records
top-1 agreement, the largest logit difference and the emulated wall time.

Usage: python benchmarks/arm_emulation.py [--model PATH.tflite] [--samples 200]
(the default model is what ``make demo`` builds). Writes benchmarks/results/arm_emulation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.qemu_runner import QemuRunner
from edgekd.bench.runner_base import BenchSettings
from edgekd.config.target_profile import host_cpu_name
from edgekd.data.bundled import example_dataset

ROOT = Path(__file__).resolve().parents[1]


def timed_setup(env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgekd", "emulator", "setup"], env=env, check=True)
    return round(time.perf_counter() - started, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "build/cortex-a76/artifacts/student-tflite-int8.tflite")
    ap.add_argument("--samples", type=int, default=200, help="test images (the demo student runs ~1 s each emulated)")
    args = ap.parse_args()
    bundle = example_dataset()
    x = bundle.to_tensor(bundle.test.x[: args.samples]).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EDGEKD_EMULATOR_DIR": str(Path(tmp) / "emu")}
        scratch_s, cached_s = timed_setup(env), timed_setup(env)
        np.save(Path(tmp) / "x.npy", x)
        settings = BenchSettings(threads=1, warmup=0, runs=1, input_npy=Path(tmp) / "x.npy", save_outputs=True)
        started = time.perf_counter()
        with QemuRunner(root=Path(tmp) / "emu") as qemu:
            arm = qemu.run(qemu.push(args.model), settings)
        arm_s = time.perf_counter() - started
        started = time.perf_counter()
        with LocalRunner() as local:
            host = local.run(local.push(args.model), settings)
        host_s = time.perf_counter() - started
    assert arm.outputs is not None and host.outputs is not None
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": host_cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": {
            "edgekd": version("edgekd"),
            "ai-edge-litert": version("ai-edge-litert"),
            "qemu": subprocess.run(
                ["qemu-aarch64-static", "--version"], capture_output=True, text=True, check=True
            ).stdout.splitlines()[0],
        },
        "setup_seconds": {"from_scratch": scratch_s, "cached": cached_s},
        "parity": {
            "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
            "samples": len(x),
            "qemu_cpu": qemu.cpu,
            "xnnpack_arm": arm.extra.get("xnnpack"),
            "top1_agreement": float((arm.outputs.argmax(1) == host.outputs.argmax(1)).mean()),
            "max_abs_diff": float(np.abs(arm.outputs - host.outputs).max()),
            "emulated_seconds": round(arm_s, 1),
            "host_seconds": round(host_s, 1),
        },
        "note": "emulated wall time is not device latency (evidence measured-emulated); the machine is shared",
    }
    out = ROOT / "benchmarks/results/arm_emulation.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
