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
    code = main(["export", str(path), "--format", "onnx", "--precision", "int8", "--out", str(tmp_path / "o"),
                 "--parity-samples", "100"])  # fmt: skip
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
    assert "unknown exporter 'coreml'; known: onnx, openvino, tflite" in capsys.readouterr().err
