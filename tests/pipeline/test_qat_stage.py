"""``quantization: {mode: qat}`` in a build: int8 artifacts trained with fake quantisation for their path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.cli.main import main
from edgekd.config.build_config import BuildConfig
from edgekd.core.artifact import Artifact
from edgekd.core.hashing import sha256_file
from edgekd.data.bundled import example_dataset
from edgekd.export.base import get_exporter
from edgekd.models.example_teacher import ResidualCNN
from edgekd.pipeline.qat_stage import qat_settings, quantization_record

SAMPLES = 128
QAT_CONFIG = "quantization: {mode: qat, nncf_kernels: reference, calibration_samples: 64}\n" \
             "export: {arm_parity_samples: 0}\nbench: {runs: 5, warmup: 1}\n"  # fmt: skip


def small_teacher() -> ResidualCNN:
    return ResidualCNN((16, 32), blocks_per_stage=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A small teacher, 128 images per split and a QAT build config (reference NNCF kernels: no compiling)."""
    root = tmp_path_factory.mktemp("qat-inputs")
    data = example_dataset()
    arrays = {f"x_{s}": getattr(data, s).x[:SAMPLES] for s in ("train", "val", "test")}
    arrays |= {f"y_{s}": getattr(data, s).y[:SAMPLES] for s in ("train", "val", "test")}
    np.savez(root / "data.npz", **arrays, mean=np.array(data.mean), std=np.array(data.std))
    torch.manual_seed(0)
    torch.save(small_teacher().state_dict(), root / "teacher.pt")
    (root / "qat.yaml").write_text(QAT_CONFIG)
    return root


def build(inputs: Path, target: str, out: Path, *more: str) -> int:
    return main(["build", "--target", target, "--budget-ms", "1000", "--teacher",
                 "tests.pipeline.test_qat_stage:small_teacher", "--teacher-weights", str(inputs / "teacher.pt"),
                 "--data", str(inputs / "data.npz"), "--config", str(inputs / "qat.yaml"), "--out", str(out),
                 "--epochs", "1", "--no-progress", *more])  # fmt: skip


@pytest.fixture(scope="module")
def arm_build(inputs, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("qat-arm") / "out"
    return build(inputs, "cortex-a76", out), out


@pytest.fixture(scope="module")
def host_build(inputs, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("qat-host") / "out"
    return build(inputs, "x86-64-host", out), out


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _check_qat_artifact(out: Path, art: dict, method: str) -> None:
    q = art["quantization"]
    assert q["mode"] == "qat" and q["method"] == method
    assert q["epochs"] == 1 and q["epochs_run"] == 1 and q["calibration_samples"] == 64
    assert 0 <= q["val_accuracy"] <= 1 and q["seconds"] > 0
    # parity: against the quantised model's own PyTorch logits; parity_fp32: against the fp32 student
    parity, fp32 = art["parity"], q["parity_fp32"]
    assert parity["samples"] == fp32["samples"] == SAMPLES
    assert parity["agreement"] >= 0.9 and parity["accuracy"] == fp32["accuracy"]
    if art["format"] != "openvino":  # OpenVINO's int8 kernels round differently: only ~2x closer, not asserted
        # the artifact follows the quantised model it was trained as far more closely than the fp32 student
        assert parity["mean_abs_diff"] < 0.2 * fp32["mean_abs_diff"]
    path = out / art["path"]
    assert path.exists() and sha256_file(path) == art["sha256"]
    run = get_exporter(art["format"]).load_runtime(Artifact.from_file(path, art["format"], "export"), threads=1)
    data = example_dataset()
    logits = run(data.to_tensor(data.test.x[:SAMPLES]).numpy())
    assert logits.shape == (SAMPLES, len(data.class_names))
    assert float((logits.argmax(1) == data.test.y[:SAMPLES]).mean()) == pytest.approx(parity["accuracy"])


@pytest.mark.slow
def test_tflite_target_deploys_the_pt2e_qat_model(arm_build):
    code, out = arm_build
    report = _report(out)
    assert code == (0 if report["gate"]["passed"] else 1)
    arts = {a["name"]: a for a in report["artifacts"]}
    _check_qat_artifact(out, arts["student-tflite-int8.tflite"], "qat-pt2e")
    _check_qat_artifact(out, arts["student-onnx-int8.onnx"], "qat-nncf")
    _check_qat_artifact(out, arts["student-executorch-int8.pte"], "qat-pt2e")  # its own PT2E run (XNNPACK quantiser)
    assert arts["student-tflite-fp32.tflite"]["quantization"] is None
    assert "qat-executorch-int8" in report["lineage"]["computed"]
    assert "qat-tflite-int8" in report["lineage"]["computed"] and "qat-onnx-int8" in report["lineage"]["computed"]
    assert not any(s in report["lineage"]["computed"] for s in ("export-tflite-int8", "export-onnx-int8"))
    assert any(r["name"] == "parity:student-tflite-int8.tflite" for r in report["gate"]["rules"])
    md = (out / "report.md").read_text()
    assert "QAT (qat-pt2e" in md and "QAT (qat-nncf" in md


@pytest.mark.slow
def test_unchanged_rerun_reuses_the_qat_artifacts(inputs, arm_build):
    _, out = arm_build
    first = _report(out)
    code = build(inputs, "cortex-a76", out)
    second = _report(out)
    assert code == (0 if second["gate"]["passed"] else 1)
    assert second["lineage"]["computed"] == []
    assert {"qat-tflite-int8", "qat-onnx-int8"} <= set(second["lineage"]["cache_hits"])
    assert [a["sha256"] for a in second["artifacts"]] == [a["sha256"] for a in first["artifacts"]]
    assert [a["quantization"] for a in second["artifacts"]] == [a["quantization"] for a in first["artifacts"]]
    # options that do not change the trained model (Arm parity, bench runs) do not retrain it
    build(inputs, "cortex-a76", out, "--runs", "6", "--arm-parity-samples", "1")
    third = _report(out)
    assert {"qat-tflite-int8", "qat-onnx-int8"} <= set(third["lineage"]["cache_hits"])
    assert "bench" in third["lineage"]["computed"]


@pytest.mark.slow
def test_openvino_and_onnx_int8_share_one_nncf_qat_run(host_build):
    code, out = host_build
    report = _report(out)
    assert code == (0 if report["gate"]["passed"] else 1)
    arts = {a["name"]: a for a in report["artifacts"]}
    ov, onnx = arts["student-openvino-int8.openvino"], arts["student-onnx-int8.onnx"]
    _check_qat_artifact(out, ov, "qat-nncf")
    _check_qat_artifact(out, onnx, "qat-nncf")
    assert ov["quantization"]["nncf_kernels"] == "reference" and ov["quantization"]["overflow_fix"] is False
    # one training run, two exporters: the same fake-quantised model's accuracy and time
    assert ov["quantization"]["val_accuracy"] == onnx["quantization"]["val_accuracy"]
    assert ov["quantization"]["seconds"] == onnx["quantization"]["seconds"]
    assert arts["student-onnx-fp32.onnx"]["quantization"] is None


def test_ptq_is_the_default_and_reported_with_its_calibration():
    config = BuildConfig()
    assert config.quantization.mode == "ptq"
    record = {"format": "tflite", "precision": "int8", "parity": None}
    assert quantization_record(config, record) == {"mode": "ptq", "method": "ptq-tflite", "calibration_samples": 256}
    assert quantization_record(config, {**record, "precision": "fp32"}) is None
    qat = {"mode": "qat", "method": "qat-pt2e"}
    assert quantization_record(config, {**record, "quantization": qat}) is qat


def test_one_calibration_count_for_ptq_and_qat():
    config = BuildConfig.model_validate({"quantization": {"calibration_samples": 64}})
    assert config.export.calibration_samples == 64
    assert BuildConfig().export.calibration_samples == 256  # the default section is not shared and changed
    again = BuildConfig.model_validate(config.model_dump(exclude_unset=True))
    assert again.export.calibration_samples == 64


def test_qat_settings_take_the_builds_kd_options():
    config = BuildConfig.model_validate({
        "distill": {"temperature": 2.0, "alpha": 0.5, "batch_size": 32, "max_train_samples": 100, "seed": 3},
        "quantization": {"mode": "qat", "epochs": 2, "lr": 1e-4, "overflow_fix": True},
    })  # fmt: skip
    s = qat_settings(config)
    assert (s.mode, s.temperature, s.alpha, s.overflow_fix, s.calibration_samples) == ("qat", 2.0, 0.5, True, 256)
    assert (s.train.epochs, s.train.lr, s.train.batch_size, s.train.max_train_samples, s.train.seed) == (
        2, 1e-4, 32, 100, 3)  # fmt: skip


@pytest.mark.parametrize(
    ("section", "needle"),
    [("{mode: foo}", "quantization.mode"), ("{mode: qat, epoch: 2}", "did you mean 'epochs'"),
     ("{mode: qat, epochs: 0}", "quantization.epochs")],
)  # fmt: skip
def test_bad_quantization_config_is_one_line_and_exit_2(tmp_path, capsys, section, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"quantization: {section}\n")
    code = main(["build", "--config", str(cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert needle in err and str(cfg) in err
    assert not (tmp_path / "o").exists()
