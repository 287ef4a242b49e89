"""Write report.json, report.md and report.html atomically into the build folder."""

from __future__ import annotations

import json
from pathlib import Path

from edgekd.core.atomic import atomic_write_text
from edgekd.report.html_renderer import render_html
from edgekd.report.markdown_renderer import render_markdown
from edgekd.report.report_data import validate_report


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else str(value)


def write_report(report: dict, out_dir: Path) -> Path:
    """Write ``report.json``, ``report.md`` and the self-contained ``report.html``; return the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # numpy scalars become plain numbers; the file holds exactly what BuildReport allows
    plain = json.loads(json.dumps(report, default=_plain))
    report = validate_report(plain, "report.json being written")
    path = atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out_dir / "report.md", render_markdown(report))
    atomic_write_text(out_dir / "report.html", render_html(report))
    return path
