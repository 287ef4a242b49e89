"""QemuRunner: CPU choice from the profile, clear errors, and real runs on the emulated Arm core."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.bench import emulator_rootfs as er
from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.qemu_runner import QemuRunner, qemu_cpu_for
from edgekd.bench.runner_base import BenchSettings, Runner
from edgekd.cli.main import main
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError, InputError, RunnerError
from edgekd.core.registry import RUNNERS

FAST = {"warmup": 1, "runs": 3}


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory) -> Path:
    import litert_torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    litert_torch.convert(TinyNet().eval(), (torch.randn(1, 3, 16, 16),)).export(str(path))
    return path


def _with_runner(profile_name: str, **runner_fields):
    profile = load_target(profile_name)
    return profile.model_copy(update={"runner": profile.runner.model_copy(update=runner_fields)})


def test_qemu_runner_is_registered():
    assert RUNNERS.get("qemu") is QemuRunner
    assert isinstance(QemuRunner(), Runner)
    assert QemuRunner.evidence == "measured-emulated"
    assert QemuRunner.capabilities == {"latency"}


@pytest.mark.parametrize(
    ("target", "cpu"), [("cortex-a76", "cortex-a76"), ("cortex-a72", "cortex-a72"), ("cortex-a53", "cortex-a53")]
)
def test_cpu_follows_the_profiles_core(target, cpu):
    assert qemu_cpu_for(load_target(target)) == cpu
    assert QemuRunner.from_profile(load_target(target)).cpu == cpu


def test_profile_qemu_cpu_wins_and_max_is_refused():
    assert QemuRunner.from_profile(_with_runner("cortex-a53", qemu_cpu="neoverse-n1")).cpu == "neoverse-n1"
    with pytest.raises(ConfigError, match="wrong results"):
        QemuRunner.from_profile(_with_runner("cortex-a76", qemu_cpu="max"))
    with pytest.raises(ConfigError, match="wrong results"):
        QemuRunner(cpu="max")


def test_options_of_other_runners_are_refused_and_timeout_is_taken():
    assert QemuRunner.from_profile(load_target("cortex-a76"), timeout=42).timeout_s == 42.0
    with pytest.raises(ConfigError, match="--host does not apply to the qemu runner"):
        QemuRunner.from_profile(load_target("cortex-a76"), host="board.local")


def test_an_x86_target_cannot_be_emulated():
    with pytest.raises(ConfigError, match="emulates aarch64"):
        QemuRunner.from_profile(load_target("x86-64-host"))


def test_missing_emulator_is_a_runner_error_saying_what_to_run(tmp_path, tflite_model, monkeypatch, capsys):
    with pytest.raises(RunnerError, match=r"Arm emulator not set up .*run `edgekd emulator setup`"):
        QemuRunner(root=tmp_path).connect()
    monkeypatch.setenv(er.ENV_DIR, str(tmp_path))
    code = main(["bench", str(tflite_model), "--target", "cortex-a76", "--runner", "qemu", "--runs", "1"])
    assert code == 3
    assert "run `edgekd emulator setup`" in capsys.readouterr().err


def test_only_tflite_models_are_accepted(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07fake onnx")
    with pytest.raises(InputError, match=r"runs \.tflite models"):
        QemuRunner().push(onnx)


# --- on the real emulator ---


@pytest.fixture(scope="module")
def qemu():
    with QemuRunner(timeout_s=600) as runner:
        yield runner


@pytest.mark.emulator
def test_random_inputs_run_on_the_emulated_core_with_xnnpack(qemu, tflite_model):
    settings = BenchSettings(threads=1, **FAST)
    result = qemu.run(qemu.push(tflite_model), settings)
    assert len(result.samples_ms) == settings.runs and all(s > 0 for s in result.samples_ms)
    assert result.evidence == "measured-emulated"
    assert re.fullmatch(r"ai-edge-litert \d+\.\d+.*", result.runtime)
    assert result.extra["machine"] == "aarch64"
    assert result.extra["xnnpack"] is True
    assert result.extra["qemu_cpu"] == "cortex-a76"
    assert result.peak_rss_bytes is None and result.extra["qemu_peak_rss_bytes"] > 0
    assert json.loads(json.dumps(result.to_json()))["evidence"] == "measured-emulated"


@pytest.mark.emulator
def test_outputs_agree_with_the_x86_litert_run(qemu, tflite_model, tmp_path):
    x = np.random.default_rng(1).standard_normal((8, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    settings = BenchSettings(threads=1, warmup=0, runs=1, input_npy=tmp_path / "x.npy", save_outputs=True)
    arm = qemu.run(qemu.push(tflite_model), settings)
    with LocalRunner() as local:
        host = local.run(local.push(tflite_model), settings)
    assert arm.outputs is not None and host.outputs is not None
    assert arm.outputs.shape == host.outputs.shape == (8, 10)
    np.testing.assert_allclose(arm.outputs, host.outputs, atol=1e-4)
    assert host.extra["machine"] != arm.extra["machine"] == "aarch64"


@pytest.mark.emulator
def test_a_view_without_the_fake_cpuinfo_is_a_clear_runner_error(tmp_path, tflite_model):
    """With the host's x86 /proc/cpuinfo visible, XNNPACK's cpuinfo crashes the guest: say so, one line."""
    real = er.status()
    assert real.ready, "run `edgekd emulator setup`"
    sysroot = tmp_path / "sysroot"
    view = sysroot / "cpu" / "cortex-a76"
    view.mkdir(parents=True)
    (sysroot / "base").symlink_to(real.path / "base")
    (sysroot / "stamp.json").write_text((real.path / "stamp.json").read_text())
    for entry in (real.path / "base").iterdir():
        (view / entry.name).symlink_to(os.path.relpath(sysroot / "base" / entry.name, view))
    with QemuRunner(root=tmp_path, timeout_s=300) as broken, pytest.raises(RunnerError, match="crashed") as info:
        broken.run(broken.push(tflite_model), BenchSettings(**FAST))
    assert "edgekd emulator setup --force" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.emulator
@pytest.mark.slow
def test_bench_cli_labels_qemu_timings_emulated(tflite_model, capsys):
    code = main(["bench", str(tflite_model), "--target", "cortex-a76", "--runner", "qemu", "--runs", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["evidence"] == "measured-emulated"
    assert data["stats"]["runs"] >= 3
