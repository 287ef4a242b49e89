"""Contract tests over every registered exporter and precision, plus the shared export helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import ConfigError, InputError, ToolchainError
from edgekd.core.hashing import sha256_file
from edgekd.core.registry import EXPORTERS
from edgekd.export import Exporter, check_parity, get_exporter, read_sidecar, sidecar_path
from edgekd.export.base import PRECISIONS, SidecarInfo, conversion_error, run_in_chunks
from edgekd.export.sidecar import PIXEL_SCALE, QuantParams, Sidecar, TensorSpec, write_sidecar

NAMES = EXPORTERS.names()
PAIRS = [(n, p) for n in NAMES for p in PRECISIONS]
MIN_AGREEMENT = {"fp32": 0.99, "int8": 0.97}
MAX_ACCURACY_DROP = {"fp32": 0.005, "int8": 0.02}


def test_registry_holds_the_built_in_exporters() -> None:
    assert {"onnx", "tflite", "openvino"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_get_exporter_returns_a_named_exporter(name: str) -> None:
    exporter = get_exporter(name)
    assert isinstance(exporter, Exporter)
    assert exporter.name == name
    assert set(PRECISIONS) <= set(exporter.precisions)
    assert exporter.suffix.startswith(".")


@pytest.mark.parametrize(("name", "precision"), PAIRS)
def test_export_writes_artifact_with_matching_hash(export_once, name: str, precision: str) -> None:
    artifact = export_once(name, precision).artifact
    path = Path(artifact.path)
    assert path.exists()
    assert path.name == f"model-{precision}{get_exporter(name).suffix}"
    assert artifact.kind == name
    assert artifact.stage == "export"
    assert artifact.sha256 == sha256_file(path)
    assert artifact.meta["format"] == name
    assert artifact.meta["precision"] == precision
    assert Path(artifact.meta["sidecar"]) == sidecar_path(path)
    assert Path(artifact.meta["sidecar"]).is_file()
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "staging files were left behind"


@pytest.mark.parametrize(("name", "precision"), PAIRS)
def test_sidecar_describes_the_model(export_once, sidecar_info: SidecarInfo, name: str, precision: str) -> None:
    artifact = export_once(name, precision).artifact
    raw = json.loads(sidecar_path(artifact.path).read_text())
    assert {"schema", "edgekd_version", "format", "precision", "input", "output"} <= set(raw)
    assert {"normalization", "class_names"} <= set(raw)
    sc = read_sidecar(artifact.path)
    assert (sc.format, sc.precision) == (name, precision)
    assert sc.class_names == sidecar_info.class_names
    assert (sc.mean, sc.std, sc.scale) == (sidecar_info.mean, sidecar_info.std, PIXEL_SCALE)
    c, h, w = sidecar_info.input_shape
    assert sc.input.layout in ("NCHW", "NHWC")
    expected = (c, h, w) if sc.input.layout == "NCHW" else (h, w, c)
    assert sc.input.shape[1:] == expected
    assert sc.input.shape[0] in (-1, 1)
    assert sc.output.shape[1:] == (len(sidecar_info.class_names),)
    for spec in (sc.input, sc.output):
        if spec.dtype in ("int8", "uint8"):
            assert spec.quantization is not None and spec.quantization.scale > 0
        else:
            assert spec.dtype == "float32" and spec.quantization is None


def test_tflite_int8_has_int8_io_and_no_input_transpose(export_once) -> None:
    if "tflite" not in NAMES:
        pytest.fail("tflite exporter is not registered")
    artifact = export_once("tflite", "int8").artifact
    sc = read_sidecar(artifact.path)
    assert (sc.input.dtype, sc.output.dtype, sc.input.layout) == ("int8", "int8", "NHWC")
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(artifact.path))
    ops = [op["op_name"] for op in interp._get_ops_details()]
    assert "TRANSPOSE" not in ops, ops


def test_openvino_int8_keeps_only_the_classifier_head_in_float(export_once) -> None:
    from edgekd.export.openvino_exporter import XML_NAME, _openvino, _output_matmuls

    core = _openvino().Core()
    fp32 = core.read_model(str(Path(export_once("openvino", "fp32").artifact.path) / XML_NAME))
    assert len(_output_matmuls(fp32)) == 1
    int8 = core.read_model(str(Path(export_once("openvino", "int8").artifact.path) / XML_NAME))
    types = [op.get_type_name() for op in int8.get_ordered_ops()]
    assert types.count("FakeQuantize") >= 6  # every convolution is quantised
    head = int8.get_results()[0].input_value(0).get_node().input_value(0).get_node()
    assert head.get_type_name() == "MatMul"
    weights = head.input_value(1).get_node()  # quantised weights would be Constant(i8) -> Convert -> Multiply
    assert weights.get_type_name() == "Constant", weights.get_type_name()


@pytest.mark.parametrize(("name", "precision"), PAIRS)
def test_runtime_returns_float_logits_for_any_batch(export_once, eval_batch, name: str, precision: str) -> None:
    export = export_once(name, precision)
    run = export.exporter.load_runtime(export.artifact, threads=1)
    for n in (1, 3):
        out = run(eval_batch.x[:n])
        assert out.shape == (n, 10)
        assert out.dtype == np.float32
        assert np.isfinite(out).all()


@pytest.mark.parametrize(("name", "precision"), PAIRS)
def test_runtime_agrees_with_pytorch(export_once, eval_batch, name: str, precision: str, record_property) -> None:
    export = export_once(name, precision)
    run = export.exporter.load_runtime(export.artifact, threads=1)
    result = check_parity(run, eval_batch.x, eval_batch.reference, eval_batch.labels)
    record_property("parity", result.to_json())
    record_property("export_seconds", round(export.seconds, 2))
    assert result.samples == len(eval_batch.x)
    assert result.agreement >= MIN_AGREEMENT[precision], result
    assert result.accuracy >= result.reference_accuracy - MAX_ACCURACY_DROP[precision], result
    if precision == "fp32":
        assert result.max_abs_diff < 1e-3, result


@pytest.mark.parametrize("name", NAMES)
def test_runtime_threads_do_not_change_results(export_once, eval_batch, name: str) -> None:
    export = export_once(name, "fp32")
    one = export.exporter.load_runtime(export.artifact, threads=1)(eval_batch.x[:8])
    two = export.exporter.load_runtime(export.artifact, threads=2)(eval_batch.x[:8])
    np.testing.assert_allclose(one, two, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_int8_artifact_is_smaller_than_fp32(export_once, name: str) -> None:
    fp32 = export_once(name, "fp32").artifact.size_bytes
    int8 = export_once(name, "int8").artifact.size_bytes
    assert int8 < 0.8 * fp32, (int8, fp32)


@pytest.mark.parametrize("name", NAMES)
def test_export_leaves_the_model_unchanged(export_once, trained_model, eval_batch, name: str) -> None:
    export_once(name, "int8")
    with torch.no_grad():
        after = trained_model(torch.from_numpy(eval_batch.x[:16])).numpy()
    assert not trained_model.training
    np.testing.assert_allclose(after, eval_batch.reference[:16], atol=1e-5)


class _Histogram(nn.Module):
    """A conv followed by torch.histc, which no export format converts."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.histc(self.conv(x), bins=10).unsqueeze(0)


@pytest.mark.parametrize("name", NAMES)
def test_unsupported_operator_raises_one_line_toolchain_error(
    name: str, sidecar_info: SidecarInfo, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(ToolchainError) as err:
        get_exporter(name).export(_Histogram().eval(), torch.zeros(1, 1, 28, 28), "fp32", out_dir, sidecar_info)
    message = str(err.value)
    assert "\n" not in message
    assert name in message and "histc" in message
    assert any(other in message for other in NAMES if other != name)
    assert err.value.exit_code == 3
    assert not out_dir.exists() or list(out_dir.iterdir()) == [], "a failed export left files behind"


@pytest.mark.parametrize("name", NAMES)
def test_truncated_model_raises_input_error(export_once, name: str, tmp_path: Path) -> None:
    artifact = export_once(name, "fp32").artifact
    src = Path(artifact.path)
    copy = tmp_path / src.name
    if src.is_dir():
        shutil.copytree(src, copy)
    else:
        shutil.copy(src, copy)
    shutil.copy(sidecar_path(src), sidecar_path(copy))
    files = [copy] if copy.is_file() else sorted(copy.rglob("*"), key=lambda p: p.stat().st_size)
    victim = files[-1]  # the largest file: the weights
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    broken = Artifact.from_file(copy, kind=name, stage="export")
    with pytest.raises(InputError) as err:
        get_exporter(name).load_runtime(broken)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_missing_sidecar_raises_input_error(export_once, name: str, tmp_path: Path) -> None:
    src = Path(export_once(name, "fp32").artifact.path)
    copy = tmp_path / src.name
    (shutil.copytree if src.is_dir() else shutil.copy)(src, copy)
    with pytest.raises(InputError, match="sidecar"):
        get_exporter(name).load_runtime(Artifact.from_file(copy, kind=name, stage="export"))


@pytest.mark.parametrize("name", NAMES)
def test_bad_requests_fail_before_converting(name: str, sidecar_info: SidecarInfo, tmp_path: Path) -> None:
    exporter = get_exporter(name)
    model, example = nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 28, 28)
    with pytest.raises(ConfigError):
        exporter.export(model, example, "fp8", tmp_path, sidecar_info)
    with pytest.raises(InputError, match="calibration"):
        exporter.export(model, example, "int8", tmp_path, sidecar_info, calibration=None)
    with pytest.raises(InputError, match="shape"):
        exporter.export(model, example, "int8", tmp_path, sidecar_info, calibration=np.zeros((4, 3, 8, 8)))
    assert list(tmp_path.iterdir()) == []


# --- shared helpers -------------------------------------------------------------------------------


def test_sidecar_round_trips_and_rejects_garbage(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    sc = Sidecar(
        format="tflite",
        precision="int8",
        input=TensorSpec("in", (1, 28, 28, 1), "int8", "NHWC", QuantParams(0.02, -3)),
        output=TensorSpec("out", (1, 10), "int8", None, QuantParams(0.1, 5)),
        mean=(0.5,),
        std=(0.25,),
        class_names=tuple("abcdefghij"),
    )
    assert write_sidecar(model, sc) == tmp_path / "m.tflite.sidecar.json"
    assert read_sidecar(model) == sc
    sidecar_path(model).write_text("{not json")
    with pytest.raises(InputError):
        read_sidecar(model)
    sidecar_path(model).write_text(json.dumps({"schema": 1, "format": "onnx"}))
    with pytest.raises(InputError):
        read_sidecar(model)


def test_quant_params_round_trip_within_half_a_step() -> None:
    q = QuantParams(scale=0.05, zero_point=-10)
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    back = q.dequantize(q.quantize(x, "int8"))
    inside = (x >= (-128 + 10) * 0.05) & (x <= (127 + 10) * 0.05)
    assert np.abs(back - x)[inside].max() <= 0.025 + 1e-6
    assert q.quantize(np.array([1e6, -1e6]), "int8").tolist() == [127, -128]


def test_run_in_chunks_pads_the_last_chunk() -> None:
    seen = []

    def fixed(chunk: np.ndarray) -> np.ndarray:
        seen.append(chunk.shape[0])
        return chunk.reshape(len(chunk), -1)[:, :2] * 2

    x = np.arange(5 * 4, dtype=np.float32).reshape(5, 1, 2, 2)
    out = run_in_chunks(x, 2, fixed)
    assert seen == [2, 2, 2]
    np.testing.assert_array_equal(out, x.reshape(5, -1)[:, :2] * 2)
    with pytest.raises(InputError):
        run_in_chunks(x[:0], 2, fixed)


def test_conversion_error_names_format_op_and_alternatives() -> None:
    err = conversion_error("tflite", RuntimeError("Lowering not found: aten.histc.default\n\nWhile executing"))
    assert str(err) == "tflite conversion failed: unsupported operator aten.histc; try another format (onnx, openvino)"
    plain = conversion_error("onnx", ValueError("something broke\nsecond line"))
    assert str(plain) == "onnx conversion failed: something broke; try another format (openvino, tflite)"
