"""AdbRunner: benchmark on an Android device over adb (adbutils); figures are ``measured-device``.

Two ways to run on the device:

* **a Python runtime on the device** (``remote_python``, e.g. Termux's ``python`` with numpy and
  ai-edge-litert): ``bench_script.py`` is pushed and run exactly as on an SSH board (raw samples).
* **LiteRT's ``benchmark_model`` binary** (``benchmark_model``: a local file to push, or one already at
  ``<device_dir>/benchmark_model``): ``.tflite`` only. It prints summaries, not per-inference times, so
  the runner calls it ``invocations`` times and each sample is one call's mean; ``extra`` says so.

The runner works in ``<device_dir>/edgekd-bench-<id>`` and removes it in :meth:`AdbRunner.close`.

Example:
    >>> with AdbRunner(AdbOptions(benchmark_model=Path("android_aarch64_benchmark_model"))) as r:  # doctest: +SKIP
    ...     result = r.run(r.push(Path("student.tflite")), BenchSettings(runs=100))
"""

from __future__ import annotations

import logging
import math
import posixpath
import re
import shlex
import statistics
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
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
    interpreter_from_runtime,
    last_line,
    parse_script_output,
    script_args,
    script_failure,
    take_options,
)
from edgekd.core.errors import InputError, RunnerError

if TYPE_CHECKING:
    from edgekd.config.target_profile import TargetProfile

logger = logging.getLogger(__name__)

_OPTIONS = {"serial", "remote_python", "benchmark_model", "timeout"}
_STAT = re.compile(r"count=(\d+).*?avg=([\d.eE+-]+)")
_KEYVAL = re.compile(r"(\w+)=([\d.eE+-]+)")
_TIMINGS = re.compile(r"Init: ([\d.]+), First inference: ([\d.]+)")
_PEAK = re.compile(r"Peak memory footprint \(MB\): init=([\d.]+) overall=([\d.]+)")


@dataclass(frozen=True)
class AdbOptions:
    """How to reach one device and what runs the model there.

    Attributes:
        serial: device serial; None = the only device ``adb devices`` lists.
        remote_python: interpreter on the device; when set, ``bench_script.py`` is used.
        benchmark_model: local LiteRT ``benchmark_model`` binary to push (used when no ``remote_python``).
        device_dir: writable folder on the device.
        adb_host: adb server host.
        adb_port: adb server port.
        timeout_s: wall-clock limit of one command on the device.
        retries: clean retries after the device connection fails.
        invocations: ``benchmark_model`` calls per run (each gives one sample, the call's mean).
    """

    serial: str | None = None
    remote_python: str | None = None
    benchmark_model: Path | None = None
    device_dir: str = "/data/local/tmp"
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    timeout_s: float = 900.0
    retries: int = 1
    invocations: int = 5


class AdbRunner(Runner):
    """Runs a model on an adb device through its Python or a ``benchmark_model`` binary.

    Args:
        options: device and runtime settings.
        client: an adbutils ``AdbClient`` (or a stand-in with ``device_list()`` and ``device(serial)``);
            None connects to the adb server at ``options.adb_host:adb_port``.
    """

    capabilities: frozenset[Capability] = frozenset({"latency", "memory"})
    evidence: Evidence = Evidence.MEASURED_DEVICE

    def __init__(self, options: AdbOptions, client: Any = None) -> None:
        self.options = options
        self._client = client
        self._device: Any = None
        self._workdir: str | None = None
        self._tool: str | None = None

    @classmethod
    def from_profile(cls, profile: TargetProfile, **options: Any) -> Self:
        """Settings from ``profile.runner`` (``serial``; ``runtime`` when it names an interpreter) and options
        (``serial``, ``remote_python``, ``benchmark_model``, ``timeout`` in s)."""
        opts = take_options("adb", options, _OPTIONS)
        tool = opts.get("benchmark_model")
        return cls(
            AdbOptions(
                serial=opts.get("serial") or profile.runner.serial,
                remote_python=opts.get("remote_python") or interpreter_from_runtime(profile.runner.runtime),
                benchmark_model=Path(tool).expanduser() if tool else None,
                timeout_s=float(opts.get("timeout") or 900.0),
            )
        )

    @property
    def where(self) -> str:
        return f"adb device {self.options.serial or '(default)'}"

    def connect(self) -> None:
        """Find the device, make the work folder and put the runtime there (script or binary).

        Raises:
            InputError: the ``benchmark_model`` file given does not exist.
            RunnerError: no device, several devices and no serial, adb errors, or no runtime on the device.
        """
        o = self.options
        if o.remote_python is None and o.benchmark_model is not None and not o.benchmark_model.is_file():
            raise InputError(f"benchmark_model binary not found: {o.benchmark_model}")
        self._device = self._retrying("connecting", self._find_device)
        self._workdir = posixpath.join(o.device_dir, f"edgekd-bench-{uuid.uuid4().hex[:10]}")
        try:
            self._shell(f"mkdir -p {shlex.quote(self._workdir)}", check=True)
            self._install_tool()
        except BaseException:
            self.close()  # a context manager's __exit__ does not run when __enter__ fails
            raise

    def _install_tool(self) -> None:
        o = self.options
        assert self._workdir is not None
        if o.remote_python is not None:
            self._tool = posixpath.join(self._workdir, "bench_script.py")
            self._push_file(BENCH_SCRIPT, self._tool)
            code, out = self._shell(f"{shlex.quote(o.remote_python)} -c 'import sys; print(sys.version)'")
            if code != 0:
                raise RunnerError(f"{o.remote_python} does not run on {self.where} ({last_line(out)}); install a "
                                  "Python there (e.g. Termux) or use --benchmark-model")  # fmt: skip
        elif o.benchmark_model is not None:
            self._tool = posixpath.join(self._workdir, "benchmark_model")
            self._push_file(o.benchmark_model, self._tool, mode=0o755)
        else:
            self._tool = posixpath.join(o.device_dir, "benchmark_model")
            code, _ = self._shell(f"test -x {shlex.quote(self._tool)}")
            if code != 0:
                raise RunnerError(
                    f"no runtime on {self.where}: no {self._tool}; pass --benchmark-model PATH (LiteRT's "
                    "android_aarch64 benchmark_model) or --remote-python for a Python with ai-edge-litert"
                )

    def _find_device(self) -> Any:
        if self._client is None:
            import adbutils

            self._client = adbutils.AdbClient(host=self.options.adb_host, port=self.options.adb_port)
        if self.options.serial:
            serials = [d.serial for d in self._client.device_list()]
            if self.options.serial not in serials:
                raise RunnerError(f"adb device {self.options.serial} is not attached (attached: "
                                  f"{', '.join(serials) or 'none'}); check the cable and `adb devices`")  # fmt: skip
            return self._client.device(self.options.serial)
        devices = self._client.device_list()
        if len(devices) != 1:
            what = "no adb device is attached" if not devices else f"{len(devices)} adb devices are attached"
            raise RunnerError(f"{what}; connect one with USB debugging on, or pass --serial")
        return devices[0]

    def _retrying(self, what: str, step: Any) -> Any:
        """``step()`` with one clean retry on adb connection errors; a command timeout is not retried."""
        from adbutils.errors import AdbError, AdbTimeout

        for attempt in range(self.options.retries + 1):
            try:
                return step()
            except AdbTimeout as exc:
                if what == "shell":
                    raise RunnerError(f"command on {self.where} timed out after {self.options.timeout_s:g} s "
                                      f"({exc}); raise --timeout or lower --runs/--min-seconds") from None  # fmt: skip
                error: Exception = exc
            except (AdbError, OSError, subprocess.SubprocessError) as exc:
                error = exc
            reason = " ".join(str(error).split()) or type(error).__name__
            if attempt >= self.options.retries:
                hint = "; is the adb server running (`adb devices`)?" if what == "connecting" else ""
                raise RunnerError(f"adb {what} on {self.where} failed after {attempt + 1} attempt(s): {reason}{hint}")
            logger.info("adb %s on %s: %s; retrying once", what, self.where, reason)
        raise AssertionError("unreachable")

    def _shell(self, command: str, check: bool = False) -> tuple[int, str]:
        """(exit code, stdout+stderr) of a device shell command; RunnerError if ``check`` and it failed."""
        result = self._retrying("shell", lambda: self._device.shell2(command, timeout=self.options.timeout_s))
        if check and result.returncode != 0:
            raise RunnerError(f"`{command}` failed on {self.where}: {last_line(result.output)}")
        return result.returncode, result.output

    def _push_file(self, local: Path, remote: str, mode: int = 0o644) -> None:
        self._retrying("pushing " + local.name, lambda: self._device.sync.push(str(local), remote, mode=mode))

    def push(self, path: Path) -> str:
        """Push the model (with its OpenVINO ``.bin`` and any sidecar) to the work folder; InputError if unusable."""
        model = check_model_file(Path(path))
        if self.options.remote_python is None and model.suffix.lower() != ".tflite":
            raise InputError(f"{model.name}: benchmark_model runs .tflite models only; use --remote-python for others")
        if self._workdir is None:
            self.connect()
        assert self._workdir is not None
        extras = [model.with_suffix(".bin") if model.suffix.lower() == ".xml" else None,
                  model.with_name(model.name + ".sidecar.json"), model.with_suffix(".sidecar.json")]  # fmt: skip
        for f in [model, *extras]:
            if f is not None and f.is_file():
                self._push_file(f, posixpath.join(self._workdir, f.name))
        return posixpath.join(self._workdir, model.name)

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        """Benchmark the pushed model.

        Raises:
            InputError: the input file is missing, or the runtime cannot use the model or the settings.
            RunnerError: adb failures, timeouts, a missing runtime or unparseable output.
        """
        if self._workdir is None or self._tool is None:
            raise RunnerError("adb runner is not connected; use it as a context manager")
        if self.options.remote_python is not None:
            result = self._run_script(remote_path, settings)
        else:
            result = self._run_benchmark_model(remote_path, settings)
        result.extra.update(runner="adb", serial=getattr(self._device, "serial", None))
        return result

    def _run_script(self, remote_path: str, settings: BenchSettings) -> RunResult:
        assert self._workdir is not None and self.options.remote_python is not None
        if settings.input_npy is not None:
            local = Path(settings.input_npy)
            if not local.is_file():
                raise InputError(f"input file not found: {local}")
            remote_input = posixpath.join(self._workdir, "input-" + local.name)
            self._push_file(local, remote_input)
            settings = _with_input(settings, remote_input)
        outputs = posixpath.join(self._workdir, "outputs.npy") if settings.save_outputs else None
        args = " ".join(shlex.quote(a) for a in script_args(remote_path, settings, outputs))
        code, out = self._shell(f"{shlex.quote(self.options.remote_python)} {shlex.quote(self._tool or '')} {args}")
        if code != 0:
            raise script_failure(code, out, self.where)
        result = parse_script_output(out, self.evidence, settings.threads)
        if outputs is not None:
            with tempfile.TemporaryDirectory(prefix="edgekd-adb-") as tmp:
                self._retrying("pulling outputs", lambda: self._device.sync.pull(outputs, str(Path(tmp) / "o.npy")))
                result.outputs = np.load(Path(tmp) / "o.npy", allow_pickle=False)
            result.extra.pop("outputs_path", None)
        return result

    def _run_benchmark_model(self, remote_path: str, settings: BenchSettings) -> RunResult:
        if settings.batch_size != 1 or settings.input_npy is not None or settings.save_outputs:
            raise InputError("benchmark_model runs batch 1 on random inputs only; use --remote-python for more")
        calls = max(1, min(self.options.invocations, settings.runs))
        per_call = math.ceil(settings.runs / calls)
        command = (f"{shlex.quote(self._tool or '')} --graph={shlex.quote(remote_path)} "
                   f"--num_threads={settings.threads} --warmup_runs={settings.warmup} --num_runs={per_call} "
                   f"--min_secs={settings.min_seconds / calls:g}")  # fmt: skip
        if settings.pin_cpus is not None:
            command = f"taskset {sum(1 << c for c in settings.pin_cpus):x} {command}"
        calls_info = []
        for _ in range(calls):
            code, out = self._shell(command)
            if code != 0:
                raise RunnerError(f"benchmark_model failed on {self.where}: {last_line(out) or f'exit code {code}'}")
            calls_info.append(parse_benchmark_model(out))
        return RunResult(
            samples_ms=[c["avg_ms"] for c in calls_info],
            init_ms=statistics.fmean(c["init_ms"] for c in calls_info) if calls_info[0].get("init_ms") else None,
            peak_rss_bytes=max((c.get("peak_bytes") or 0) for c in calls_info) or None,
            runtime="litert benchmark_model",
            evidence=self.evidence,
            threads=settings.threads,
            extra={
                "sample_kind": f"mean of one benchmark_model call ({per_call}+ inferences each), not one inference",
                "calls": calls_info,
            },
        )

    def close(self) -> None:
        """Remove the work folder from the device; logs (never raises) if the device is gone."""
        workdir, self._workdir = self._workdir, None
        if workdir is None or self._device is None or "edgekd-bench-" not in workdir:
            return
        try:
            code, out = self._shell(f"rm -rf {shlex.quote(workdir)}")
            if code != 0:
                logger.warning("could not remove %s on %s: %s", workdir, self.where, last_line(out))
        except RunnerError as exc:
            logger.warning("could not remove %s on %s (%s); delete it by hand", workdir, self.where, exc)


def parse_benchmark_model(output: str) -> dict[str, float]:
    """Facts from one ``benchmark_model`` call's output: the timed section's count/avg/min/max/std (ms).

    Raises:
        RunnerError: no statistics line (the tool failed or printed something else).
    """
    stat_lines = [ln for ln in output.splitlines() if _STAT.search(ln)]
    if not stat_lines:
        raise RunnerError(f"benchmark_model printed no timing statistics: {last_line(output) or 'no output'}")
    values = {k: float(v) for k, v in _KEYVAL.findall(stat_lines[-1])}  # the last one is the timed section
    info = {f"{k}_ms": v / 1000.0 for k, v in values.items() if k != "count"}
    info["count"] = values["count"]
    timings = _TIMINGS.search(output)
    if timings:
        info["init_ms"], info["first_inference_ms"] = (float(v) / 1000.0 for v in timings.groups())
    peak = _PEAK.search(output)
    if peak:
        info["peak_bytes"] = float(peak.group(2)) * 1024 * 1024
    return info


def _with_input(settings: BenchSettings, remote_input: str) -> BenchSettings:
    import dataclasses

    return dataclasses.replace(settings, input_npy=Path(remote_input))
