import json

import torch

from edgekd.cli.main import main
from edgekd.models.example_teacher import ResidualCNN


def _onnx(tmp_path):
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(ResidualCNN((8, 16), 1).eval(), (torch.randn(1, 1, 28, 28),), str(path), dynamo=False)
    return path


def test_bench_prints_percentiles_with_evidence(tmp_path, capsys):
    code = main(["bench", str(_onnx(tmp_path)), "--target", "x86-64-host", "--runs", "20", "--warmup", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "p50" in out and "p90" in out and "p99" in out
    assert "[measured-host]" in out and "onnxruntime" in out and "20 runs" in out


def test_bench_json_and_a_note_when_the_target_is_not_this_machine(tmp_path, capsys):
    code = main(["bench", str(_onnx(tmp_path)), "--target", "cortex-a76", "--runs", "10", "--json"])
    captured = capsys.readouterr()
    figures = json.loads(captured.out)
    assert code == 0
    assert figures["stats"]["runs"] == 10 and figures["stats"]["p50_ms"] > 0
    assert figures["evidence"] == "measured-host" and figures["target"] == "cortex-a76"
    assert "not this machine" in captured.err
