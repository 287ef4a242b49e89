"""JUnit XML: one testcase per rule, counts match, and every document validates against the JUnit schema
CI systems read (tests/gate/junit-10-strict.xsd, the Jenkins junit-10 structure, see its header)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from edgekd.config.targets import load_target
from edgekd.gate.baseline import baseline_rules
from edgekd.gate.gate_config import GateRulesConfig, resolve_settings
from edgekd.gate.junit import junit_xml, write_junit
from edgekd.gate.metrics import RuleResult
from edgekd.gate.rules import GateEvaluation, evaluate
from tests.gate.report_factory import make_report

XSD_PATH = Path(__file__).with_name("junit-10-strict.xsd")
SCHEMA = etree.XMLSchema(etree.parse(str(XSD_PATH)))


def check_structure(elem: ET.Element) -> None:
    """Assert that ``elem`` (a parsed JUnit document's root) validates against the JUnit XSD."""
    doc = etree.fromstring(ET.tostring(elem, encoding="utf-8"))
    if not SCHEMA.validate(doc):
        raise AssertionError("JUnit XML does not validate against junit-10-strict.xsd: "
                             + "; ".join(f"line {e.line}: {e.message}" for e in SCHEMA.error_log))  # fmt: skip


def evaluation_with_every_status() -> GateEvaluation:
    report = make_report(host=(12.0, 13.0, 14.0), agreement=0.98)
    profile = load_target("x86-64-host")
    cfg = GateRulesConfig.model_validate({"rules": {"ece": 0.05}})
    return evaluate(report, profile, resolve_settings(cfg, profile, report))


def test_one_testcase_per_rule_with_failures_and_skips_counted(tmp_path):
    ev = evaluation_with_every_status()
    path = write_junit(ev, tmp_path / "out" / "gate.xml", report_name="build/x86-64-host/report.json")
    root = ET.parse(path).getroot()
    check_structure(root)
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in ev.rules]
    assert {c.get("classname") for c in cases} == {"edgekd.gate.x86-64-host"}
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert failed == [r.name for r in ev.failed] and "latency" in failed and len(failed) == 2
    assert skipped == ["ece"]
    for elem in (root, suite):
        assert (elem.get("tests"), elem.get("failures"), elem.get("errors")) == (str(len(cases)), "2", "0")
    assert suite.get("skipped") == "1"
    latency = next(c for c in cases if c.get("name") == "latency")
    assert "12.000 ms" in latency.find("failure").get("message")
    assert "evidence: measured-host" in latency.find("system-out").text
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["report"] == "build/x86-64-host/report.json" and props["passed"] == "false"


def test_all_passing_has_no_failure_elements():
    report = make_report()
    profile = load_target("x86-64-host")
    ev = evaluate(report, profile, resolve_settings(GateRulesConfig(), profile, report))
    root = ET.fromstring(junit_xml(ev, "r.json", timestamp=0))
    check_structure(root)
    assert root.find(".//failure") is None and root.find(".//skipped") is None
    assert root.find("testsuite").get("timestamp") == "1970-01-01T00:00:00"


def test_markup_and_control_characters_are_escaped():
    rule = RuleResult.check('parity:<a & "b">', "parity", 0.5, 0.9, "measured-host", "bad \x01 byte <here>")
    root = ET.fromstring(junit_xml(GateEvaluation("t", "p50", [rule]), "r&.json"))
    check_structure(root)
    case = root.find(".//testcase")
    assert case.get("name") == 'parity:<a & "b">'
    assert "<here>" in case.find("failure").text and "\x01" not in case.find("failure").text


def baseline_evaluation() -> GateEvaluation:
    """The gate with ``--baseline``: a 15 % latency regression fails ``baseline:latency``."""
    profile = load_target("x86-64-host")
    old, new = make_report(host=(4.0, 5.0, 6.0)), make_report(host=(4.6, 5.0, 6.0))
    settings = resolve_settings(GateRulesConfig(), profile, new)
    return evaluate(new, profile, settings).extended(baseline_rules(new, old, profile, settings))


def test_baseline_rules_are_testcases_too():
    ev = baseline_evaluation()
    root = ET.fromstring(junit_xml(ev, "new/report.json"))
    check_structure(root)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == len(ev.rules) and {"baseline:latency", "baseline:accuracy", "baseline:size"} <= set(cases)
    assert cases["baseline:latency"].find("failure") is not None
    assert cases["baseline:size"].find("failure") is None
    assert root.find("testsuite").get("failures") == str(len(ev.failed)) == "1"


def test_the_schema_is_the_shipped_xsd_and_says_where_it_comes_from():
    text = XSD_PATH.read_text()
    assert "Provenance" in text and "jenkinsci/xunit-plugin" in text
    assert SCHEMA.validate(etree.fromstring(junit_xml(baseline_evaluation(), "r.json").encode()))


VALID_SUITE = '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">{}</testsuite></testsuites>'


def test_a_minimal_valid_document_passes_the_schema():
    check_structure(ET.fromstring(VALID_SUITE.format('<testcase name="t"><skipped message="m"/></testcase>')))


@pytest.mark.parametrize(
    "bad",
    [
        '<testsuites><testsuite tests="1" failures="0" errors="0"/></testsuites>',  # suite without name
        '<testsuites><testsuite name="s" tests="1" errors="0"/></testsuites>',  # no failures count
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" colour="red"/></testsuites>',  # attribute
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="1.2.3"/></testsuites>',  # time
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" timestamp="2026-01-01T00:00:00Z"/>'
        "</testsuites>",  # timestamp with a zone
        '<testsuites><testcase name="t"/></testsuites>',  # testcase outside a suite
        VALID_SUITE.format('<testcase name="t"><failure/><skipped/></testcase>'),  # wrong child order
        VALID_SUITE.format('<testcase name="t"><skipped/><skipped/></testcase>'),  # two skipped
        VALID_SUITE.format('<testcase classname="c"/>'),  # testcase without name
        VALID_SUITE.format('<properties><property name="p"/></properties>'),  # property without value
        VALID_SUITE.format('<testcase name="t"/><properties/>'),  # properties after the test cases
        '<testsuites><testsuite name="s" tests="x" failures="0" errors="0"/></testsuites>',  # count not a number
        '<testsuites><testsuite name="s" tests="-1" failures="0" errors="0"/></testsuites>',  # negative count
    ],
)
def test_the_schema_rejects_what_ci_readers_reject(bad):
    with pytest.raises(AssertionError, match="does not validate"):
        check_structure(ET.fromstring(bad))
