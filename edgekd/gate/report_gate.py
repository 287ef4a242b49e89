"""Gate a report.json file: load it, its target profile and an optional baseline, evaluate every rule.

Example:
    >>> evaluation = gate_report(Path("build/x86-64-host/report.json"), GateRulesConfig(stat="p90"))  # doctest: +SKIP
    >>> evaluation.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

from pathlib import Path

from edgekd.config.targets import load_target
from edgekd.core.errors import InputError
from edgekd.gate.baseline import baseline_rules
from edgekd.gate.gate_config import GateRulesConfig, resolve_settings
from edgekd.gate.rules import GateEvaluation, check_target, evaluate
from edgekd.report.report_data import load_report


def gate_report(
    report_path: Path,
    config: GateRulesConfig,
    target: str | None = None,
    baseline_path: Path | None = None,
) -> GateEvaluation:
    """Evaluate the gate on a report file.

    Args:
        report_path: a report.json of the current schema.
        config: rules file and command-line limits, merged.
        target: profile name or YAML path; default: the target the report names.
        baseline_path: a previous build's report.json to compare against (same target).

    Raises:
        InputError: unreadable report or baseline, another schema version (with the upgrade message),
            a report for another target, missing keys.
        ConfigError: unknown target or a bad profile.
    """
    report = load_report(report_path)
    baseline = load_report(baseline_path) if baseline_path is not None else None
    name = (report.get("target") or {}).get("name")
    if target is None and not isinstance(name, str):
        raise InputError(f"{report_path} lacks 'target.name'; re-run `edgekd build` to regenerate it")
    profile = load_target(target or name)
    check_target(report, profile)
    settings = resolve_settings(config, profile, report)
    evaluation = evaluate(report, profile, settings)
    if baseline is not None:
        evaluation = evaluation.extended(baseline_rules(report, baseline, profile, settings), settings.strict)
    return evaluation
