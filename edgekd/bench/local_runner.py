"""LocalRunner: benchmark on this host, in a fresh Python process running ``bench_script.py``.

A fresh process per run keeps the runtime's thread pools, allocator state and peak RSS apart from
edgekd's own (torch, the training job) and from other runs. Figures are ``measured-host``: they
describe this machine, not an edge target, unless this machine *is* the target.

Example:
    >>> with LocalRunner() as runner:  # doctest: +SKIP
    ...     result = runner.run(runner.push(Path("student.onnx")), BenchSettings(runs=100))
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

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
from edgekd.core.errors import InputError, RunnerError

if TYPE_CHECKING:
    from edgekd.config.target_profile import TargetProfile

logger = logging.getLogger(__name__)

# onnxruntime otherwise may write telemetry; the script itself quiets LiteRT and numpy's BLAS pool.
_QUIET_ENV = {"ORT_DISABLE_TELEMETRY": "1"}


class LocalRunner(Runner):
    """Runs ``bench_script.py`` with this interpreter (the project's virtualenv) in a subprocess.

    Args:
        python: interpreter to run the script with; defaults to the current one.
        timeout_s: wall-clock limit per run; the process is killed past it.
    """

    capabilities: frozenset[Capability] = frozenset({"latency", "memory"})
    evidence: Evidence = Evidence.MEASURED_HOST

    def __init__(self, python: str | None = None, timeout_s: float = 600.0) -> None:
        self.python = python or sys.executable
        self.timeout_s = timeout_s

    @classmethod
    def from_profile(cls, profile: TargetProfile, **options: Any) -> Self:
        """A local runner; options: ``remote_python`` (the interpreter to use) and ``timeout`` (s)."""
        opts = take_options("local", options, {"remote_python", "timeout"})
        return cls(python=opts.get("remote_python"), timeout_s=float(opts.get("timeout", 600.0)))

    def connect(self) -> None:
        """Nothing to reach; checks the interpreter and the script exist."""
        if not Path(self.python).exists():
            raise RunnerError(f"python interpreter not found: {self.python}")
        if not BENCH_SCRIPT.is_file():
            raise RunnerError(f"bench script missing: {BENCH_SCRIPT}")

    def push(self, path: Path) -> str:
        """Check the model locally (InputError if unusable) and return its absolute path."""
        return str(check_model_file(Path(path)).resolve())

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        """Benchmark the model in a fresh process.

        Raises:
            InputError: the model or input file is missing or cannot be loaded.
            RunnerError: the process failed, timed out or printed no result.
        """
        model = self.push(Path(remote_path))
        if settings.input_npy is not None and not Path(settings.input_npy).is_file():
            raise InputError(f"input file not found: {settings.input_npy}")
        with tempfile.TemporaryDirectory(prefix="edgekd-bench-") as tmp:
            out_path = str(Path(tmp) / "outputs.npy") if settings.save_outputs else None
            cmd = [self.python, str(BENCH_SCRIPT), *script_args(model, settings, out_path)]
            logger.debug("running %s", " ".join(cmd))
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                    env={**os.environ, **_QUIET_ENV},
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise RunnerError(
                    f"local benchmark of {Path(model).name} timed out after {self.timeout_s:g} s"
                ) from exc
            except OSError as exc:
                raise RunnerError(f"cannot start {self.python}: {exc.strerror}") from exc
            if proc.returncode != 0:
                logger.debug("bench script stderr:\n%s", proc.stderr)
                raise script_failure(proc.returncode, proc.stderr, "local benchmark")
            result = parse_script_output(proc.stdout, self.evidence, settings.threads)
            if out_path is not None:
                result.outputs = np.load(out_path, allow_pickle=False)
                result.extra.pop("outputs_path", None)
        logger.info(
            "%s: %d runs, %s, %d thread(s)",
            Path(model).name,
            len(result.samples_ms),
            result.runtime,
            result.threads,
        )
        return result

    def close(self) -> None:
        """Nothing to release."""
