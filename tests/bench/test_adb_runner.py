"""AdbRunner against a fake adb transport. No phone (and no adb server) was used.

The fake stands in for adbutils' ``AdbClient``/``AdbDevice``: ``device_list()``, ``device(serial)``,
``shell2(cmd, timeout)`` (stdout and stderr merged, as adb's v1 shell does) and ``sync.push/pull``.
The device's ``/data/local/tmp`` is a folder under tmp_path and shell commands run in ``sh`` here, so
the runner's real commands, pushes and parsing are exercised; the "device Python" is this venv's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import adbutils
import pytest
from adbutils._proto import ShellReturn
from adbutils.errors import AdbConnectionError, AdbTimeout

from edgekd.bench.adb_runner import AdbOptions, AdbRunner, parse_benchmark_model
from edgekd.bench.runner_base import BenchSettings
from edgekd.cli.main import main
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError, InputError, RunnerError
from edgekd.core.registry import RUNNERS

pytestmark = pytest.mark.adb
FAST = {"warmup": 2, "runs": 12}
DEVICE_TMP = "/data/local/tmp"

# A benchmark_model stand-in: checks --graph exists, records its arguments, prints LiteRT's summary lines.
FAKE_BENCHMARK_MODEL = """#!{python}
import json, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
if not os.path.isfile(args["graph"]):
    print("ERROR: Could not open '%s'." % args["graph"]); sys.exit(1)
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")
n = sum(1 for _ in open(log)) if os.path.exists(log) else 0
open(log, "a").write(json.dumps(args) + "\\n")
runs, avg = int(args["num_runs"]), 1000.0 + 250.0 * n
print("INFO: Running benchmark for at least %d iterations and at least 0.5 seconds" % int(args["warmup_runs"]))
print("INFO: count=%s first=5000 curr=4000 min=3900 max=5000 avg=4321.5 std=300" % args["warmup_runs"])
print("INFO: Running benchmark for at least %d iterations and at least %s seconds" % (runs, args["min_secs"]))
print("INFO: count=%d first=%d curr=%d min=%d max=%d avg=%.1f std=42" % (runs, avg, avg, avg - 100, avg + 100, avg))
print("INFO: Inference timings in us: Init: 3225, First inference: 15567, Warmup (avg): 4321.5, "
      "Inference (avg): %.1f" % avg)
print("INFO: Peak memory footprint (MB): init=3.5 overall=12.25")
"""


class FakeSync:
    def __init__(self, device: "FakeDevice") -> None:
        self.device = device

    def push(self, src, dst, mode=0o755, check=False) -> int:
        target = self.device.local(dst)
        data = Path(src).read_bytes()
        target.write_bytes(data)
        target.chmod(mode)
        return len(data)

    def pull(self, src, dst, exist_ok=False) -> int:
        data = self.device.local(src).read_bytes()
        Path(dst).write_bytes(data)
        return len(data)


class FakeDevice:
    """An adbutils AdbDevice stand-in whose /data/local/tmp is ``root``."""

    def __init__(self, serial: str, root: Path, fail_first: int = 0) -> None:
        self.serial, self.root, self.fail_first = serial, root, fail_first
        self.sync = FakeSync(self)
        self.commands: list[str] = []
        root.mkdir(parents=True, exist_ok=True)

    def local(self, device_path: str) -> Path:
        assert device_path.startswith(DEVICE_TMP), device_path
        return Path(device_path.replace(DEVICE_TMP, str(self.root), 1))

    def shell2(self, cmd, timeout=None) -> ShellReturn:
        self.commands.append(cmd)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise AdbConnectionError("device offline")
        try:
            proc = subprocess.run(["sh", "-c", cmd.replace(DEVICE_TMP, str(self.root))], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise AdbTimeout(f"shell timeout after {timeout} s") from exc
        return ShellReturn(command=cmd, returncode=proc.returncode, output=proc.stdout)


class FakeClient:
    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices

    def device_list(self) -> list[FakeDevice]:
        return list(self.devices)

    def device(self, serial: str) -> FakeDevice:
        return next(d for d in self.devices if d.serial == serial)


@pytest.fixture
def device(tmp_path) -> FakeDevice:
    return FakeDevice("emulator-5554", tmp_path / "device-tmp")


@pytest.fixture
def fake_tool(tmp_path) -> Path:
    tool = tmp_path / "benchmark_model"
    tool.write_text(FAKE_BENCHMARK_MODEL.format(python=sys.executable))
    tool.chmod(0o755)
    return tool


def _workdirs(device: FakeDevice) -> list[Path]:
    return sorted(device.root.glob("edgekd-bench-*"))


def test_adb_is_registered_and_built_from_the_profile():
    profile = load_target("android-arm64")
    assert RUNNERS.get("adb") is AdbRunner
    r = AdbRunner.from_profile(profile, serial="R58M", benchmark_model="~/bm")
    assert (r.options.serial, r.options.remote_python) == ("R58M", None)  # runtime names the binary, not a python
    assert r.options.benchmark_model == Path("~/bm").expanduser()
    with pytest.raises(ConfigError, match="--host does not apply to the adb runner"):
        AdbRunner.from_profile(profile, host="pi")


def test_python_on_the_device_runs_the_bench_script(device, tiny_onnx):
    runner = AdbRunner(AdbOptions(remote_python=sys.executable), client=FakeClient([device]))
    with runner:
        remote = runner.push(tiny_onnx)
        assert device.local(remote).read_bytes() == tiny_onnx.read_bytes()
        result = runner.run(remote, BenchSettings(save_outputs=True, **FAST))
    assert result.evidence == "measured-device" and result.runtime.startswith("onnxruntime ")
    assert len(result.samples_ms) == FAST["runs"] and all(s > 0 for s in result.samples_ms)
    assert result.outputs is not None and result.outputs.shape == (1, 10)
    assert result.extra["runner"] == "adb" and result.extra["serial"] == "emulator-5554"
    assert _workdirs(device) == []  # removed on close


def test_benchmark_model_binary_is_pushed_called_and_parsed(device, fake_tool, fake_tflite):
    cpu = max(os.sched_getaffinity(0))  # taskset runs here, so pin to a CPU this machine has
    runner = AdbRunner(AdbOptions(benchmark_model=fake_tool, invocations=3), client=FakeClient([device]))
    with runner:
        result = runner.run(runner.push(fake_tflite), BenchSettings(threads=2, warmup=4, runs=30, pin_cpus=[cpu]))
        calls = [json.loads(line) for line in (_workdirs(device)[0] / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 3
    assert {(c["num_threads"], c["warmup_runs"], c["num_runs"]) for c in calls} == {("2", "4", "10")}
    assert all(c["graph"].endswith("/model.tflite") for c in calls)
    assert result.samples_ms == [1.0, 1.25, 1.5]  # each call's "Inference (avg)" in ms, in call order
    assert result.init_ms == pytest.approx(3.225) and result.peak_rss_bytes == int(12.25 * 1024 * 1024)
    assert "not one inference" in result.extra["sample_kind"] and result.evidence == "measured-device"
    assert any(cmd.startswith(f"taskset {1 << cpu:x} ") for cmd in device.commands)  # CPU n -> mask bit n
    assert _workdirs(device) == []


def test_benchmark_model_limits_are_input_errors(device, fake_tool, fake_tflite, tiny_onnx, tmp_path):
    with AdbRunner(AdbOptions(benchmark_model=fake_tool), client=FakeClient([device])) as runner:
        with pytest.raises(InputError, match=r"runs \.tflite models only"):
            runner.push(tiny_onnx)
        with pytest.raises(InputError, match="batch 1 on random inputs only"):
            runner.run(runner.push(fake_tflite), BenchSettings(batch_size=2, **FAST))


def test_parse_litert_benchmark_model_output():
    output = (
        "INFO: STARTING!\nINFO: Num threads: [1]\nINFO: Graph: [/data/local/tmp/m.tflite]\n"
        "INFO: count=153 first=4812 curr=3102 min=3050 max=4812 avg=3260.41 std=203\n"
        "INFO: count=320 first=3110 curr=3090 min=3041 max=3900 avg=3120.7 std=61\n"
        "INFO: Inference timings in us: Init: 18219, First inference: 4812, Warmup (avg): 3260.41, "
        "Inference (avg): 3120.7\n"
    )
    info = parse_benchmark_model(output)
    assert info["count"] == 320 and info["avg_ms"] == pytest.approx(3.1207) and info["std_ms"] == pytest.approx(0.061)
    assert info["min_ms"] == pytest.approx(3.041) and info["max_ms"] == pytest.approx(3.9)
    assert info["init_ms"] == pytest.approx(18.219) and info["first_inference_ms"] == pytest.approx(4.812)
    with pytest.raises(RunnerError, match="printed no timing statistics: ERROR: Could not open"):
        parse_benchmark_model("INFO: STARTING!\nERROR: Could not open 'x.tflite'.\n")


def test_device_without_a_runtime(device, fake_tflite):
    with pytest.raises(RunnerError, match=r"no runtime on adb device \(default\): .*--benchmark-model PATH"):
        AdbRunner(AdbOptions(), client=FakeClient([device])).connect()
    runner = AdbRunner(AdbOptions(remote_python="/usr/bin/python3"), client=FakeClient([device]))
    with runner, pytest.raises(RunnerError, match=r"/usr/bin/python3 lacks numpy, ai-edge-litert; install with"):
        runner.run(runner.push(fake_tflite), BenchSettings(**FAST))
    assert _workdirs(device) == []  # cleaned up after the error


def test_device_selection_errors(tmp_path):
    one, two = FakeDevice("A1", tmp_path / "a"), FakeDevice("B2", tmp_path / "b")
    opts = AdbOptions(remote_python=sys.executable)
    with pytest.raises(RunnerError, match="no adb device is attached; connect one with USB debugging on"):
        AdbRunner(opts, client=FakeClient([])).connect()
    with pytest.raises(RunnerError, match=r"2 adb devices are attached; .* --serial"):
        AdbRunner(opts, client=FakeClient([one, two])).connect()
    with pytest.raises(RunnerError, match=r"adb device C3 is not attached \(attached: A1, B2\)"):
        AdbRunner(AdbOptions(serial="C3", remote_python=sys.executable), client=FakeClient([one, two])).connect()
    with AdbRunner(AdbOptions(serial="B2", remote_python=sys.executable), client=FakeClient([one, two])):
        assert _workdirs(two) and not _workdirs(one)


def test_one_clean_retry_on_adb_errors(tmp_path, tiny_onnx, caplog):
    flaky = FakeDevice("F1", tmp_path / "f", fail_first=1)
    with (
        caplog.at_level("INFO", logger="edgekd"),
        AdbRunner(AdbOptions(remote_python=sys.executable), client=FakeClient([flaky])) as r,
    ):
        assert len(r.run(r.push(tiny_onnx), BenchSettings(**FAST)).samples_ms) == FAST["runs"]
    assert any("retrying once" in rec.message for rec in caplog.records)
    dead = FakeDevice("D1", tmp_path / "d", fail_first=10)
    with pytest.raises(
        RunnerError, match=r"adb shell on adb device \(default\) failed after 2 attempt\(s\): device offline"
    ):
        AdbRunner(AdbOptions(remote_python=sys.executable), client=FakeClient([dead])).connect()


def test_timeout_is_a_runner_error(device, fake_tool, fake_tflite):
    slow = device.root / "slow"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    runner = AdbRunner(AdbOptions(benchmark_model=slow, timeout_s=1), client=FakeClient([device]))
    with runner, pytest.raises(RunnerError, match=r"timed out after 1 s"):
        runner.run(runner.push(fake_tflite), BenchSettings(**FAST))


def test_cli_over_adb_and_bad_input(device, tiny_onnx, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(adbutils, "AdbClient", lambda host, port: FakeClient([device]))
    out = tmp_path / "r.json"
    args = ["bench", str(tiny_onnx), "-t", "android-arm64", "--runner", "profile", "--remote-python", sys.executable,
            "--runs", "10", "--warmup", "1", "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    written = json.loads(out.read_text())
    assert written["runner"] == "adb" and written["evidence"] == "measured-device" and written["stats"]["runs"] == 10
    assert "[measured-device]" in capsys.readouterr().out
    device.commands.clear()
    assert main(["bench", str(tmp_path / "nope.tflite"), "-t", "android-arm64", "--runner", "adb"]) == 2
    assert capsys.readouterr().err.strip() == f"error: model not found: {tmp_path / 'nope.tflite'}"
    assert device.commands == []  # rejected before touching the device
    args = [
        "bench",
        str(tiny_onnx),
        "-t",
        "android-arm64",
        "--runner",
        "adb",
        "--benchmark-model",
        str(tmp_path / "bm"),
    ]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: benchmark_model binary not found: {tmp_path / 'bm'}"


class NoServer:
    """adbutils' client when no adb server answers (it tries `adb start-server`, then gives up)."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def device_list(self):
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error", [AdbConnectionError("connect to adb server failed: [Errno 111] Connection refused"), AdbTimeout("slow")]
)
def test_no_adb_server_is_a_runner_error_after_one_retry(error):
    client = NoServer(error)
    with pytest.raises(RunnerError, match=r"adb connecting on .* failed after 2 attempt\(s\): .*`adb devices`") as info:
        AdbRunner(AdbOptions(remote_python=sys.executable), client=client).connect()
    assert client.calls == 2 and "--timeout" not in str(info.value)


def test_device_python_that_does_not_run(device):
    with pytest.raises(
        RunnerError, match=r"/nonexistent/python does not run on adb device .*Termux.*--benchmark-model"
    ):
        AdbRunner(AdbOptions(remote_python="/nonexistent/python"), client=FakeClient([device])).connect()
    assert _workdirs(device) == []
