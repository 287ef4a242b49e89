import pytest
import torch

from edgekd.cli.main import main
from edgekd.models.example_teacher import ResidualCNN
from edgekd.models.loading import save_student
from edgekd.prune.pruner import PruneSettings, prune


def small():
    return ResidualCNN((16, 32), blocks_per_stage=1)


def test_export_a_pruned_student_file(tmp_path, capsys):
    torch.manual_seed(0)
    student = prune(small(), torch.randn(1, 1, 28, 28), 0.5, PruneSettings()).model
    path = save_student(student, tmp_path / "student.pt", "tests.cli.test_export_cmd:small")
    code = main(["export", str(path), "--format", "onnx", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--factory" in err and "tests.cli.test_export_cmd:small" in err and "\n" not in err
    code = main(["export", str(path), "--format", "onnx", "--factory", "tests.cli.test_export_cmd:with_fft",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not 'tests.cli.test_export_cmd:with_fft'" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
    code = main(["export", str(path), "--format", "onnx", "--precision", "int8", "--out", str(tmp_path / "o"),
                 "--factory", "tests.cli.test_export_cmd:small", "--parity-samples", "100"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "o" / "model-int8.onnx").is_file()
    assert (tmp_path / "o" / "model-int8.onnx.sidecar.json").is_file()
    assert "parity on 100 test images" in out


def test_plain_state_dict_needs_a_factory(tmp_path, capsys):
    torch.save(small().state_dict(), tmp_path / "sd.pt")
    code = main(["export", str(tmp_path / "sd.pt"), "--format", "onnx", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--factory" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
    code = main(["export", str(tmp_path / "sd.pt"), "--format", "onnx", "--factory", "tests.cli.test_export_cmd:small",
                 "--out", str(tmp_path / "o"), "--parity-samples", "50"])  # fmt: skip
    assert code == 0 and (tmp_path / "o" / "model-fp32.onnx").is_file()


def test_truncated_checkpoint_and_unknown_format(tmp_path, capsys):
    torch.save(small().state_dict(), tmp_path / "sd.pt")
    data = (tmp_path / "sd.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert main(["export", str(tmp_path / "cut.pt"), "--format", "onnx", "--factory", "x:y"]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "sd.pt"), "--format", "coreml"]) == 2
    assert "unknown exporter 'coreml'; known: executorch, onnx, openvino, tflite" in capsys.readouterr().err


class WithFFT(torch.nn.Module):
    """A model using an operator ONNX (opset 17) and LiteRT cannot convert; OpenVINO can."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft2(self.conv(x)).abs()
        return self.fc(spectrum.mean((2, 3)))


def with_fft() -> WithFFT:
    return WithFFT()


@pytest.mark.parametrize(("fmt", "op"), [("onnx", "aten::fft_rfft2"), ("tflite", "aten._fft_r2c")])
def test_unsupported_operator_names_op_format_and_alternatives(tmp_path, capsys, fmt, op):
    torch.save(with_fft().state_dict(), tmp_path / "fft.pt")
    out = tmp_path / "o"
    code = main(["export", str(tmp_path / "fft.pt"), "--format", fmt, "--factory", "tests.cli.test_export_cmd:with_fft",
                 "--out", str(out), "--parity-samples", "20"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert "\n" not in err and "Traceback" not in err
    assert f"{fmt} conversion failed: unsupported operator {op}" in err
    assert "try another format" in err and "openvino" in err
    assert not any(out.rglob("model-*")), "a failed conversion left an artifact behind"
