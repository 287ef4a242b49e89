"""``edgekd prune``: budget mode exit codes and the sweep's output file."""

import json

import torch

from edgekd.cli.main import main
from edgekd.models.zoo_cnn import resnet


def test_impossible_budget_exits_1_with_the_nearest_achievable_latency(tmp_path, capsys):
    code = main(["prune", "--target", "cortex-a76", "--budget-ms", "0.01", "--out", str(tmp_path / "p"),
                 "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "nearest achievable" in err and "ms" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p" / "student.pt").exists()


def test_budget_and_sweep_write_their_files(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "t.pt"
    torch.save(resnet().state_dict(), weights)
    teacher = ["--teacher", "edgekd.models.zoo_cnn:resnet", "--teacher-weights", str(weights)]
    out = tmp_path / "p"
    code = main(["prune", "--target", "cortex-a76", "--budget-ms", "0.5", "--refine", *teacher, "--out", str(out),
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "prune.json").read_text())
    assert record["predicted_ms"] <= 0.5 and (out / "student.pt").stat().st_size > 0
    assert record["refinement"]["chosen"] in ("per-layer", "uniform")
    small = ["--steps", "2", "--train-samples", "64", "--eval-samples", "64"]
    code = main(["prune", "--target", "cortex-a76", "--sweep", "--ratios", "0.3,0.6", *small, *teacher,
                 "--out", str(out), "--no-progress"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert [p["ratio"] for p in sweep["points"]] == [0.3, 0.6]
    assert sweep["settings"]["target"] == "cortex-a76" and "cliff" in sweep
    assert "cliff" in printed and "0.30" in printed


def test_bad_ratio_list_is_a_one_line_usage_error(capsys):
    code = main(["prune", "--sweep", "--ratios", "0.1,abc"])
    assert code == 2 and "comma-separated" in capsys.readouterr().err
