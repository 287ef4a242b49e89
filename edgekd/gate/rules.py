"""Gate rules: pass/fail on the latency budget, the accuracy drop and export parity.

The latency rule uses the best evidence available for the target: a measurement on the device,
a host measurement when the host *is* the target, otherwise the latency model's prediction —
and says which.
"""

from __future__ import annotations

from edgekd.config.target_profile import TargetProfile

EVIDENCE_RANK = {"measured-device": 0, "measured-host": 1, "predicted": 2}


def _rule(name: str, value: float, limit: float, passed: bool, evidence: str, detail: str) -> dict:
    return {"name": name, "value": round(value, 4), "limit": limit, "passed": bool(passed),
            "evidence": evidence, "detail": detail}  # fmt: skip


def best_latency(entries: list[dict], profile: TargetProfile, precision: str, stat: str) -> dict | None:
    """The latency entry the gate trusts for this target (host figures only for a local target)."""
    usable = [
        e for e in entries
        if e["precision"] == precision
        and (e["evidence"] != "measured-host" or profile.measured_locally)
        and e["evidence"] != "measured-emulated"
        and (e["stat"] == stat or e["evidence"] == "predicted")
    ]  # fmt: skip
    primary = f"student-{profile.primary.format}-{profile.primary.precision}"
    usable = [e for e in usable if e["evidence"] == "predicted" or e.get("artifact", "").startswith(primary)]
    return min(usable, key=lambda e: EVIDENCE_RANK[e["evidence"]], default=None)


def evaluate_gate(report: dict, profile: TargetProfile, max_accuracy_drop: float | None = None) -> dict:
    """Evaluate the gate on an assembled report; returns {passed, rules}."""
    rules = []
    budget = report["budget_ms"]
    stat = profile.budget.stat
    entry = best_latency(report["student"]["latency"], profile, profile.primary.precision, stat)
    if entry is None:
        rules.append(_rule("latency", float("nan"), budget, False, "none", "no usable latency figure"))
    else:
        rules.append(_rule(
            "latency", entry["ms"], budget, entry["ms"] <= budget, entry["evidence"],
            f"{profile.primary.format} {profile.primary.precision} {entry['stat']}, {entry['threads']} thread(s), "
            f"{entry['runtime']}",
        ))  # fmt: skip
    limit = profile.budget.max_accuracy_drop if max_accuracy_drop is None else max_accuracy_drop
    teacher_acc = report["teacher"]["accuracy"]
    drop = 100.0 * (teacher_acc - report["student"]["accuracy"])
    rules.append(_rule("accuracy_drop", drop, limit, drop <= limit, "measured-host",
                       "PyTorch student vs teacher, top-1 points on the test split"))  # fmt: skip
    for art in report["artifacts"]:
        parity = art.get("parity")
        if not parity:
            continue
        a_drop = 100.0 * (teacher_acc - parity["accuracy"])
        if art.get("primary"):
            rules.append(_rule(f"accuracy_drop:{art['name']}", a_drop, limit, a_drop <= limit, "measured-host",
                               "deployed artifact in its runtime vs teacher, top-1 points"))  # fmt: skip
        p = profile.parity
        need = p.int8_min_agreement if art["precision"] == "int8" else p.fp32_min_agreement
        rules.append(_rule(f"parity:{art['name']}", parity["agreement"], need, parity["agreement"] >= need,
                           "measured-host", "top-1 agreement with PyTorch on the test split"))  # fmt: skip
    return {"passed": all(r["passed"] for r in rules), "rules": rules}
