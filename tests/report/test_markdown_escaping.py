"""report.md renders user strings as text: no table broken by '|', no HTML, no code span, no extra line."""

from edgekd.report.markdown_renderer import md, render_markdown
from tests.report.report_fixture import validated_report

HOSTILE = "evil|<script>alert(1)</script>`x`[link](javascript:1)\nsecond line"


def test_md_escapes_each_special_character():
    out = md(HOSTILE)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert "\\|" in out and "\\`x\\`" in out and "\\[link\\]" in out
    assert "&lt;script&gt;" in out


def test_hostile_strings_do_not_break_the_report():
    report = validated_report()
    report["target"]["name"] = HOSTILE
    report["target"]["description"] = HOSTILE
    report["validation"]["warnings"].append(f"class '{HOSTILE}' drops 30 points")
    report["gate"]["rules"][0]["detail"] = HOSTILE
    report["artifacts"][0]["path"] = "out/" + HOSTILE
    text = render_markdown(report)
    assert "<script>" not in text and "second line" in text
    assert not any(line.startswith("second line") for line in text.splitlines())
    gate = text.split("## Gate", 1)[1].split("##", 1)[0]
    header = next(line for line in gate.splitlines() if line.startswith("| rule"))
    columns = header.count("|") - header.count("\\|")
    for row in (line for line in gate.splitlines() if line.startswith("| ")):
        assert row.count("|") - row.count("\\|") == columns, row
