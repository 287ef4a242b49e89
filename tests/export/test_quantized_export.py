"""Exporting models already quantised by QAT: the artifact runs in its runtime and matches the trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.core.hashing import sha256_file
from edgekd.core.registry import EXPORTERS
from edgekd.data.datasets import DatasetBundle
from edgekd.distill.qat_run import QatResult, export_result
from edgekd.export import SidecarInfo, get_exporter, read_sidecar
from edgekd.export.base import QuantizedExporter, QuantizedModel

from .conftest import EvalBatch

QAT_STEPS = 3
MIN_AGREEMENT = 0.97  # exported int8 vs the quantised torch model it came from, top-1


def _fine_tune(model: nn.Module, bundle: DatasetBundle, steps: int = QAT_STEPS) -> None:
    """A few QAT steps on training data, so the exported ranges are trained ones, not the initial ones."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    rng = np.random.default_rng(1)
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(bundle.train), 32)
        x, y = bundle.to_tensor(bundle.train.x[idx]), torch.from_numpy(bundle.train.y[idx]).long()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def nncf_model(trained_model: nn.Module, calibration: np.ndarray, bundle: DatasetBundle) -> nn.Module:
    from edgekd.distill.qat_nncf import NncfQatSettings, prepare_nncf_qat

    model = prepare_nncf_qat(trained_model, calibration[:64], NncfQatSettings(kernels="reference"))
    _fine_tune(model, bundle)
    return model


@pytest.fixture(scope="module")
def pt2e_model(trained_model: nn.Module, eval_batch: EvalBatch, bundle: DatasetBundle) -> QuantizedModel:
    from edgekd.distill.qat_pt2e import convert_pt2e_qat, prepare_pt2e_qat

    qat = prepare_pt2e_qat(trained_model, torch.from_numpy(eval_batch.x[:2]))
    _fine_tune(qat, bundle)
    return convert_pt2e_qat(qat)


def _torch_logits(qmodel: QuantizedModel, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x)
    with torch.no_grad():
        return qmodel.module(t.permute(0, 2, 3, 1) if qmodel.layout == "NHWC" else t).numpy()


def _check_artifact(artifact, name: str, method: str) -> None:
    path = Path(artifact.path)
    assert path.name == f"model-int8{get_exporter(name).suffix}"
    assert artifact.sha256 == sha256_file(path)
    assert (artifact.kind, artifact.meta["precision"], artifact.meta["quantization"]) == (name, "int8", method)
    assert read_sidecar(path).precision == "int8"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def _agreement(run_out: np.ndarray, ref: np.ndarray) -> float:
    return float((run_out.argmax(1) == ref.argmax(1)).mean())


def test_every_built_in_exporter_exports_quantised_models() -> None:
    for name in ("onnx", "tflite", "openvino"):
        assert isinstance(EXPORTERS.get(name)(), QuantizedExporter)


@pytest.mark.parametrize("name", ["openvino", "onnx"])
def test_nncf_qat_model_exports_and_runs_as_trained(
    nncf_model: nn.Module, eval_batch: EvalBatch, sidecar_info: SidecarInfo, tmp_path: Path, name: str
) -> None:
    from edgekd.distill.qat_nncf import nncf_quantized

    qmodel = nncf_quantized(nncf_model, name)
    exporter = get_exporter(name)
    artifact = exporter.export_quantized(qmodel, torch.from_numpy(eval_batch.x[:4]), tmp_path, sidecar_info)
    _check_artifact(artifact, name, "qat-nncf")
    out = exporter.load_runtime(artifact, threads=1)(eval_batch.x)
    ref = _torch_logits(qmodel, eval_batch.x)
    assert _agreement(out, ref) >= MIN_AGREEMENT
    assert np.abs(out - ref).mean() < 0.05 * np.abs(ref).mean()
    if name == "onnx":
        import onnx

        ops = {n.op_type: n.domain for n in onnx.load(str(artifact.path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= set(ops)
        assert "FakeQuantize" not in ops  # NNCF's custom op, which onnxruntime cannot load
    else:
        xml = (Path(artifact.path) / "model.xml").read_text()
        assert xml.count('type="FakeQuantize"') >= 5


def test_export_quantized_refuses_a_model_made_for_another_format(
    nncf_model: nn.Module, eval_batch: EvalBatch, sidecar_info: SidecarInfo, tmp_path: Path
) -> None:
    from edgekd.distill.qat_nncf import nncf_quantized

    with pytest.raises(ConfigError, match="cannot be exported as tflite"):
        get_exporter("tflite").export_quantized(
            nncf_quantized(nncf_model, "openvino"), torch.from_numpy(eval_batch.x[:4]), tmp_path, sidecar_info
        )
    assert list(tmp_path.iterdir()) == []


def test_ptq_result_goes_through_the_exporters_calibration(
    trained_model: nn.Module, eval_batch: EvalBatch, calibration: np.ndarray, sidecar_info: SidecarInfo, tmp_path: Path
) -> None:
    result = QatResult("onnx", "ptq", trained_model, calibration[:64], None, 0.0)
    artifact = export_result(result, torch.from_numpy(eval_batch.x[:4]), tmp_path, sidecar_info)
    assert artifact.meta["precision"] == "int8" and "quantization" not in artifact.meta
    out = get_exporter("onnx").load_runtime(artifact)(eval_batch.x)
    assert _agreement(out, eval_batch.reference) >= MIN_AGREEMENT


@pytest.mark.slow
def test_pt2e_qat_graph_exports_to_full_int8_tflite(
    pt2e_model: QuantizedModel, eval_batch: EvalBatch, sidecar_info: SidecarInfo, tmp_path: Path
) -> None:
    assert (pt2e_model.format, pt2e_model.method, pt2e_model.layout) == ("tflite", "qat-pt2e", "NHWC")
    exporter = get_exporter("tflite")
    artifact = exporter.export_quantized(pt2e_model, torch.from_numpy(eval_batch.x[:4]), tmp_path, sidecar_info)
    _check_artifact(artifact, "tflite", "qat-pt2e")
    raw = json.loads(Path(artifact.meta["sidecar"]).read_text())
    assert raw["input"]["dtype"] == "int8" and raw["output"]["dtype"] == "int8"
    x = eval_batch.x[:300]  # the interpreter runs batch 1: keep it short
    out = exporter.load_runtime(artifact, threads=1)(x)
    ref = _torch_logits(pt2e_model, x)
    assert _agreement(out, ref) >= MIN_AGREEMENT
    step = read_sidecar(artifact.path).output.quantization.scale
    assert np.median(np.abs(out - ref)) <= 2 * step  # within a couple of output LSB
