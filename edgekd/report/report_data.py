"""report.json: a documented, versioned schema (see docs/report-schema.md).

Every latency figure is a :func:`latency_entry` carrying its evidence level, so a reader always
knows whether a number was measured on the device, under emulation, on the host, or predicted.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekd.core.errors import InputError
from edgekd.core.evidence import EVIDENCE_LEVELS

SCHEMA_VERSION = "1.0"


def latency_entry(
    ms: float,
    stat: str,
    evidence: str,
    runtime: str,
    precision: str,
    threads: int,
    artifact: str | None = None,
) -> dict:
    """One latency figure: value, statistic, where it came from and how it was run."""
    if evidence not in EVIDENCE_LEVELS:
        raise ValueError(f"evidence '{evidence}' not one of {EVIDENCE_LEVELS}")
    entry = {"ms": round(float(ms), 4), "stat": stat, "evidence": evidence, "runtime": runtime,
             "precision": precision, "threads": threads}  # fmt: skip
    if artifact is not None:
        entry["artifact"] = artifact
    return entry


def load_report(path: Path) -> dict:
    """Read a report.json, refusing other schema versions with an upgrade message."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable report.json ({exc})") from exc
    version = report.get("schema_version") if isinstance(report, dict) else None
    if version != SCHEMA_VERSION:
        raise InputError(
            f"{path} has report schema {version!r}, this edgekd reads {SCHEMA_VERSION!r}; "
            "re-run `edgekd build` to regenerate it"
        )
    return report
