"""JUnit XML of a gate evaluation, in the dialect Jenkins, GitLab and GitHub test reporters read.

One ``<testsuite>`` inside ``<testsuites>``; one ``<testcase>`` per rule (``classname`` =
``edgekd.gate.<target>``, ``name`` = the rule's name). A failed rule has ``<failure message=...>``,
a not-evaluated rule ``<skipped message=...>``; every test case carries value, limit and evidence in
``<system-out>``. The structure follows the Jenkins JUnit schema (junit-10.xsd): ``testsuite`` has
``name``, ``tests``, ``failures``, ``errors``, ``skipped``, ``time`` and an ISO 8601 ``timestamp``
without a zone; ``testcase`` children come in the order ``skipped``, ``failure``, ``system-out``.
The tests validate every document against ``tests/gate/junit-10-strict.xsd`` (a stricter reading of
that schema; its header says where it comes from).

Example:
    >>> xml = junit_xml(evaluation, report_name="build/x86-64-host/report.json")  # doctest: +SKIP
    >>> write_junit(evaluation, Path("gate.xml"), report_name="report.json")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import InputError
from edgekd.gate.metrics import RuleResult, format_number
from edgekd.gate.rules import GateEvaluation

# Characters XML 1.0 cannot carry (C0 controls other than tab, LF, CR; surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def _testcase(rule: RuleResult, classname: str) -> ET.Element:
    case = ET.Element("testcase", {"classname": classname, "name": _clean(rule.name), "time": "0.000"})
    if rule.status == "not-evaluated":
        ET.SubElement(case, "skipped", {"message": _clean(f"not evaluated: {rule.detail}")})
    elif rule.status == "failed":
        failure = ET.SubElement(case, "failure", {"message": _clean(rule.message), "type": "GateRuleFailed"})
        failure.text = _clean(rule.detail)
    out = ET.SubElement(case, "system-out")
    value, limit = format_number(rule.value, rule.unit), format_number(rule.limit, rule.unit)
    out.text = _clean(f"value: {value}\nlimit: {rule.op} {limit}\nevidence: {rule.evidence}\ndetail: {rule.detail}\n")
    return case


def junit_xml(evaluation: GateEvaluation, report_name: str, timestamp: float | None = None) -> str:
    """The evaluation as a JUnit XML document (UTF-8 text with an XML declaration).

    Args:
        evaluation: the gate's rule results.
        report_name: what was gated (a path), recorded as a suite property.
        timestamp: seconds since the epoch for the suite's ``timestamp`` (default: now).
    """
    rules = evaluation.rules
    counts = {"tests": str(len(rules)), "failures": str(len(evaluation.failed)), "errors": "0"}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if timestamp is None else timestamp))
    root = ET.Element("testsuites", {"name": "edgekd gate", **counts, "time": "0.000"})
    suite = ET.SubElement(root, "testsuite", {"name": f"edgekd gate {evaluation.target}", **counts,
                                              "skipped": str(len(evaluation.not_evaluated)), "time": "0.000",
                                              "timestamp": stamp})  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for name, value in (("report", report_name), ("target", evaluation.target), ("stat", evaluation.stat),
                        ("passed", str(evaluation.passed).lower())):  # fmt: skip
        ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    classname = f"edgekd.gate.{evaluation.target}"
    suite.extend(_testcase(rule, classname) for rule in rules)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(evaluation: GateEvaluation, path: Path, report_name: str) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically (parent directories created)."""
    try:
        atomic_write_text(Path(path), junit_xml(evaluation, report_name))
    except OSError as exc:
        raise InputError(f"cannot write JUnit XML to {path} ({exc.strerror})") from exc
    return Path(path)
