"""A user's own teacher (factory + state dict) and dataset (.npz) through a whole build."""

import json

import numpy as np
import pytest
import torch

from edgekd.cli.main import main
from edgekd.data.bundled import example_dataset
from edgekd.models.example_teacher import ResidualCNN

pytestmark = pytest.mark.slow


def small_teacher():
    return ResidualCNN((16, 32), blocks_per_stage=1)


def test_user_teacher_and_npz_build_on_the_host_target(tmp_path, monkeypatch, capsys):
    data = example_dataset()
    arrays = {f"x_{s}": getattr(data, s).x[:300] for s in ("train", "val", "test")}
    arrays |= {f"y_{s}": getattr(data, s).y[:300] for s in ("train", "val", "test")}
    np.savez(tmp_path / "mine.npz", **arrays, mean=np.array(data.mean), std=np.array(data.std))
    torch.manual_seed(0)
    torch.save(small_teacher().state_dict(), tmp_path / "teacher.pt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_models.py").write_text(
        "from tests.e2e.test_user_teacher import small_teacher\n\ndef teacher():\n    return small_teacher()\n"
    )
    code = main(["build", "--target", "x86-64-host", "--budget-ms", "1000", "--teacher", "my_models:teacher",
                 "--teacher-weights", "teacher.pt", "--data", "mine.npz", "--out", "out", "--epochs", "1",
                 "--runs", "5", "--no-progress"])  # fmt: skip
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == (0 if report["gate"]["passed"] else 1)
    assert report["dataset"]["splits"] == {"train": 300, "val": 300, "test": 300}
    assert report["student"]["prune"]["ratio"] == 0.0  # the budget is generous: nothing to prune
    formats = [(a["format"], a["precision"]) for a in report["artifacts"]]
    assert formats == [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "int8")]
    latency = next(r for r in report["gate"]["rules"] if r["name"] == "latency")
    assert latency["evidence"] == "measured-host"  # the host target is measured, not predicted
    assert "report:" in capsys.readouterr().out
