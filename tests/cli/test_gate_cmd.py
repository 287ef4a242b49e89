"""``edgekd gate``: exit codes, table/JSON/JUnit output, rules file, baseline, bad input (no build runs)."""

import json
import xml.etree.ElementTree as ET

import pytest

from edgekd.cli.main import main
from edgekd.gate.metrics import METRICS
from tests.gate.report_factory import make_report, write_report
from tests.gate.test_junit import check_structure


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def assert_one_line_error(err: str) -> None:
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err


def test_passing_report_exits_0_and_shows_evidence(capsys, tmp_path):
    code, out, err = run(capsys, write_report(tmp_path, make_report()))
    assert code == 0, err
    assert "latency" in out and "measured-host" in out and "PASS" in out and "gate passed" in out


def test_failing_report_exits_1_and_names_the_rule(capsys, tmp_path):
    code, out, _ = run(capsys, write_report(tmp_path, make_report(host=(20.0, 21.0, 22.0))))
    assert code == 1
    assert "FAIL" in out and "gate FAILED: latency" in out


def test_percentile_choice_and_budget_override(capsys, tmp_path):
    path = write_report(tmp_path, make_report(host=(8.0, 9.0, 12.0)))
    assert run(capsys, path, "--stat", "p90")[0] == 0
    assert run(capsys, path, "--stat", "p99")[0] == 1
    assert run(capsys, path, "--stat", "p99", "--budget-ms", "12.5")[0] == 0


def test_ssh_target_report_is_gated_on_the_prediction(capsys, tmp_path):
    report = make_report("cortex-a76", host=(1.0, 1.0, 1.0), emulated=(900.0, 900.0, 900.0), predicted=40.0)
    code, out, _ = run(capsys, write_report(tmp_path, report), "--json")
    assert code == 1
    latency = json.loads(out)["rules"][0]
    assert (latency["name"], latency["value"], latency["evidence"], latency["passed"]) == (
        "latency", 40.0, "predicted", False)  # fmt: skip


def test_json_output(capsys, tmp_path):
    code, out, _ = run(capsys, write_report(tmp_path, make_report()), "--json", "--limit", "ece=0.05")
    data = json.loads(out)
    assert code == 0 and data["passed"] is True and data["target"] == "x86-64-host"
    ece = next(r for r in data["rules"] if r["name"] == "ece")
    assert (ece["status"], ece["passed"], ece["value"]) == ("not-evaluated", None, None)
    assert data["counts"] == {"rules": len(data["rules"]), "failed": 0, "not_evaluated": 1}


def test_not_evaluated_rows_in_table_and_strict(capsys, tmp_path):
    path = write_report(tmp_path, make_report())
    code, out, _ = run(capsys, path, "--limit", "per_class_drop=3")
    assert code == 0 and "not evaluated" in out and "1 not evaluated" in out
    assert run(capsys, path, "--limit", "per_class_drop=3", "--strict")[0] == 1


def test_junit_file(capsys, tmp_path):
    xml = tmp_path / "gate.xml"
    code, _, _ = run(capsys, write_report(tmp_path, make_report(agreement=0.5)), "--junit", xml, "--limit", "ece=0.1")
    assert code == 1
    root = ET.parse(xml).getroot()
    check_structure(root)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) == 7
    assert int(suite.get("failures")) == len(failures) == 3  # parity of each of the three artifacts
    assert int(suite.get("skipped")) == 1


def test_rules_file_and_cli_override(capsys, tmp_path):
    rules = tmp_path / "gate.yaml"
    rules.write_text("stat: p99\nrules:\n  size: 0.5MB\n")
    path = write_report(tmp_path, make_report(size_bytes=1_000_000))
    code, out, _ = run(capsys, path, "--rules", rules, "--json")
    failed = {r["name"] for r in json.loads(out)["rules"] if r["passed"] is False}
    assert code == 1 and failed == {"size"} and json.loads(out)["stat"] == "p99"
    assert run(capsys, path, "--rules", rules, "--limit", "size=1MB")[0] == 0


def test_unknown_metric_lists_known_ones(capsys, tmp_path):
    path = write_report(tmp_path, make_report())
    code, _, err = run(capsys, path, "--limit", "latncy=3")
    assert code == 2
    assert_one_line_error(err)
    assert "unknown metric 'latncy'" in err and all(m in err for m in METRICS)
    rules = tmp_path / "gate.yaml"
    rules.write_text("rules:\n  flops: 3\n")
    code, _, err = run(capsys, path, "--rules", rules)
    assert code == 2 and str(rules) in err and "unknown metric 'flops'" in err and "known metrics" in err


def test_bad_rules_file_exits_2(capsys, tmp_path):
    rules = tmp_path / "gate.yaml"
    rules.write_text("rules: [latency\n")
    code, _, err = run(capsys, write_report(tmp_path, make_report()), "--rules", rules)
    assert code == 2
    assert_one_line_error(err)
    assert "not valid YAML" in err


def test_older_schema_version_gets_the_upgrade_message(capsys, tmp_path):
    path = write_report(tmp_path, make_report(schema_version="0.9"))
    code, _, err = run(capsys, path)
    assert code == 2
    assert_one_line_error(err)
    assert "'0.9'" in err and "re-run `edgekd build`" in err


def test_missing_report_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "nope.json")
    assert code == 2
    assert_one_line_error(err)
    assert "nope.json" in err


def test_target_option_must_match_the_report(capsys, tmp_path):
    code, _, err = run(capsys, write_report(tmp_path, make_report()), "--target", "cortex-a76")
    assert code == 2 and "report is for target 'x86-64-host'" in err


def test_baseline_regression_exits_1(capsys, tmp_path):
    old = write_report(tmp_path, make_report(host=(4.0, 5.0, 6.0)), "old.json")
    new = write_report(tmp_path, make_report(host=(4.6, 5.0, 6.0)), "new.json")
    code, out, _ = run(capsys, new, "--baseline", old, "--max-regression", "5%", "--json")
    rows = {r["name"]: r for r in json.loads(out)["rules"]}
    assert code == 1
    assert rows["baseline:latency"]["passed"] is False and rows["baseline:latency"]["value"] == pytest.approx(15.0)
    assert rows["baseline:accuracy"]["passed"] is True and rows["baseline:size"]["passed"] is True


def test_baseline_regression_in_junit_exits_1(capsys, tmp_path):
    old = write_report(tmp_path, make_report(host=(4.0, 5.0, 6.0)), "old.json")
    new = write_report(tmp_path, make_report(host=(4.6, 5.0, 6.0)), "new.json")
    xml = tmp_path / "gate.xml"
    assert run(capsys, new, "--baseline", old, "--junit", xml)[0] == 1
    root = ET.parse(xml).getroot()
    check_structure(root)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["baseline:latency"].find("failure") is not None and cases["latency"].find("failure") is None
    assert root.find("testsuite").get("failures") == "1"


def test_baseline_without_regression_exits_0(capsys, tmp_path):
    old = write_report(tmp_path, make_report(host=(4.0, 5.0, 6.0)), "old.json")
    new = write_report(tmp_path, make_report(host=(4.1, 5.0, 6.0)), "new.json")
    code, out, _ = run(capsys, new, "--baseline", old, "--max-regression", "5%")
    assert code == 0 and "baseline:latency" in out


def test_baseline_accuracy_in_points(capsys, tmp_path):
    old = write_report(tmp_path, make_report(deployed_acc=0.90), "old.json")
    new = write_report(tmp_path, make_report(deployed_acc=0.89), "new.json")
    assert run(capsys, new, "--baseline", old, "--max-regression", "1")[0] == 1  # 1.1 % relative
    assert run(capsys, new, "--baseline", old, "--max-regression", "1", "--max-accuracy-regression-points", "1")[0] == 0


def test_baseline_older_schema_exits_2(capsys, tmp_path):
    old = write_report(tmp_path, make_report(schema_version="0.9"), "old.json")
    code, _, err = run(capsys, write_report(tmp_path, make_report()), "--baseline", old)
    assert code == 2 and "old.json" in err and "re-run `edgekd build`" in err


def test_bad_max_regression_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, write_report(tmp_path, make_report()), "--max-regression", "lots")
    assert code == 2
    assert_one_line_error(err)
    assert "baseline.max_regression" in err


def test_help_has_an_example(capsys):
    assert main(["gate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "--baseline" in out and "--junit" in out


def test_report_without_a_target_name_exits_2(capsys, tmp_path):
    report = make_report()
    del report["target"]
    code, _, err = run(capsys, write_report(tmp_path, report))
    assert code == 2 and "required key 'target' is missing" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("limit", ["latency=inf", "latency=nan", "energy=inf", "ece=nan"])
def test_a_limit_that_gates_nothing_is_refused(tmp_path, capsys, limit):
    code, _, err = run(capsys, write_report(tmp_path, make_report()), "--limit", limit)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and limit.split("=")[0] in err and "Traceback" not in err
