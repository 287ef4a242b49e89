"""Arm numerical parity: the exported .tflite run on an emulated Cortex-A76 against x86 and PyTorch."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.bench.arm_parity import ArmParityResult, arm_outputs, arm_parity
from edgekd.bench.runner_base import RunResult
from edgekd.core.errors import InputError, RunnerError
from edgekd.export import ParityResult, read_sidecar

MIN_ARM_X86_AGREEMENT = 0.99  # the bar for int8 on the test split


class FakeQemu:
    """Stands in for QemuRunner: returns given outputs (or a wrong number of them)."""

    cpu = "cortex-a76"

    def __init__(self, outputs: np.ndarray) -> None:
        self.outputs = outputs

    def push(self, path: Path) -> str:
        return str(path)

    def run(self, remote: str, settings) -> RunResult:
        assert settings.save_outputs and settings.input_npy is not None and settings.input_npy.is_file()
        result = RunResult([1.0], 1.0, None, "ai-edge-litert 2.3.0", "measured-emulated", 1)
        result.outputs, result.extra = self.outputs, {"xnnpack": True}
        return result


def test_record_has_the_x86_parity_fields_plus_where_it_ran():
    parity = ParityResult(0.995, 0.1, 0.01, 0.8, 0.81, 3, 2000)
    record = ArmParityResult(parity, "cortex-a76", "ai-edge-litert 2.3.0", True, 12.34).to_json()
    assert {f.name for f in dataclasses.fields(ParityResult)} <= set(record)
    assert record["agreement"] == 0.995 and record["samples"] == 2000
    assert (record["runner"], record["qemu_cpu"], record["evidence"]) == ("qemu", "cortex-a76", "measured-emulated")
    assert record["xnnpack"] is True and record["seconds"] == 12.3


def test_comparison_uses_the_emulated_outputs(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((10, 4)).astype(np.float32)
    arm = ref.copy()
    arm[:3] = -arm[:3]  # three samples change their top-1 class
    labels = ref.argmax(1)
    result = arm_parity(tmp_path / "m.tflite", np.zeros((10, 1, 2, 2)), ref, labels, runner=FakeQemu(arm))
    flipped = (arm.argmax(1) != ref.argmax(1)).sum()
    assert result.parity.agreement == pytest.approx(1 - flipped / 10)
    assert result.parity.max_abs_diff == pytest.approx(float(np.abs(arm - ref).max()))
    assert result.parity.reference_accuracy == 1.0 and result.qemu_cpu == "cortex-a76"


def test_misaligned_inputs_and_short_outputs_are_errors(tmp_path):
    ref = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(InputError, match="do not line up"):
        arm_parity(tmp_path / "m.tflite", np.zeros((5, 1)), ref, np.zeros(4), runner=FakeQemu(ref))
    with pytest.raises(RunnerError, match="returned outputs"):
        arm_outputs(tmp_path / "m.tflite", np.zeros((4, 1)), runner=FakeQemu(ref[:2]))
    with pytest.raises(InputError, match="at least one sample"):
        arm_outputs(tmp_path / "m.tflite", np.zeros((0, 1)), runner=FakeQemu(ref))


@pytest.fixture(scope="module")
def test_split(bundle, trained_model):
    """The whole bundled test split (2000 images) with the PyTorch logits."""
    x = bundle.to_tensor(bundle.test.x)
    with torch.no_grad():
        ref = trained_model(x).numpy()
    return x.numpy(), bundle.test.y, ref


@pytest.mark.emulator
@pytest.mark.slow
def test_int8_tflite_on_arm_agrees_with_x86_litert_on_the_whole_test_split(export_once, test_split):
    exp = export_once("tflite", "int8")
    x, labels, torch_logits = test_split
    assert len(x) == 2000
    x86 = exp.exporter.load_runtime(exp.artifact)(x)
    started = time.perf_counter()
    arm = arm_parity(Path(exp.artifact.path), x, x86, labels)
    print(f"\nArm emulated int8 run over {len(x)} images: {time.perf_counter() - started:.1f} s")
    assert arm.xnnpack and arm.qemu_cpu == "cortex-a76"
    assert arm.parity.samples == 2000
    assert arm.parity.agreement >= MIN_ARM_X86_AGREEMENT
    out_scale = read_sidecar(exp.artifact.path).output.quantization.scale
    assert arm.parity.max_abs_diff <= out_scale + 1e-6, "Arm and x86 int8 logits differ by more than one step"
    # compared the same way as the x86 parity check: against PyTorch, with the same threshold
    vs_torch = arm_parity(Path(exp.artifact.path), x[:500], torch_logits[:500], labels[:500])
    x86_vs_torch = (x86[:500].argmax(1) == torch_logits[:500].argmax(1)).mean()
    assert vs_torch.parity.agreement >= 0.97
    assert abs(vs_torch.parity.agreement - x86_vs_torch) <= 0.01


@pytest.mark.emulator
def test_fp32_tflite_on_arm_matches_x86(export_once, test_split):
    exp = export_once("tflite", "fp32")
    x, labels, _ = test_split
    x86 = exp.exporter.load_runtime(exp.artifact)(x[:100])
    arm = arm_parity(Path(exp.artifact.path), x[:100], x86, labels[:100])
    assert arm.xnnpack
    assert arm.parity.agreement == 1.0
    assert arm.parity.max_abs_diff < 1e-4
