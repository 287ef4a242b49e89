"""``edgekd prune --ratio``: a fixed uniform ratio on a user's model, then ``edgekd export --factory``."""

import json

import torch

from edgekd.cli.main import main

FACTORY = "tests.models.user_factories:window_vit"


def test_fixed_ratio_writes_a_student_that_export_rebuilds_with_the_named_factory(tmp_path, capsys):
    from tests.models.user_factories import window_vit

    torch.manual_seed(0)
    teacher = window_vit()
    torch.save(teacher.state_dict(), tmp_path / "t.pt")
    out = tmp_path / "p"
    code = main(["prune", "--ratio", "0.5", "--teacher", FACTORY, "--teacher-weights", str(tmp_path / "t.pt"),
                 "--target", "x86-64-host", "--out", str(out), "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads((out / "prune.json").read_text())
    assert record["ratio"] == 0.5 and record["params"] < record["teacher_params"]
    assert "blocks.0.attn.qkv" in record["left_whole"] and record["mac_check"]["ok"]
    assert "layer(s) left whole" in captured.out

    code = main(["export", str(out / "student.pt"), "--format", "onnx", "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and FACTORY in err and "--factory" in err and "\n" not in err
    code = main(["export", str(out / "student.pt"), "--factory", FACTORY, "--format", "onnx",
                 "--out", str(tmp_path / "e"), "--parity-samples", "50"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "top-1 agreement 1.0000" in printed


def test_ratio_conflicts_and_range_are_one_line_errors(capsys):
    assert main(["prune", "--ratio", "0.5", "--sweep"]) == 2
    assert "--ratio" in capsys.readouterr().err
    assert main(["prune", "--ratio", "1.5", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "[0, 1)" in err and "\n" not in err
