"""Rule evaluation on hand-written reports: latency evidence, percentiles, optional metrics, strictness."""

import math

import pytest

from edgekd.config.targets import load_target
from edgekd.core.errors import InputError
from edgekd.gate.gate_config import GateRulesConfig, resolve_settings
from edgekd.gate.rules import check_target, evaluate, evaluate_gate
from tests.gate.report_factory import CLASSES, make_report


def run(report: dict, **config: object):
    profile = load_target(report["target"]["name"])
    cfg = GateRulesConfig.model_validate(config)
    return evaluate(report, profile, resolve_settings(cfg, profile, report))


def row(evaluation, name: str):
    return next(r for r in evaluation.rules if r.name == name)


def test_passing_report_has_the_build_rules():
    ev = run(make_report())
    assert ev.passed and ev.exit_code == 0
    assert [r.name for r in ev.rules] == [
        "latency", "accuracy_drop", "accuracy_drop:student-onnx-fp32.x",
        "parity:student-onnx-fp32.x", "parity:student-onnx-int8.x", "parity:student-openvino-int8.x",
    ]  # fmt: skip
    lat = row(ev, "latency")
    assert (lat.value, lat.limit, lat.evidence, lat.status) == (4.0, 10.0, "measured-host", "passed")


def test_latency_over_budget_fails():
    ev = run(make_report(host=(12.0, 13.0, 14.0)))
    assert not ev.passed and ev.exit_code == 1
    assert [r.name for r in ev.failed] == ["latency"]


@pytest.mark.parametrize(("stat", "passed"), [("p50", True), ("p90", True), ("p99", False)])
def test_percentile_choice(stat, passed):
    ev = run(make_report(host=(8.0, 9.5, 12.0)), stat=stat)
    assert row(ev, "latency").passed is passed
    assert ev.stat == stat


def test_ssh_target_is_gated_on_the_prediction_and_says_what_it_ignored():
    report = make_report("cortex-a76", host=(1.0, 1.0, 1.0), emulated=(500.0, 600.0, 700.0), predicted=35.0)
    lat = row(run(report), "latency")
    assert (lat.value, lat.evidence, lat.status) == (35.0, "predicted", "failed")
    assert "measured-emulated" in lat.detail and "measured-host" in lat.detail


def test_prediction_used_for_p99_is_labelled():
    lat = row(run(make_report("cortex-a76", host=None, predicted=20.0), stat="p99"), "latency")
    assert lat.evidence == "predicted" and "used for the p99 budget" in lat.detail


def test_no_usable_latency_fails_rather_than_skips():
    ev = run(make_report("cortex-a76", host=None, predicted=None, emulated=(1.0, 1.0, 1.0)))
    lat = row(ev, "latency")
    assert lat.status == "failed" and lat.value is None and lat.evidence == "none"
    assert not ev.passed


def test_budget_override_and_accuracy_limit():
    report = make_report(teacher_acc=0.90, student_acc=0.87, deployed_acc=0.87)
    ev = run(report, rules={"latency": 3.0})
    assert row(ev, "latency").limit == 3.0 and row(ev, "latency").status == "failed"
    assert row(ev, "accuracy_drop").value == pytest.approx(3.0) and row(ev, "accuracy_drop").status == "failed"
    assert run(report, rules={"accuracy_drop": 3.5}).passed


def test_parity_uses_per_precision_minimum_or_an_override():
    ev = run(make_report(agreement=0.98))
    assert row(ev, "parity:student-onnx-fp32.x").status == "failed"  # fp32 needs 0.99
    assert row(ev, "parity:student-onnx-int8.x").status == "passed"  # int8 needs 0.97
    assert run(make_report(agreement=0.98), rules={"parity": 0.975}).passed


def test_optional_rules_without_data_are_not_evaluated_and_do_not_fail():
    ev = run(make_report(), rules={"per_class_drop": 5, "ece": 0.05, "energy": 10})
    for name in ("per_class_drop", "ece", "energy"):
        r = row(ev, name)
        assert (r.status, r.passed, r.value, r.evidence) == ("not-evaluated", None, None, "none")
        assert r.to_json()["passed"] is None and r.to_json()["value"] is None
    assert ev.passed and len(ev.not_evaluated) == 3


def test_strict_turns_not_evaluated_into_failures():
    ev = run(make_report(), strict=True, rules={"ece": 0.05})
    assert row(ev, "ece").status == "failed" and "strict" in row(ev, "ece").detail
    assert not ev.passed


def test_per_class_drop_reports_the_worst_class():
    teacher = {"T-shirt": 0.9, "Trouser": 0.95, "Pullover": 0.8}
    student = {"T-shirt": 0.88, "Trouser": 0.95, "Pullover": 0.72}
    report = make_report(teacher={"per_class_accuracy": teacher}, student={"per_class_accuracy": student})
    r = row(run(report, rules={"per_class_drop": 5}), "per_class_drop")
    assert r.value == pytest.approx(8.0) and r.status == "failed" and "'Pullover'" in r.detail


def test_per_class_accepts_lists_aligned_with_dataset_classes():
    report = make_report(teacher={"per_class_accuracy": [0.9, 0.9, 0.9]},
                         student={"per_class_accuracy": [0.89, 0.88, 0.9]})  # fmt: skip
    r = row(run(report, rules={"per_class_drop": 5}), "per_class_drop")
    assert r.status == "passed" and r.value == pytest.approx(2.0) and CLASSES[1] in r.detail


def test_ece_size_and_energy_when_present():
    energy = [
        {"mj": 4.0, "evidence": "measured-host", "precision": "int8"},
        {"mj": 9.0, "evidence": "predicted", "precision": "int8", "method": "power-model"},
    ]
    report = make_report("cortex-a76", size_bytes=3_000_000, student={"ece": 0.03, "energy": energy})
    ev = run(report, rules={"ece": 0.05, "size": "2MB", "energy": 8})
    assert row(ev, "ece").status == "passed"
    size = row(ev, "size")
    assert (size.value, size.limit, size.status, size.evidence) == (3e6, 2e6, "failed", "file")
    energy = row(ev, "energy")  # host energy is not the board's
    assert (energy.value, energy.evidence, energy.status) == (9.0, "predicted", "failed")


def test_legacy_evaluate_gate_keeps_the_report_json_shape():
    report = make_report(host=None, predicted=None)
    out = evaluate_gate(report, load_target("x86-64-host"), max_accuracy_drop=0.5)
    assert out["passed"] is False
    assert all(set(r) == {"name", "value", "limit", "passed", "evidence", "detail"} for r in out["rules"])
    lat, acc = out["rules"][0], out["rules"][1]
    assert lat["name"] == "latency" and math.isnan(lat["value"]) and lat["passed"] is False
    assert acc["limit"] == 0.5 and acc["passed"] is False  # 1 point drop > 0.5


def test_missing_required_key_is_an_input_error():
    report = make_report()
    del report["teacher"]["accuracy"]
    with pytest.raises(InputError, match=r"lacks 'teacher\.accuracy'"):
        run(report)


def test_report_for_another_target_is_refused():
    with pytest.raises(InputError, match="report is for target 'x86-64-host' but the profile is 'cortex-a76'"):
        check_target(make_report("x86-64-host"), load_target("cortex-a76"))


def test_default_gate_command_rules_match_the_builds_gate():
    report = make_report("cortex-a76", predicted=20.0)
    build_rows = evaluate_gate(report, load_target("cortex-a76"))["rules"]
    assert [r["name"] for r in build_rows] == [r.name for r in run(report).rules]
