"""JUnit XML: parses, one testcase per rule, counts match, and the structure the Jenkins JUnit schema
(junit-10.xsd, also what GitLab and GitHub reporters read) requires, checked by hand below."""

import re
import xml.etree.ElementTree as ET

import pytest

from edgekd.config.targets import load_target
from edgekd.gate.gate_config import GateRulesConfig, resolve_settings
from edgekd.gate.junit import junit_xml, write_junit
from edgekd.gate.metrics import RuleResult
from edgekd.gate.rules import GateEvaluation, evaluate
from tests.gate.report_factory import make_report

# The subset of junit-10.xsd we emit: allowed and required attributes, children in sequence order.
SCHEMA = {
    "testsuites": ({"name", "time", "tests", "failures", "disabled", "errors"}, set(), ["testsuite"]),
    "testsuite": (
        {"name", "tests", "failures", "errors", "time", "skipped"}
        | {"timestamp", "hostname", "id", "package", "disabled"},
        {"name", "tests"},
        ["properties", "testcase", "system-out", "system-err"],
    ),
    "properties": (set(), set(), ["property"]),
    "property": ({"name", "value"}, {"name", "value"}, []),
    "testcase": (
        {"name", "assertions", "time", "classname", "status"},
        {"name"},
        ["skipped", "error", "failure", "system-out", "system-err"],
    ),
    "skipped": ({"message"}, set(), []),
    "failure": ({"type", "message"}, set(), []),
    "error": ({"type", "message"}, set(), []),
    "system-out": (set(), set(), []),
    "system-err": (set(), set(), []),
}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?")
ISO8601_NO_ZONE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
SINGLE = {("testsuite", "properties"), ("testcase", "skipped"), ("testsuite", "system-out"),
          ("testsuite", "system-err")}  # fmt: skip


def check_structure(elem: ET.Element) -> None:
    allowed, required, order = SCHEMA[elem.tag]
    assert set(elem.attrib) <= allowed, (elem.tag, set(elem.attrib) - allowed)
    assert required <= set(elem.attrib), (elem.tag, required - set(elem.attrib))
    if "time" in elem.attrib:
        assert SUREFIRE_TIME.fullmatch(elem.attrib["time"]), elem.attrib["time"]
    if "timestamp" in elem.attrib:
        assert ISO8601_NO_ZONE.fullmatch(elem.attrib["timestamp"]), elem.attrib["timestamp"]
    for attr in ("tests", "failures", "errors", "skipped"):
        if attr in elem.attrib:
            assert elem.attrib[attr].isdigit(), (elem.tag, attr)
    positions = [order.index(child.tag) for child in elem]  # ValueError: a child not allowed here
    assert positions == sorted(positions), (elem.tag, [c.tag for c in elem])
    for tag in {c.tag for c in elem}:
        if (elem.tag, tag) in SINGLE:
            assert len(elem.findall(tag)) == 1, (elem.tag, tag)
    if not order:
        assert not list(elem)
    for child in elem:
        check_structure(child)


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


@pytest.mark.parametrize(
    "bad",
    [
        '<testsuites><testsuite tests="1"/></testsuites>',  # suite without name
        '<testsuites><testsuite name="s" tests="1" colour="red"/></testsuites>',  # undeclared attribute
        '<testsuites><testsuite name="s" tests="1" time="1.2.3"/></testsuites>',  # not SUREFIRE_TIME
        '<testsuites><testsuite name="s" tests="1" timestamp="2026-01-01T00:00:00Z"/></testsuites>',  # zone
        '<testsuites><testcase name="t"/></testsuites>',  # testcase outside a suite
        '<testsuites><testsuite name="s" tests="1"><testcase name="t"><failure/><skipped/></testcase>'
        "</testsuite></testsuites>",  # wrong child order
        '<testsuites><testsuite name="s" tests="1"><testcase name="t"><skipped/><skipped/></testcase>'
        "</testsuite></testsuites>",  # two skipped
        '<testsuites><testsuite name="s" tests="x"/></testsuites>',  # count not a number
    ],
)
def test_the_structure_check_rejects_what_ci_readers_reject(bad):
    with pytest.raises((AssertionError, ValueError, KeyError)):
        check_structure(ET.fromstring(bad))
