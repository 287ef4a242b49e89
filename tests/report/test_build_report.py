"""The typed report: the committed JSON schema is current, reports are validated on read and on write."""

import json

import jsonschema
import pytest

from edgekd.cli.main import main
from edgekd.core.errors import InputError
from edgekd.report.build_report import SCHEMA_PATH, BuildReport, render_schema, report_schema
from edgekd.report.report_data import load_report
from edgekd.report.writer import write_report as write_all
from tests.gate.report_factory import make_report, write_report
from tests.report.report_fixture import validated_report


def gate(capsys, *args) -> tuple[int, str]:
    code = main(["gate", *map(str, args)])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return code, err


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "docs/report.schema.json is stale: run `python -m edgekd.report.build_report`"
    )


@pytest.mark.parametrize(
    "report", [make_report(), make_report("cortex-a76", device=(3.0, 4.0, 5.0)), validated_report()]
)
def test_schema_and_model_accept_the_reports_the_gate_and_renderers_are_tested_with(report):
    plain = json.loads(json.dumps(report))
    jsonschema.validate(plain, report_schema())
    assert BuildReport.model_validate(plain).model_dump(mode="json", exclude_unset=True) == plain


def test_writer_round_trips_through_the_model(tmp_path):
    report = validated_report()
    path = write_all(report, tmp_path)
    assert load_report(path) == json.loads(json.dumps(report))


def test_writer_refuses_a_report_the_model_does_not_allow(tmp_path):
    report = make_report()
    report["student"]["latency"][0]["evidence"] = "guessed"
    with pytest.raises(InputError, match=r"student\.latency\.0\.evidence"):
        write_all(report, tmp_path)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        (("student", "latency", 0, "ms"), "fast", "student.latency.0.ms"),
        (("student", "latency", 0, "ms"), "4.0", "student.latency.0.ms"),  # no coercion of strings
        (("student", "accuracy"), 1.5, "student.accuracy"),
        (("budget", "stat"), "p42", "budget.stat"),
        (("budget_ms",), -3, "budget_ms"),
        (("target", "runnr"), "local", "target.runnr"),
        (("surprise",), 1, "surprise"),
    ],
)
def test_gate_refuses_a_report_that_does_not_validate_naming_the_field(capsys, tmp_path, field, value, named):
    report = make_report()
    node = report
    for part in field[:-1]:
        node = node[part]
    node[field[-1]] = value
    code, err = gate(capsys, write_report(tmp_path, report))
    assert code == 2 and f"'{named}'" in err


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "café".encode("latin-1"), b"{not json", b"", b"[1, 2]"],
    ids=["binary", "latin-1", "broken-json", "empty", "a-list"],
)
@pytest.mark.parametrize("which", ["report", "baseline"])
def test_garbage_report_or_baseline_is_one_line_exit_2(capsys, tmp_path, content, which):
    good = write_report(tmp_path, make_report(), "good.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    args = [bad] if which == "report" else [good, "--baseline", bad]
    code, err = gate(capsys, *args)
    assert code == 2 and str(bad) in err


def test_older_schema_version_gets_the_upgrade_message(capsys, tmp_path):
    report = make_report()
    report["schema_version"] = "0.9"
    code, err = gate(capsys, write_report(tmp_path, report))
    assert code == 2 and "'0.9'" in err and "re-run `edgekd build`" in err
