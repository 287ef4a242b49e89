"""Best evidence for a target: which latency or energy figure of a report the gate trusts.

Order: ``measured-device`` > ``measured-host`` (only when the target's runner is ``local``, i.e. the
host *is* the target) > ``predicted``. ``measured-emulated`` is never used: emulation proves the
Arm kernels run, not how fast.

Example:
    >>> entries = [{"ms": 4.0, "stat": "p50", "evidence": "measured-host", "precision": "fp32",
    ...             "artifact": "student-onnx-fp32.onnx"},
    ...            {"ms": 6.0, "stat": "p50", "evidence": "predicted", "precision": "fp32"}]
    >>> best_latency(entries, "student-onnx-fp32", "fp32", "p50", host_is_target=False)["evidence"]
    'predicted'
"""

from __future__ import annotations

from edgekd.core.evidence import Evidence

#: Levels the gate may use, best first (``measured-emulated`` is never one).
EVIDENCE_RANK = {Evidence.MEASURED_DEVICE: 0, Evidence.MEASURED_HOST: 1, Evidence.PREDICTED: 2}


def usable_evidence(host_is_target: bool) -> tuple[str, ...]:
    """Evidence levels the gate may use, best first."""
    return tuple(e for e in EVIDENCE_RANK if e is not Evidence.MEASURED_HOST or host_is_target)


def latency_candidates(entries: list[dict], primary: str, precision: str, stat: str) -> list[dict]:
    """Entries describing the deployed artifact at ``stat``, any evidence level.

    Measured entries must name the primary artifact (``artifact`` starting with ``primary``, e.g.
    ``student-onnx-int8``) and carry ``stat``. Predicted entries come from the latency model, which
    gives one figure per precision (labelled ``p50``); it stands in for any percentile.
    """
    return [
        e for e in entries
        if e.get("precision") == precision
        and (e.get("evidence") == Evidence.PREDICTED
             or (e.get("stat") == stat and str(e.get("artifact", "")).startswith(primary)))
    ]  # fmt: skip


def best_entry(candidates: list[dict], host_is_target: bool) -> dict | None:
    """The candidate with the best usable evidence level, or None."""
    allowed = usable_evidence(host_is_target)
    usable = [e for e in candidates if e.get("evidence") in allowed]
    return min(usable, key=lambda e: EVIDENCE_RANK[e["evidence"]], default=None)


def best_latency(entries: list[dict], primary: str, precision: str, stat: str, host_is_target: bool) -> dict | None:
    """The latency entry the gate trusts for this target, or None when no usable figure exists."""
    return best_entry(latency_candidates(entries, primary, precision, stat), host_is_target)


def entry_at_level(entries: list[dict], primary: str, precision: str, stat: str, evidence: str) -> dict | None:
    """The latency entry of the deployed artifact at exactly ``evidence`` (for baseline comparisons)."""
    return next((e for e in latency_candidates(entries, primary, precision, stat) if e["evidence"] == evidence), None)


def best_energy(entries: list[dict], precision: str, host_is_target: bool) -> dict | None:
    """The energy entry (``{mj, evidence, precision?, ...}``) the gate trusts, or None.

    Entries naming a different precision than the deployed artifact's are ignored.
    """
    candidates = [e for e in entries if e.get("precision", precision) == precision and "mj" in e]
    return best_entry(candidates, host_is_target)


def primary_identity(report: dict) -> tuple[str, str, str]:
    """``(format, precision, artifact name prefix)`` of the report's deployed (primary) artifact."""
    fmt, precision = report["budget"]["format"], report["budget"]["precision"]
    return fmt, precision, f"student-{fmt}-{precision}"


def primary_artifact(report: dict) -> dict | None:
    """The artifact marked ``primary`` (else the first), or None when the report has none."""
    artifacts = report.get("artifacts") or []
    return next((a for a in artifacts if a.get("primary")), artifacts[0] if artifacts else None)


def deployed_latency(report: dict, stat: str, host_is_target: bool) -> dict | None:
    """The best-evidence latency entry of the report's deployed artifact at ``stat``."""
    _, precision, primary = primary_identity(report)
    return best_latency(report["student"]["latency"], primary, precision, stat, host_is_target)
