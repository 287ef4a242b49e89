import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.bench import bench_script
from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.runner_base import BenchSettings, Runner, RunResult, check_model_file
from edgekd.core.errors import InputError, RunnerError
from edgekd.core.registry import RUNNERS

FAST = {"warmup": 2, "runs": 12}


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
def net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture(scope="module")
def onnx_model(net, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(
        net,
        (torch.randn(1, 3, 16, 16),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    return path


@pytest.fixture(scope="module")
def openvino_dir(onnx_model, tmp_path_factory) -> Path:
    import openvino as ov

    folder = tmp_path_factory.mktemp("ov") / "tiny_ir"
    ov.save_model(ov.convert_model(str(onnx_model)), str(folder / "tiny.xml"))
    return folder


@pytest.fixture(scope="module")
def tflite_model(net, tmp_path_factory) -> Path:
    import litert_torch

    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    litert_torch.convert(net, (torch.randn(1, 3, 16, 16),)).export(str(path))
    return path


@pytest.fixture(scope="module")
def runner():
    with LocalRunner(timeout_s=120) as r:
        yield r


def _check_result(result: RunResult, settings: BenchSettings, runtime: str) -> None:
    assert len(result.samples_ms) == settings.runs
    assert all(s > 0 for s in result.samples_ms)
    assert result.init_ms is not None and result.init_ms > 0
    assert result.peak_rss_bytes is not None and result.peak_rss_bytes > result.extra["rss_before_load_bytes"]
    assert re.fullmatch(rf"{runtime} \d+\.\d+.*", result.runtime)
    assert result.evidence == "measured-host"
    assert result.threads == settings.threads
    assert result.extra["runtime_threads"] == settings.threads
    data = json.loads(json.dumps(result.to_json()))
    assert "outputs" not in data and data["samples_ms"] == result.samples_ms


def test_local_runner_is_registered_runner():
    assert RUNNERS.get("local") is LocalRunner
    assert isinstance(LocalRunner(), Runner)
    assert LocalRunner.capabilities == {"latency", "memory"}


def test_onnx_run(runner, onnx_model):
    cpu = min(os.sched_getaffinity(0))
    settings = BenchSettings(threads=1, pin_cpus=[cpu], **FAST)
    result = runner.run(runner.push(onnx_model), settings)
    _check_result(result, settings, "onnxruntime")
    assert result.outputs is None
    assert result.extra["input_shapes"] == {"x": [1, 3, 16, 16]}
    assert result.extra["affinity"] == [cpu]


def test_onnx_threads_are_honoured(runner, onnx_model):
    one = runner.run(str(onnx_model), BenchSettings(threads=1, **FAST))
    two = runner.run(str(onnx_model), BenchSettings(threads=2, **FAST))
    assert (one.extra["runtime_threads"], two.extra["runtime_threads"]) == (1, 2)
    # onnxruntime's intra-op pool adds threads - 1 worker threads to the process.
    assert two.extra["os_threads"] > one.extra["os_threads"]


def test_onnx_real_inputs_give_the_models_outputs(runner, net, onnx_model, tmp_path):
    x = np.random.default_rng(1).standard_normal((6, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    settings = BenchSettings(batch_size=2, input_npy=tmp_path / "x.npy", save_outputs=True, **FAST)
    result = runner.run(str(onnx_model), settings)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert result.outputs is not None and result.outputs.shape == (6, 10)
    np.testing.assert_allclose(result.outputs, expected, atol=1e-4)
    assert result.extra["input_source"] == "npy"
    assert result.extra["input_shapes"] == {"x": [2, 3, 16, 16]}


def test_min_seconds_extends_the_run(runner, onnx_model):
    result = runner.run(str(onnx_model), BenchSettings(warmup=1, runs=3, min_seconds=0.3))
    assert len(result.samples_ms) > 3
    assert result.extra["wall_s"] >= 0.3


def test_openvino_ir_folder(runner, openvino_dir):
    settings = BenchSettings(threads=2, batch_size=2, **FAST)
    result = runner.run(runner.push(openvino_dir), settings)
    _check_result(result, settings, "openvino")
    assert result.extra["inference_precision"] == "f32"
    assert result.extra["input_shapes"] == {"x": [2, 3, 16, 16]}


def test_tflite_litert(runner, tflite_model):
    one = runner.run(str(tflite_model), BenchSettings(threads=1, **FAST))
    settings = BenchSettings(threads=2, save_outputs=True, **FAST)
    two = runner.run(runner.push(tflite_model), settings)
    _check_result(two, settings, "ai-edge-litert")
    assert two.outputs is not None and two.outputs.shape == (1, 10)
    assert two.extra["os_threads"] > one.extra["os_threads"]  # XNNPACK's pool has threads - 1 workers


def _int8_input_onnx(path: Path) -> None:
    """A model whose input is int8: DequantizeLinear(x, scale=0.05, zero_point=3) -> Relu."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["x", "scale", "zp"], ["deq"]),
            helper.make_node("Relu", ["deq"], ["y"]),
        ],
        "int8_input",
        [helper.make_tensor_value_info("x", TensorProto.INT8, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05]),
            helper.make_tensor("zp", TensorProto.INT8, [], [3]),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_int8_input_is_quantised_with_the_sidecar(runner, tmp_path):
    model = tmp_path / "q.onnx"
    _int8_input_onnx(model)
    sidecar = {"precision": "int8", "input_scale": 0.05, "input_zero_point": 3}
    (tmp_path / "q.sidecar.json").write_text(json.dumps(sidecar))
    x = np.array([[0.5, -0.2, 1.0, 9.0], [0.12, 0.0, -7.0, 0.33]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = runner.run(str(model), BenchSettings(input_npy=tmp_path / "x.npy", save_outputs=True, **FAST))
    q = np.clip(np.round(x / 0.05) + 3, -128, 127)  # 9.0 saturates at 127, -7.0 at -128
    np.testing.assert_allclose(result.outputs, np.maximum((q - 3) * 0.05, 0), atol=1e-6)
    assert result.precision == "int8"


def test_missing_model_is_an_input_error_before_spawning(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("spawned a process"))
    (tmp_path / "empty_dir").mkdir()
    for path in (tmp_path / "nope.onnx", tmp_path / "empty_dir"):
        with pytest.raises(InputError, match=r"not found|expected exactly one"):
            runner.run(str(path), BenchSettings())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.tflite", b"\x00" * 64),
        ("bad.xml", b"garbage"),
        ("bad.pt", b"whatever"),
        ("empty.onnx", b""),
    ],
)
def test_cheap_checks_reject_corrupt_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError):
        check_model_file(tmp_path / name)


def test_corrupt_onnx_is_a_one_line_input_error(runner, tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"this is not a protobuf at all")
    with pytest.raises(InputError) as info:
        runner.run(str(tmp_path / "bad.onnx"), BenchSettings(**FAST))
    message = str(info.value)
    assert "\n" not in message and "bad.onnx" in message


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake_python"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


def test_script_failure_becomes_runner_error_with_its_last_line(onnx_model, tmp_path):
    python = _fake_python(
        tmp_path,
        """
        print("Traceback (most recent call last):", file=sys.stderr)
        print("bench_script: error: RuntimeError: kernel exploded", file=sys.stderr)
        print("INFO: some runtime chatter at exit", file=sys.stderr)
        sys.exit(3)
        """,
    )
    with pytest.raises(RunnerError, match=r"^local benchmark: RuntimeError: kernel exploded$"):
        LocalRunner(python=python).run(str(onnx_model), BenchSettings())


def test_no_result_line_and_timeout_are_runner_errors(onnx_model, tmp_path):
    with pytest.raises(RunnerError, match="no result line"):
        LocalRunner(python=_fake_python(tmp_path, "print('hello')\n")).run(str(onnx_model), BenchSettings())
    with pytest.raises(RunnerError, match="timed out"):
        LocalRunner(python=_fake_python(tmp_path, "time.sleep(30)\n"), timeout_s=0.5).run(
            str(onnx_model), BenchSettings()
        )


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError):
        BenchSettings(threads=0)
    with pytest.raises(InputError):
        BenchSettings(pin_cpus=[])


def test_script_layout_and_quantisation_helpers():
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert bench_script.fit_layout(nchw, [1, 4, 5, 3], None).shape == (2, 4, 5, 3)  # inferred
    assert bench_script.fit_layout(nchw[0], [1, 3, 4, 5], None).shape == (1, 3, 4, 5)  # one sample
    cube = np.zeros((1, 3, 3, 3), np.float32)
    np.testing.assert_array_equal(
        bench_script.fit_layout(nchw[:, :, :3, :3], [1, 3, 3, 3], "NHWC"),
        (nchw[:, :, :3, :3].transpose(0, 2, 3, 1)),
    )
    assert bench_script.fit_layout(cube, [1, 3, 3, 3], None) is cube
    with pytest.raises(bench_script.BenchError):
        bench_script.fit_layout(nchw, [1, 3, 5, 5], None)
    q = bench_script.quantise(np.array([0.0, 0.26, -100.0, 100.0]), np.int8, (0.1, -2))
    np.testing.assert_array_equal(q, np.array([-2, 1, -128, 127], np.int8))
    with pytest.raises(bench_script.BenchError):
        bench_script.quantise(np.zeros(2), np.uint8, None)
