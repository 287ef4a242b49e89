"""Regression rules against a baseline report: same evidence level, relative or absolute accuracy."""

import pytest

from edgekd.config.targets import load_target
from edgekd.core.errors import InputError
from edgekd.gate.baseline import baseline_rules
from edgekd.gate.gate_config import GateRulesConfig, resolve_settings
from tests.gate.report_factory import make_report


def compare(new: dict, old: dict, **baseline: object) -> dict:
    profile = load_target(new["target"]["name"])
    settings = resolve_settings(GateRulesConfig.model_validate({"baseline": baseline}), profile, new)
    return {r.name: r for r in baseline_rules(new, old, profile, settings)}


def test_no_regression_passes_and_improvements_are_negative():
    rows = compare(make_report(host=(3.8, 5.0, 6.0), size_bytes=900_000), make_report(host=(4.0, 5.0, 6.0)))
    assert list(rows) == ["baseline:latency", "baseline:accuracy", "baseline:size"]
    assert all(r.status == "passed" for r in rows.values())
    assert rows["baseline:latency"].value == pytest.approx(-5.0)
    assert rows["baseline:size"].value == pytest.approx(-10.0)
    assert rows["baseline:latency"].evidence == "measured-host" and rows["baseline:latency"].unit == "%"


def test_latency_regression_beyond_the_limit_fails():
    rows = compare(make_report(host=(4.4, 5.0, 6.0)), make_report(host=(4.0, 5.0, 6.0)), max_regression="5%")
    assert rows["baseline:latency"].value == pytest.approx(10.0)
    assert rows["baseline:latency"].status == "failed"
    assert compare(make_report(host=(4.4, 5.0, 6.0)), make_report(host=(4.0, 5.0, 6.0)),
                   max_regression=12)["baseline:latency"].status == "passed"  # fmt: skip


def test_latency_compares_only_the_same_evidence_level():
    # the new build was measured on the host, the baseline only predicted: not comparable
    rows = compare(make_report(host=(4.0, 5.0, 6.0)), make_report(host=None, predicted=3.0))
    r = rows["baseline:latency"]
    assert r.status == "not-evaluated" and "baseline has no measured-host p50" in r.detail
    # both predicted (an ssh target ignores host figures): compared
    rows = compare(make_report("cortex-a76", predicted=33.0), make_report("cortex-a76", host=(1.0, 1.0, 1.0),
                                                                           predicted=30.0))  # fmt: skip
    assert rows["baseline:latency"].evidence == "predicted"
    assert rows["baseline:latency"].value == pytest.approx(10.0) and rows["baseline:latency"].status == "failed"


def test_accuracy_relative_by_default_and_absolute_points_on_request():
    new, old = make_report(deployed_acc=0.85), make_report(deployed_acc=0.90)
    rel = compare(new, old)["baseline:accuracy"]
    assert rel.value == pytest.approx(100 * 0.05 / 0.90) and rel.status == "failed" and rel.unit == "%"
    pts = compare(new, old, max_accuracy_regression_points=5.5)["baseline:accuracy"]
    assert pts.value == pytest.approx(5.0) and pts.limit == 5.5 and pts.unit == "pt" and pts.status == "passed"
    assert "deployed artifact" in pts.detail


def test_size_regression_fails():
    rows = compare(make_report(size_bytes=1_100_000), make_report(size_bytes=1_000_000))
    assert rows["baseline:size"].value == pytest.approx(10.0) and rows["baseline:size"].status == "failed"


def test_baseline_of_another_target_is_refused():
    with pytest.raises(InputError, match="baseline report is for target 'cortex-a76'"):
        compare(make_report("x86-64-host"), make_report("cortex-a76"))


def test_accuracy_falls_back_to_the_pytorch_student_without_parity_data():
    new, old = make_report(student_acc=0.80), make_report(student_acc=0.90)
    for report in (new, old):
        for art in report["artifacts"]:
            art["parity"] = None
    r = compare(new, old)["baseline:accuracy"]
    assert "PyTorch student" in r.detail and r.status == "failed"
