"""The build's validation section on small constructed logits: what must be flagged is, what must not is not."""

import json

import numpy as np
import pytest

from edgekd.validate.validate_build import ArtifactLogits, ValidationInputs, validate_build

NAMES = ["cat", "dog", "bird"]


def make_logits(labels: np.ndarray, right: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Logits whose argmax is the label where ``right`` and another class elsewhere; ``scale`` sets confidence."""
    k = len(NAMES)
    pred = np.where(right, labels, (labels + 1 + rng.integers(0, k - 1, len(labels))) % k)
    logits = rng.normal(0.0, 0.3, (len(labels), k))
    # the predicted class leads by a margin; errors have smaller margins, as in real models
    logits[np.arange(len(labels)), pred] = logits.max(axis=1) + np.where(right, 1.0, 0.4)
    return scale * logits


def calibrated_logits(labels: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Logits right as often as softmax(logits / scale) says: ``scale`` times overconfident."""
    k = len(NAMES)
    base = rng.normal(0.0, 1.5, (len(labels), k))
    p = np.exp(base) / np.exp(base).sum(axis=1, keepdims=True)
    right = rng.random(len(labels)) < p.max(axis=1)
    pred = np.where(right, labels, (labels + 1 + rng.integers(0, k - 1, len(labels))) % k)
    top = base.argmax(axis=1)
    rows = np.arange(len(labels))
    # swap the top logit into the predicted class's place
    out = base.copy()
    out[rows, pred], out[rows, top] = base[rows, top], base[rows, pred]
    return scale * out


def inputs(student_right_by_class=(0.9, 0.9, 0.9), student_scale=3.0, **kw) -> ValidationInputs:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 200)
    y_val = np.repeat(np.arange(3), 200)
    t_right = rng.random(len(y)) < 0.92
    s_p = np.array(student_right_by_class)[y]
    s_right = rng.random(len(y)) < s_p
    s_right_val = rng.random(len(y_val)) < s_p
    base = {
        "class_names": NAMES,
        "test_labels": y,
        "teacher_test": make_logits(y, t_right, 3.0, rng),
        "student_test": make_logits(y, s_right, student_scale, rng),
        "val_labels": y_val,
        "student_val": make_logits(y_val, s_right_val, student_scale, rng),
        "student_size": 1000,
        "teacher_size": 10000,
        "student_ms": 2.0,
        "teacher_ms": 20.0,
        "teacher_ms_evidence": "measured-host p90, teacher onnx-fp32",
    }
    base.update(kw)
    return ValidationInputs(**base)


def findings(result) -> dict:
    return {f["name"]: f for f in result.section["failure_modes"]}


def test_healthy_student_triggers_nothing():
    res = validate_build(inputs())
    f = findings(res)
    assert set(f) == {"capacity-cliff", "minority-slice-collapse", "overconfident-student"}
    assert not any(x["triggered"] for x in f.values())
    assert res.warnings == [] and res.section["warnings"] == []
    assert "no pruning sweep" in f["capacity-cliff"]["finding"]


def test_collapsed_class_is_flagged_with_a_fix_and_counted_as_warnings():
    res = validate_build(inputs(student_right_by_class=(0.95, 0.95, 0.3)))
    f = findings(res)["minority-slice-collapse"]
    assert f["triggered"] and f["evidence"]["class"] == "bird" and f["suggested_fix"]
    assert res.section["student"]["weak_classes"] == ["bird"]
    # one weak slice + spread flag + the collapse finding
    assert len(res.warnings) == len(res.section["student"]["findings"]) + 1 >= 3
    assert res.section["per_class_regression"]["worst_class"] == "bird"


def test_overconfident_student_is_flagged_and_temperature_scaling_cools_it():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 400)
    res = validate_build(inputs(test_labels=y, teacher_test=calibrated_logits(y, rng, 1.0),
                                student_test=calibrated_logits(y, rng, 4.0), val_labels=y,
                                student_val=calibrated_logits(y, rng, 4.0)))  # fmt: skip
    f = findings(res)["overconfident-student"]
    assert f["triggered"] and f["evidence"]["excess"] > 0.05 and "temperature" in f["suggested_fix"]
    ts = res.section["temperature_scaling"]
    assert 3.0 < ts["val"]["temperature"] < 5.5
    assert ts["val"]["ece_after"] < ts["val"]["ece_before"]
    assert ts["test"]["ece_after"] < ts["test"]["ece_before"]
    assert res.student["temperature"] == res.section["temperature"] == ts["val"]["temperature"]
    assert res.student["ece_calibrated"] < res.student["ece"]


def test_capacity_cliff_uses_the_prune_sweep():
    cliff = {"points": [{"ratio": 0.3, "params": 1000, "accuracy": 0.90, "predicted_ms": 10},
                        {"ratio": 0.35, "params": 960, "accuracy": 0.70, "predicted_ms": 9}]}  # fmt: skip
    gentle = {
        "points": [{"ratio": 0.3, "params": 1000, "accuracy": 0.90}, {"ratio": 0.5, "params": 600, "accuracy": 0.89}]
    }
    assert findings(validate_build(inputs(prune_sweep=cliff)))["capacity-cliff"]["triggered"]
    res = validate_build(inputs(prune_sweep=gentle))
    assert not findings(res)["capacity-cliff"]["triggered"]
    assert "no pruning sweep" not in findings(res)["capacity-cliff"]["finding"]


def test_gate_keys_and_per_class_accuracy_match_the_logits():
    inp = inputs(student_right_by_class=(1.0, 0.5, 0.9))
    res = validate_build(inp)
    y, pred = inp.test_labels, inp.student_test.argmax(axis=1)
    for c, name in enumerate(NAMES):
        assert res.student["per_class_accuracy"][name] == pytest.approx(np.mean(pred[y == c] == c), abs=1e-6)
    assert res.student["per_class_accuracy"]["cat"] == 1.0
    assert 0 <= res.teacher["ece"] <= 1 and 0 <= res.student["ece"] <= 1
    assert res.section["student"]["accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-6)


def test_distillation_score_reports_policy_and_inputs():
    ds = validate_build(inputs(ds_policy="safety-critical")).section["distillation_score"]
    assert ds["policy"] == "safety-critical" and ds["alpha"] == 0.2
    assert ds["inputs"]["student_size"] == 1000 and ds["inputs"]["teacher_size"] == 10000
    assert ds["size_ratio"] == pytest.approx(0.1)
    expected = 0.2 * 0.1 + 0.8 * (1 - ds["inputs"]["student_accuracy"] / ds["inputs"]["teacher_accuracy"])
    assert ds["score"] == pytest.approx(expected, abs=1e-5)


def test_cascade_targets_teacher_minus_half_a_point_and_recommends_the_cheapest():
    c = validate_build(inputs()).section["cascade"]
    assert c["target_accuracy"] == pytest.approx(c["teacher_accuracy"] - 0.005, abs=1e-6)
    assert c["teacher_ms_evidence"].startswith("measured-host")
    rec = c["recommended"]
    assert rec is not None and rec["cascade_accuracy"] >= c["target_accuracy"] - 1e-9
    assert rec["expected_ms"] == pytest.approx(2.0 + rec["escalation_rate"] * 20.0, abs=1e-3)
    cheaper = [p for p in c["points"] if p["expected_ms"] < rec["expected_ms"]]
    assert all(p["cascade_accuracy"] < c["target_accuracy"] for p in cheaper)


def test_artifacts_are_validated_on_their_own_logits_and_corruptions_reported():
    base = inputs()
    art = base.student_test[:100].copy()
    art[:10] = np.roll(art[:10], 1, axis=1)  # the runtime changes some answers
    y = base.test_labels
    clean = {"teacher": base.teacher_test[:30], "student": base.student_test[:30]}
    noisy = {who: {"blur@1": np.roll(v, 1, axis=1)} for who, v in clean.items()}
    res = validate_build(inputs(
        artifacts=[ArtifactLogits("student-onnx-int8.onnx", "onnxruntime", art)],
        corruption_labels=y[:30], corruption_logits={who: {"clean": v, **noisy[who]} for who, v in clean.items()},
    ))  # fmt: skip
    row = res.section["artifacts"][0]
    assert row["samples"] == 100 and row["runtime"] == "onnxruntime"
    assert row["accuracy"] == pytest.approx(np.mean(art.argmax(1) == y[:100]), abs=1e-6)
    corr = res.section["corruptions"]
    assert corr["samples"] == 30 and corr["rows"][0]["corruption"] == "blur"
    assert corr["mean_drop_points"]["blur"]["teacher"] > 0
    json.dumps(res.section, allow_nan=False)  # strictly JSON-able
