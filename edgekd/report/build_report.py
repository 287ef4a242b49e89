"""``BuildReport``: the typed contract of ``report.json`` (schema 1.0, described in docs/report-schema.md).

The build writes report.json through this model and every reader (``edgekd gate``, the baseline, the
renderers via :func:`~edgekd.report.report_data.load_report`) validates it on read, so a report whose
latency is ``"fast"`` is refused with the field named instead of passing the gate.

What the gate and the renderers read is typed and closed (``extra="forbid"``): the top level, the target,
the budget, latency entries. Sections that carry open-ended detail (a model's facts, an artifact's
parity and bench records, ``validation``) type the fields that are read and keep any others, so adding
a detail to a section does not break older readers.

The JSON schema is generated from this model and committed as ``docs/report.schema.json``::

    python -m edgekd.report.build_report            # rewrites docs/report.schema.json

Example:
    >>> entry = LatencyEntry(ms=4.2, stat="p50", evidence="measured-host", runtime="onnxruntime",
    ...                      precision="fp32", threads=1)
    >>> entry.evidence is Evidence.MEASURED_HOST
    True
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edgekd.core.atomic import atomic_write_text
from edgekd.core.evidence import Evidence

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "python -m edgekd.report.build_report"

# Numbers are strict: a string such as "5" or "fast" where a figure belongs is an error, not coerced.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Stat = Literal["p50", "p90", "p99"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class LatencyEntry(_Closed):
    """One latency figure and where it came from."""

    ms: NonNegative
    stat: Stat
    evidence: Evidence
    runtime: str
    precision: str
    threads: Count
    artifact: str | None = None


class EnergyEntry(_Open):
    """Energy of one inference (millijoules) at an evidence level; see docs/report-schema.md."""

    mj: NonNegative
    evidence: Evidence
    basis: Literal["measured", "estimated"] | None = None
    precision: str | None = None


class TargetInfo(_Closed):
    name: str
    description: str = ""
    arch: str
    runner: str
    measured_locally: bool


class BudgetInfo(_Closed):
    stat: Stat
    threads: Count
    precision: str
    format: str
    max_accuracy_drop: NonNegative


class DatasetInfo(_Open):
    name: str
    source: str | None = None
    digest: str | None = None
    splits: dict[str, Count] | None = None
    classes: list[str] = []


class ModelInfo(_Open):
    """The teacher or the student: size, accuracy, latency and energy figures, validation results."""

    params: Count
    macs: Count | None = None
    size_bytes: Count | None = None
    accuracy: Fraction
    latency: list[LatencyEntry] = []
    energy: list[EnergyEntry] = []
    per_class_accuracy: dict[str, Fraction] | None = None
    ece: NonNegative | None = None
    ece_calibrated: NonNegative | None = None
    temperature: NonNegative | None = None
    prune: dict[str, Any] | None = None
    distill: dict[str, Any] | None = None
    checkpoint: str | None = None


class Parity(_Open):
    """An artifact in its runtime against PyTorch on the test split."""

    agreement: Fraction
    max_abs_diff: NonNegative | None = None
    mean_abs_diff: NonNegative | None = None
    accuracy: Fraction | None = None
    reference_accuracy: Fraction | None = None
    samples: Count | None = None


class ArtifactInfo(_Open):
    """One exported artifact; the first (``primary``) is the deployed one."""

    name: str
    path: str
    format: str
    precision: str
    sha256: str
    size_bytes: Count
    primary: bool = False
    parity: Parity | None = None
    arm_parity: dict[str, Any] | None = None
    latency: list[LatencyEntry] = []
    bench: dict[str, Any] = {}
    device_bench: dict[str, Any] | None = None  # the profile's runner on the target, when it was reachable
    quantization: dict[str, Any] | None = None
    temperature: NonNegative | None = None


class GateRuleRecord(_Open):
    name: str
    passed: bool | None = None
    evidence: str | None = None


class GateSection(_Open):
    passed: bool
    rules: list[GateRuleRecord] = []


class StageRun(_Closed):
    """How one cached stage was served in this run; ``computed_seconds`` is the original compute time."""

    name: str
    status: Literal["computed", "reused"]
    seconds: NonNegative
    computed_seconds: NonNegative | None = None


class BuildReport(_Closed):
    """The whole report.json."""

    schema_version: Literal["1.0"]
    edgekd_version: str
    created: str
    summary: str = ""
    target: TargetInfo
    budget_ms: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    budget: BudgetInfo
    machine: dict[str, Any] = {}
    preprocess: dict[str, Any] | None = None  # the declared preprocessing the teacher and every artifact use
    dataset: DatasetInfo
    teacher: ModelInfo
    student: ModelInfo
    artifacts: list[ArtifactInfo]
    int8_vs_fp32: list[dict[str, Any]] | dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    prune_sweep: dict[str, Any] | None = None
    gate: GateSection | None = None
    lineage: dict[str, Any] = {}
    timings_s: dict[str, Number] = {}
    stages: list[StageRun] = []


def report_schema() -> dict:
    """The JSON schema (draft 2020-12) of report.json."""
    return {"$schema": JSON_SCHEMA_DIALECT, **BuildReport.model_json_schema()}


def render_schema() -> str:
    """The schema as the exact text committed in ``docs/report.schema.json``."""
    return json.dumps(report_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print(f"usage: {REGENERATE} [OUT.json]", file=sys.stderr)
        return 2
    out = atomic_write_text(Path(args[0]) if args else SCHEMA_PATH, render_schema())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
