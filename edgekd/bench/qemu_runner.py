"""QemuRunner: run ``bench_script.py`` on an arm64 Python under ``qemu-aarch64-static`` (user mode).

Its value is running the real Arm kernels (XNNPACK's NEON/dot-product int8 paths) for numerical
parity, and standing in for a board in tests. Its timings are ``measured-emulated``: emulated wall
time says nothing about a device's latency (fp32 ran ~670x, int8 ~50x slower than native here), so
they are never used as one. The emulated CPU comes from the target profile; ``max`` is refused
(XNNPACK int8 returns wrong results on it). Set the emulator up once with ``edgekd emulator setup``.

Example:
    >>> with QemuRunner.from_profile(load_target("cortex-a76")) as runner:  # doctest: +SKIP
    ...     result = runner.run(runner.push(Path("student.tflite")), BenchSettings(runs=5, save_outputs=True))
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self

import numpy as np

from edgekd.bench import emulator_rootfs
from edgekd.bench.runner_base import (
    BENCH_SCRIPT,
    BenchSettings,
    Capability,
    Evidence,
    Runner,
    RunResult,
    check_model_file,
    parse_script_output,
    script_args,
    script_failure,
    take_options,
)
from edgekd.config.target_profile import TargetProfile
from edgekd.core.errors import ConfigError, InputError, RunnerError

logger = logging.getLogger(__name__)

DEFAULT_CPU = "cortex-a76"
XNNPACK_MARK = "XNNPACK delegate"
"""LiteRT logs ``Created TensorFlow Lite XNNPACK delegate for CPU.`` when XNNPACK takes the graph."""


def qemu_cpu_for(profile: TargetProfile) -> str:
    """The qemu ``-cpu`` for a profile: ``runner.qemu_cpu``, else the profile's core, else cortex-a76.

    Raises:
        ConfigError: the profile is not aarch64, or names ``max`` or a CPU the emulator has no view for.
    """
    if profile.arch != "aarch64":
        raise ConfigError(f"the qemu runner emulates aarch64; target {profile.name} is {profile.arch}")
    cpu = profile.runner.qemu_cpu
    if cpu is None:
        model = profile.cpu.model.strip().lower().replace(" ", "-")
        cpu = model if model in emulator_rootfs.CPUS else DEFAULT_CPU
        if cpu != model:
            logger.info("no qemu model for %s; emulating %s", profile.cpu.model, cpu)
    try:
        return emulator_rootfs.check_cpu(cpu)
    except RunnerError as exc:
        raise ConfigError(f"target {profile.name}: {exc}") from exc


class QemuRunner(Runner):
    """Benchmarks ``.tflite`` models with LiteRT on an emulated Arm core.

    Args:
        cpu: qemu ``-cpu`` name (see :data:`edgekd.bench.emulator_rootfs.CPUS`); ``max`` is refused.
        root: emulator folder; defaults to :func:`edgekd.bench.emulator_rootfs.emulator_dir`.
        timeout_s: wall-clock limit per run (emulation is slow); the process is killed past it.
    """

    capabilities: frozenset[Capability] = frozenset({"latency"})
    evidence: Evidence = Evidence.MEASURED_EMULATED

    def __init__(self, cpu: str = DEFAULT_CPU, root: Path | None = None, timeout_s: float = 1800.0) -> None:
        try:
            self.cpu = emulator_rootfs.check_cpu(cpu)
        except RunnerError as exc:
            raise ConfigError(str(exc)) from exc
        self.root = root
        self.timeout_s = timeout_s
        self.sysroot: Path | None = None
        self.qemu: str | None = None

    @classmethod
    def from_profile(cls, profile: TargetProfile, **options: Any) -> Self:
        """A runner emulating the profile's core (see :func:`qemu_cpu_for`); option: ``timeout`` (s).

        Raises:
            ConfigError: an option another runner takes, or a profile the emulator cannot run.
        """
        opts = take_options("qemu", options, {"timeout"})
        return cls(cpu=qemu_cpu_for(profile), timeout_s=float(opts.get("timeout", 1800.0)))

    def connect(self) -> None:
        """Find qemu and this CPU's view of the root file system; RunnerError if either is missing."""
        self.qemu = shutil.which(emulator_rootfs.QEMU)
        if self.qemu is None:
            raise RunnerError(f"{emulator_rootfs.QEMU} not found; install Debian's qemu-user-static (`make debian`)")
        self.sysroot = emulator_rootfs.sysroot_for(self.cpu, self.root)
        if not BENCH_SCRIPT.is_file():
            raise RunnerError(f"bench script missing: {BENCH_SCRIPT}")

    def push(self, path: Path) -> str:
        """Check the model (the emulator has LiteRT only) and return its absolute path.

        Host paths outside the root file system's own folders are visible to the guest as they are.
        """
        model = check_model_file(Path(path))
        if model.suffix.lower() != ".tflite":
            raise InputError(f"{model.name}: the qemu runner runs .tflite models (LiteRT); use --runner local")
        return str(model.resolve())

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        """Benchmark the model under emulation in a fresh qemu process.

        Raises:
            InputError: the model or input file is missing or cannot be loaded.
            RunnerError: not connected or set up, qemu crashed, timed out or printed no result.
        """
        if self.sysroot is None or self.qemu is None:
            self.connect()
        assert self.sysroot is not None and self.qemu is not None
        model = self.push(Path(remote_path))
        if settings.input_npy is not None and not Path(settings.input_npy).is_file():
            raise InputError(f"input file not found: {settings.input_npy}")
        with tempfile.TemporaryDirectory(prefix="edgekd-qemu-") as tmp:
            out_path = str(Path(tmp) / "outputs.npy") if settings.save_outputs else None
            python = self.sysroot / emulator_rootfs.PYTHON
            cmd = [self.qemu, "-cpu", self.cpu, "-L", str(self.sysroot), str(python), "-I", str(BENCH_SCRIPT)]
            cmd += script_args(model, settings, out_path)
            logger.debug("running %s", " ".join(cmd))
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    env=emulator_rootfs.guest_env(Path(tmp)),
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise RunnerError(f"emulated run of {Path(model).name} timed out after {self.timeout_s:g} s") from exc
            except OSError as exc:
                raise RunnerError(f"cannot start {self.qemu}: {exc.strerror}") from exc
            if proc.returncode != 0:
                logger.debug("qemu stderr:\n%s", proc.stderr)
                if proc.returncode < 0 or "uncaught target signal" in proc.stderr:
                    raise RunnerError(
                        f"the emulated arm64 python crashed (exit {proc.returncode}) on {Path(model).name}; "
                        "rebuild the emulator with `edgekd emulator setup --force`"
                    )
                raise script_failure(proc.returncode, proc.stderr, f"emulated run ({self.cpu})")
            result = parse_script_output(proc.stdout, self.evidence, settings.threads)
            if out_path is not None:
                result.outputs = np.load(out_path, allow_pickle=False)
                result.extra.pop("outputs_path", None)
        # qemu's own RSS (translation cache included) is not the model's: keep it, but not as the figure.
        result.extra["qemu_peak_rss_bytes"] = result.peak_rss_bytes
        result.peak_rss_bytes = None
        result.extra.update(qemu_cpu=self.cpu, xnnpack=XNNPACK_MARK in proc.stderr, emulated=True)
        if not result.extra["xnnpack"]:
            logger.warning("%s ran without XNNPACK under emulation: not the kernels a board runs", Path(model).name)
        logger.info(
            "%s: %d emulated runs on %s, %s", Path(model).name, len(result.samples_ms), self.cpu, result.runtime
        )
        return result

    def close(self) -> None:
        """Nothing stays behind: models are read where they are."""
        self.sysroot = None
