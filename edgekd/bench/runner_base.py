"""Runner contract: settings in, raw samples out, plus helpers every script-driven runner shares.

A runner reaches one place that can execute a model (this host, a qemu root file system, an ssh
board, an adb phone), pushes the exported artifact there, runs ``bench_script.py`` and returns the
raw per-inference timings. Only :mod:`edgekd.bench.stats` turns samples into figures.

Example:
    >>> from edgekd.core.registry import RUNNERS  # doctest: +SKIP
    >>> with RUNNERS.get("local").from_profile(load_target("x86-64-host")) as runner:  # doctest: +SKIP
    ...     remote = runner.push(Path("student.onnx"))
    ...     result = runner.run(remote, BenchSettings(threads=1, runs=100))
    >>> summarize(result.samples_ms).p50_ms  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np

from edgekd.core.errors import ConfigError, InputError, RunnerError
from edgekd.core.evidence import Evidence

logger = logging.getLogger(__name__)

Capability = Literal["latency", "memory", "energy"]

BENCH_SCRIPT = Path(__file__).with_name("bench_script.py")
"""The self-contained script runners execute (locally or after pushing it to a device)."""

SCRIPT_EXIT_INPUT = 2
"""bench_script exit code for an unusable model or input file; anything else nonzero is a runner error."""

SCRIPT_ERROR_PREFIX = "bench_script: error: "
"""How bench_script marks its one-line error message on stderr."""

MODEL_SUFFIXES = (".onnx", ".xml", ".tflite", ".pte")


@dataclass(frozen=True)
class BenchSettings:
    """How to benchmark one model.

    Attributes:
        threads: runtime intra-op threads.
        warmup: untimed inferences before timing.
        runs: minimum number of timed inferences.
        min_seconds: keep timing until both ``runs`` and this much wall time are reached.
        batch_size: inputs per inference (the model's batch dimension must allow it).
        pin_cpus: CPU ids to pin the process to (``os.sched_setaffinity``); None leaves affinity alone.
        seed: seed for random inputs.
        input_npy: real inputs (float, NCHW or the model's layout); None uses random normal data.
        save_outputs: return the first output for the input data in :attr:`RunResult.outputs`.
    """

    threads: int = 1
    warmup: int = 10
    runs: int = 50
    min_seconds: float = 0.0
    batch_size: int = 1
    pin_cpus: list[int] | None = None
    seed: int = 0
    input_npy: Path | None = None
    save_outputs: bool = False

    def __post_init__(self) -> None:
        if self.threads < 1 or self.runs < 1 or self.batch_size < 1:
            raise InputError("threads, runs and batch_size must be at least 1")
        if self.warmup < 0 or self.min_seconds < 0:
            raise InputError("warmup and min_seconds must not be negative")
        if self.pin_cpus is not None and (not self.pin_cpus or min(self.pin_cpus) < 0):
            raise InputError(f"pin_cpus must list CPU ids >= 0, got {self.pin_cpus}")


@dataclass
class RunResult:
    """What one benchmark run produced: raw samples and facts about how they were taken.

    Attributes:
        samples_ms: one entry per timed inference, milliseconds (warm-up excluded).
        init_ms: model load + compile time, milliseconds.
        peak_rss_bytes: peak resident set size of the benchmarking process, if measurable.
        runtime: runtime name and version, e.g. ``"onnxruntime 1.32.0"``.
        evidence: where the figures come from (host, emulator, device, or a prediction).
        threads: intra-op threads the runtime was configured with.
        precision: ``"fp32"``/``"int8"`` when known.
        outputs: first model output for the input data, when requested (not serialised).
        extra: runner- and runtime-specific facts (first inference time, affinity, ...).
    """

    samples_ms: list[float]
    init_ms: float | None
    peak_rss_bytes: int | None
    runtime: str
    evidence: Evidence
    threads: int
    precision: str | None = None
    outputs: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-able dict of every field except ``outputs``."""
        return {
            "samples_ms": list(self.samples_ms),
            "init_ms": self.init_ms,
            "peak_rss_bytes": self.peak_rss_bytes,
            "runtime": self.runtime,
            "evidence": self.evidence,
            "threads": self.threads,
            "precision": self.precision,
            "extra": dict(self.extra),
        }


@runtime_checkable
class Runner(Protocol):
    """Connect / push an artifact / run timed inferences / close.

    Implementations may subclass this protocol to inherit the context-manager methods, which call
    :meth:`connect` and :meth:`close`. Each also has a classmethod
    ``from_profile(profile: TargetProfile, **options) -> Self`` that ``edgekd bench`` calls with the options
    the user gave (see :func:`take_options`); :meth:`close` must also run after errors and remove
    anything pushed.
    """

    capabilities: frozenset[Capability]

    def connect(self) -> None:
        """Reach the device; RunnerError if it cannot."""
        ...

    def push(self, path: Path) -> str:
        """Make the model at ``path`` available to the device; return the path to pass to :meth:`run`."""
        ...

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        """Benchmark the pushed model and return raw samples."""
        ...

    def close(self) -> None:
        """Release the connection and anything pushed that should not stay."""
        ...

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_model_file(path: Path) -> Path:
    """Cheap checks a model file is plausible before spending a process or a push on it.

    Args:
        path: an ``.onnx``/``.tflite`` file, an OpenVINO ``.xml`` (with its ``.bin``) or a folder
            holding exactly one ``.xml``.

    Returns:
        The model path to hand to the script (the ``.xml`` for an OpenVINO folder).

    Raises:
        InputError: missing, empty, of an unknown kind, or visibly not that kind of file.
    """
    path = Path(path)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise InputError(f"{path}: expected exactly one OpenVINO .xml in the folder, found {len(xmls)}")
        path = xmls[0]
    if not path.is_file():
        raise InputError(f"model not found: {path}")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise InputError(f"{path}: unknown model kind; expected one of {', '.join(MODEL_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: model file is empty")
    with path.open("rb") as f:
        head = f.read(64)
    suffix = path.suffix.lower()
    if suffix == ".tflite" and head[4:8] != b"TFL3":
        raise InputError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
    if suffix == ".pte" and head[4:6] != b"ET":
        raise InputError(f"{path}: not an ExecuTorch program (no ET identifier)")
    if suffix == ".xml":
        if not head.lstrip().startswith((b"<?xml", b"<net")):
            raise InputError(f"{path}: not an OpenVINO IR .xml file")
        if not path.with_suffix(".bin").is_file():
            raise InputError(f"{path}: OpenVINO IR weights {path.with_suffix('.bin').name} are missing")
    return path


def script_args(model: str, settings: BenchSettings, save_outputs: str | None = None) -> list[str]:
    """Command-line arguments for ``bench_script.py`` (after the interpreter and script path)."""
    args = [
        model,
        f"--threads={settings.threads}",
        f"--warmup={settings.warmup}",
        f"--runs={settings.runs}",
        f"--min-seconds={settings.min_seconds}",
        f"--batch={settings.batch_size}",
        f"--seed={settings.seed}",
    ]
    if settings.pin_cpus is not None:
        args.append("--pin=" + ",".join(str(c) for c in settings.pin_cpus))
    if settings.input_npy is not None:
        args.append(f"--input={settings.input_npy}")
    if save_outputs is not None:
        args.append(f"--save-outputs={save_outputs}")
    return args


def last_line(text: str) -> str:
    """The last non-blank line of ``text`` (stripped), or ``""``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def script_failure(returncode: int, stderr: str, where: str) -> InputError | RunnerError:
    """The error for a failed script run: InputError for exit 2, else RunnerError; one line.

    The message is the script's last ``bench_script: error:`` line (runtimes may print after it),
    else the last stderr line.
    """
    marked = [ln.strip() for ln in stderr.splitlines() if ln.startswith(SCRIPT_ERROR_PREFIX)]
    if marked:
        message = marked[-1][len(SCRIPT_ERROR_PREFIX) :]
    else:
        message = last_line(stderr) or f"bench script exited with code {returncode}"
    if returncode == SCRIPT_EXIT_INPUT:
        return InputError(message)
    return RunnerError(f"{where}: {message}")


def parse_script_output(stdout: str, evidence: Evidence, threads: int) -> RunResult:
    """Turn bench_script's JSON line into a :class:`RunResult` (without outputs).

    Raises:
        RunnerError: no parseable JSON line, or one without samples.
    """
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.lstrip().startswith("{")), "")
    try:
        data = json.loads(line)
        samples = [float(s) for s in data.pop("samples_ms")]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RunnerError(f"bench script printed no result line ({exc.__class__.__name__})") from exc
    if not samples:
        raise RunnerError("bench script returned no samples")
    if data.get("emulated"):  # the "device" was edgekd's Arm emulator: its timings say nothing about speed
        evidence = "measured-emulated"
    return RunResult(
        samples_ms=samples,
        init_ms=data.pop("init_ms", None),
        peak_rss_bytes=data.pop("peak_rss_bytes", None),
        runtime=str(data.pop("runtime", "unknown")),
        evidence=evidence,
        threads=int(data.pop("threads", threads)),
        precision=data.pop("precision", None),
        extra=data,
    )


def take_options(runner: str, options: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The options a runner's ``from_profile`` understands; ConfigError naming any it does not.

    Option names are the ``edgekd bench`` flags with underscores (``key_file`` for ``--key-file``);
    callers pass only options the user set, so an option meant for another runner is an error.
    """
    unknown = sorted(set(options) - allowed)
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        raise ConfigError(f"{flags} does not apply to the {runner} runner; drop it or pick another --runner")
    return dict(options)


def interpreter_from_runtime(runtime: str | None) -> str | None:
    """``profile.runner.runtime`` names either a runtime package (``ai-edge-litert``) or, for script runners,
    the interpreter to use on the device (``/usr/bin/python3``, ``python3.11``); return the latter or None."""
    if runtime and ("/" in runtime or runtime.startswith("python")):
        return runtime
    return None
