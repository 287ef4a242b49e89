import json

import numpy as np
import pytest
import torch

from edgekd.core.errors import ConfigError
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.distill.prune_sweep import SweepSettings, format_table, pareto_flags, run_sweep
from edgekd.models.example_teacher import ResidualCNN
from edgekd.prune.pruner import PruneSettings, conv_channels


def _bundle(n: int = 96) -> DatasetBundle:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    x = (rng.random((n, 1, 28, 28)) * 60 + y[:, None, None, None] * 19).astype(np.uint8)  # learnable: brightness
    split = Split(x, y.astype(np.int64))
    return DatasetBundle("toy", split, split, split, tuple(str(i) for i in range(10)), (0.5,), (0.25,))


def test_pareto_front_keeps_only_undominated_points():
    pts = [
        {"predicted_ms": 10.0, "measured_ms": None, "accuracy": 0.90},
        {"predicted_ms": 6.0, "measured_ms": None, "accuracy": 0.90},  # dominates the first
        {"predicted_ms": 4.0, "measured_ms": None, "accuracy": 0.70},
        {"predicted_ms": 5.0, "measured_ms": None, "accuracy": 0.60},  # slower and worse than the third
        {"predicted_ms": 1.0, "measured_ms": 3.0, "accuracy": 0.65},  # measured 3.0 counts, not 1.0
    ]
    assert pareto_flags(pts) == [False, True, True, False, True]


def test_settings_reject_bad_ratios():
    with pytest.raises(ConfigError, match="ratios"):
        SweepSettings(ratios=(0.2, 1.0))


def test_sweep_records_every_point_marks_the_front_and_runs_the_cliff_detector():
    torch.manual_seed(0)
    teacher = ResidualCNN((16, 32), blocks_per_stage=1).eval()
    data = _bundle()
    soft = torch.randn(len(data.train), 10).numpy()
    calls = []

    def predict(m):
        calls.append(1)
        return float(sum(conv_channels(m).values()))

    settings = SweepSettings(
        ratios=(0.0, 0.25, 0.5), finetune_steps=3, batch_size=16, train_samples=48, eval_samples=64
    )
    out = run_sweep(teacher, data, soft, predict, None, PruneSettings(), settings)
    json.dumps(out)  # JSON-able
    pts = out["points"]
    assert [p["ratio"] for p in pts] == [0.0, 0.25, 0.5]
    assert set(pts[0]) >= {"ratio", "params", "macs", "predicted_ms", "measured_ms", "accuracy", "pareto"}
    assert pts[0]["params"] > pts[1]["params"] > pts[2]["params"]
    assert pts[0]["macs"] > pts[1]["macs"] > pts[2]["macs"]
    assert pts[0]["predicted_ms"] > pts[1]["predicted_ms"] > pts[2]["predicted_ms"]
    assert all(p["measured_ms"] is None for p in pts)
    assert pts[2]["pareto"]  # the fastest point is always on the front
    assert [p["pareto"] for p in pts] == pareto_flags(pts)
    assert out["teacher"]["accuracy"] == pts[0]["accuracy"]
    check = out["cliff_check"]
    assert check["name"] == "capacity-cliff"
    assert (out["cliff"] is None) == (not check["triggered"])
    table = format_table(out)
    assert check["finding"] in table and len(table.splitlines()) == 5


def test_a_cliff_is_flagged_in_the_table():
    sweep = {"points": [
        {"ratio": 0.3, "params": 1000, "macs": 5_000_000, "predicted_ms": 2.0, "measured_ms": None, "accuracy": 0.9,
         "pareto": True},
        {"ratio": 0.35, "params": 950, "macs": 4_500_000, "predicted_ms": 1.9, "measured_ms": 1.5, "accuracy": 0.7,
         "pareto": True}]}  # fmt: skip
    from edgekd.validate.failure_modes import detect_capacity_cliff

    sweep["cliff_check"] = detect_capacity_cliff(sweep["points"]).to_json()
    table = format_table(sweep)
    assert "CLIFF:" in table and "fix:" in table and "1.500" in table
