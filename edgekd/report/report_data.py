"""report.json: a documented, versioned schema (docs/report-schema.md, typed by :class:`BuildReport`).

Every latency figure is a :func:`latency_entry` carrying its evidence level, so a reader always
knows whether a number was measured on the device, under emulation, on the host, or predicted.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from edgekd.config.loading import MAX_JSON_BYTES, format_validation_error
from edgekd.core.errors import InputError
from edgekd.core.evidence import EVIDENCE_LEVELS
from edgekd.report.build_report import SCHEMA_VERSION, BuildReport


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


def read_json_file(path: Path, what: str = "report.json") -> object:
    """Parse a JSON file, with a one-line error for a missing, binary, non-UTF-8 or non-JSON file."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"{path} is not a readable {what} ({exc.strerror or exc}); pass the file `edgekd build` wrote"
        ) from exc
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(
            f"{path} is not a {what}: larger than {MAX_JSON_BYTES >> 20} MiB; pass the file `edgekd build` wrote"
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise InputError(f"{path} is not a {what}: nested too deeply; pass the file `edgekd build` wrote") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not a {what}: not UTF-8 text (byte {exc.start}); pass the file `edgekd build` wrote"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not a {what}: not JSON ({exc.msg}, line {exc.lineno}); pass the file `edgekd build` wrote"
        ) from exc


def validate_report(report: object, source: str) -> dict:
    """``report`` checked against :class:`BuildReport`; returns it as a plain dict, as written.

    Another ``schema_version`` gets the upgrade message; any other mismatch a one-line error naming the field.
    """
    version = report.get("schema_version") if isinstance(report, dict) else None
    if version != SCHEMA_VERSION:
        raise InputError(
            f"{source} has report schema {version!r}, this edgekd reads {SCHEMA_VERSION!r}; "
            "re-run `edgekd build` to regenerate it"
        )
    try:
        return BuildReport.model_validate(report).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        message = format_validation_error(exc, BuildReport, source)
        raise InputError(f"{message}; re-run `edgekd build` to regenerate it") from exc


def load_report(path: Path) -> dict:
    """Read and validate a report.json (see :class:`~edgekd.report.build_report.BuildReport`)."""
    return validate_report(read_json_file(path), str(path))
