"""The build's prune stage: uniform search, then latency-aware per-layer refinement recorded in prune.json."""

import pytest
import torch

from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.build_config import BuildConfig, TeacherConfig
from edgekd.core.progress import NULL_PROGRESS
from edgekd.models.zoo_cnn import resnet
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.inputs import resolve
from edgekd.pipeline.stages import StageContext, prune_stage


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("teacher") / "t.pt"
    torch.save(resnet().state_dict(), weights)
    teacher = TeacherConfig(factory="edgekd.models.zoo_cnn:resnet", weights=weights)
    probe = resolve(BuildConfig(target="cortex-a76", teacher=teacher))  # predicted-only target: no measuring
    model = LatencyModel.for_target(probe.profile)
    full = model.predict_ms(trace_ops(probe.teacher, (1, *probe.data.input_shape)), "int8", 1)
    return resolve(BuildConfig(target="cortex-a76", teacher=teacher, budget_ms=round(full * 0.5, 4)))


def _run(inputs, tmp_path, refine: bool, monkeypatch):
    cfg = inputs.config.prune
    monkeypatch.setattr(cfg, "refine", refine)  # explicit: the default is off (gap_diagnosis.md)
    return prune_stage(StageContext(inputs, StageCache(tmp_path / ".stages"), NULL_PROGRESS))


@pytest.mark.slow
def test_prune_stage_refines_per_layer_and_records_the_plan(inputs, tmp_path, monkeypatch):
    student, record = _run(inputs, tmp_path, True, monkeypatch)
    target = inputs.budget_ms * (1 - inputs.config.prune.margin)
    assert record["refine"] is True and student.exists()
    refinement = record["refinement"]
    assert refinement["chosen"] in ("per-layer", "uniform") and refinement["kept"]
    assert record["predicted_ms"] <= target + 1e-9
    if refinement["chosen"] == "per-layer":  # the recorded plan is what the student has
        assert refinement["calibration_kl"] <= refinement["uniform_calibration_kl"]
        assert all(record["channels"][g] == k for g, k in refinement["kept"].items())
        assert len(set(refinement["kept"].values())) > 1
    assert record["uniform_ratio"] > 0


@pytest.mark.slow
def test_prune_stage_without_refinement_keeps_the_uniform_plan(inputs, tmp_path, monkeypatch):
    _, record = _run(inputs, tmp_path, False, monkeypatch)
    assert record["refine"] is False and record["refinement"] is None
    assert record["ratio"] == record["uniform_ratio"] > 0
