"""The validation stage's cached logits and how its result lands in report.json and the artifacts' sidecars."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.progress import NULL_PROGRESS
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.stages import StageContext
from edgekd.pipeline.validate_stage import CORRUPTION_SAMPLES, apply_validation, corruption_logits, split_logits
from edgekd.validate.corruptions import CORRUPTIONS, SEVERITIES
from edgekd.validate.validate_build import ValidationResult


def tiny_context(tmp_path) -> StageContext:
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 1, 8, 8)).astype(np.uint8), rng.integers(0, 3, n))

    data = DatasetBundle("tiny", split(20), split(30), split(CORRUPTION_SAMPLES + 10), ("a", "b", "c"),
                         digest="d1")  # fmt: skip
    inputs = SimpleNamespace(data=data, config=SimpleNamespace(export=SimpleNamespace(parity_samples=None)))
    return StageContext(inputs, StageCache(tmp_path / ".stages"), NULL_PROGRESS)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def test_corruption_logits_cover_every_variant_and_are_cached(tmp_path):
    ctx, model = tiny_context(tmp_path), tiny_model()
    first = corruption_logits(ctx, model, "model-1", "student")
    assert set(first) == {"clean"} | {f"{c}@{s}" for c in CORRUPTIONS for s in SEVERITIES}
    assert all(v.shape == (CORRUPTION_SAMPLES, 3) for v in first.values())
    assert not np.allclose(first["clean"], first["gaussian_noise@3"])
    assert ctx.cache.misses == ["corruptions-student"]
    again = corruption_logits(ctx, model, "model-1", "student")
    assert ctx.cache.hits == ["corruptions-student"]
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_split_logits_match_the_model(tmp_path):
    ctx, model = tiny_context(tmp_path), tiny_model()
    logits = split_logits(ctx, model, "model-1", "student", "val", 25)
    x = ctx.inputs.data.to_tensor(ctx.inputs.data.val.subset(25).x)  # a stratified sample, not the first 25
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-5)


def test_apply_validation_stores_the_temperature_with_each_artifact(tmp_path):
    arts = tmp_path / "artifacts"
    arts.mkdir()
    (arts / "m.tflite.sidecar.json").write_text(json.dumps({"schema": 1, "class_names": ["a"]}))
    report = {"teacher": {"accuracy": 0.9}, "student": {"accuracy": 0.8},
              "artifacts": [{"name": "m.tflite"}, {"name": "no-sidecar.onnx"}]}  # fmt: skip
    section = {"temperature": 1.7, "temperature_scaling": {"val": {"fit_samples": 500}}, "warnings": []}
    result = ValidationResult(section, {"ece": 0.01}, {"ece": 0.05, "temperature": 1.7}, [], 1.7)
    apply_validation(report, result, tmp_path)
    sidecar = json.loads((arts / "m.tflite.sidecar.json").read_text())
    assert sidecar["temperature"] == 1.7 and sidecar["class_names"] == ["a"] and sidecar["schema"] == 1
    assert sidecar["temperature_fit"]["samples"] == 500
    assert [a["temperature"] for a in report["artifacts"]] == [1.7, 1.7]
    assert report["student"] == {"accuracy": 0.8, "ece": 0.05, "temperature": 1.7}
    assert report["teacher"]["ece"] == 0.01 and report["validation"] is section
    assert sorted(p.name for p in arts.iterdir()) == ["m.tflite.sidecar.json"]  # no temporary file left


def test_energy_breakeven_uses_deployed_precision_and_host_power():
    from edgekd.config.targets import load_target
    from edgekd.pipeline.validate_stage import energy_breakeven_section

    report = {
        "budget": {"precision": "int8"},
        "teacher": {"energy": [{"mj": 9.0, "precision": "fp32", "evidence": "measured-host"},
                               {"mj": 50.0, "precision": "int8", "evidence": "predicted"}]},
        "student": {"energy": [{"mj": 30.0, "precision": "int8", "evidence": "predicted"}],
                    "distill": {"seconds": 100.0}},
    }  # fmt: skip
    host = load_target("x86-64-host")
    watts = host.power.idle_w + host.power.active_w_per_core * host.cpu.cores
    be = energy_breakeven_section(report)
    assert be["host_power_w"] == pytest.approx(watts)
    assert be["saved_mj_per_inference"] == pytest.approx(20.0)
    # 100 s x watts J = 100_000 x watts mJ, repaid at 20 mJ per inference
    assert be["inferences"] == round(100 * watts * 1000 / 20)
    assert be["per_inference_evidence"] == {"teacher": "predicted", "student": "predicted"}
    del report["student"]["distill"]
    assert energy_breakeven_section(report) is None
