"""``edgekd gate REPORT_JSON``: pass/fail a build in CI, with a table, JSON or JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from edgekd.gate.rules import GateEvaluation

STATUS_STYLE = {
    "passed": ("PASS", "green"),
    "failed": ("FAIL", "bold red"),
    "not-evaluated": ("not evaluated", "yellow"),
}


def _print_table(evaluation: GateEvaluation, report_json: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from edgekd.gate.metrics import format_number

    table = Table(title=Text(f"edgekd gate: {report_json} ({evaluation.target}, latency {evaluation.stat})"))
    table.add_column("rule", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("evidence", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for r in evaluation.rules:
        label, style = STATUS_STYLE[r.status]
        table.add_row(Text(r.name), format_number(r.value, r.unit), f"{r.op} {format_number(r.limit, r.unit)}",
                      Text(label, style=style), Text(r.evidence), Text(r.detail))  # fmt: skip
    console = Console(width=160)
    console.print(table)
    skipped = f", {len(evaluation.not_evaluated)} not evaluated" if evaluation.not_evaluated else ""
    if evaluation.passed:
        console.print(Text.assemble(("gate passed", "green"), f" ({len(evaluation.rules)} rules{skipped})"))
    else:
        names = ", ".join(r.name for r in evaluation.failed)
        console.print(Text.assemble(("gate FAILED", "bold red"), f": {names} ({len(evaluation.rules)} rules{skipped})"))


@click.command()
@click.argument("report_json", type=click.Path(path_type=Path))
@click.option("--target", "-t", default=None, help="Target profile name or YAML path [default: the report's target].")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=None,
              help="Gate rules YAML (stat, strict, rules: {metric: limit}, baseline: {...}).")  # fmt: skip
@click.option("--stat", type=click.Choice(["p50", "p90", "p99"]), default=None,
              help="Latency percentile [default: rules file, else the profile's budget stat].")  # fmt: skip
@click.option("--budget-ms", type=float, default=None, help="Latency limit, ms [default: the report's budget].")
@click.option("--max-accuracy-drop", type=float, default=None, help="Top-1 points vs teacher [default: profile's].")
@click.option("--limit", "limits", multiple=True, metavar="METRIC=VALUE",
              help="Limit any metric (repeatable): latency, accuracy_drop, per_class_drop, ece, size, parity, "
                   "energy.")  # fmt: skip
@click.option("--baseline", "baseline_file", type=click.Path(path_type=Path), default=None,
              help="A previous build's report.json; latency, accuracy and size must not regress.")  # fmt: skip
@click.option("--max-regression", default=None, metavar="PCT",
              help="Allowed relative regression vs --baseline, e.g. 5% [default: 5%].")  # fmt: skip
@click.option("--max-accuracy-regression-points", type=float, default=None,
              help="Judge accuracy vs --baseline in absolute top-1 points instead of relative %.")  # fmt: skip
@click.option("--strict", is_flag=True, help="Rules the report has no data for fail the gate.")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path), default=None, help="Also write JUnit XML.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON instead of a table.")
def gate(report_json: Path, target: str | None, rules_file: Path | None, stat: str | None, budget_ms: float | None,
         max_accuracy_drop: float | None, limits: tuple[str, ...], baseline_file: Path | None,
         max_regression: str | None, max_accuracy_regression_points: float | None, strict: bool,
         junit_file: Path | None, as_json: bool) -> int:  # fmt: skip
    """Check REPORT_JSON (from `edgekd build`) against the target's budgets and your limits.

    Latency uses the best evidence for the target: measured on the device, else measured on the
    host when the host is the target (runner: local), else predicted; never emulated. Rules whose
    data the report lacks (per-class accuracy, ECE, energy, a baseline figure at the same evidence
    level) are shown as "not evaluated" (JUnit: skipped) and do not fail the gate unless --strict.
    With --baseline, each comparison is a rule: latency (same evidence level and percentile) and
    size may grow, accuracy may fall, by at most --max-regression percent of the baseline; with
    --max-accuracy-regression-points accuracy may fall by that many top-1 points instead.

    Exit code 0 when the gate passes, 1 when it fails, 2 on bad input (missing or older report,
    bad rules file, unknown metric).

    \b
    Example:
      edgekd gate build/cortex-a76/report.json
      edgekd gate build/x86-64-host/report.json --stat p90 --limit size=2MB --junit gate.xml
      edgekd gate new/report.json --rules gate.yaml --baseline main/report.json --max-regression 5%
    """
    from edgekd.gate.gate_config import GateRulesConfig, apply_overrides, load_gate_config
    from edgekd.gate.junit import write_junit
    from edgekd.gate.report_gate import gate_report

    config = load_gate_config(rules_file) if rules_file is not None else GateRulesConfig()
    options = {
        "stat": stat,
        "strict": True if strict else None,
        "rules.latency": budget_ms,
        "rules.accuracy_drop": max_accuracy_drop,
        "baseline.max_regression": max_regression,
        "baseline.max_accuracy_regression_points": max_accuracy_regression_points,
    }
    config = apply_overrides(config, limits, options)
    evaluation = gate_report(report_json, config, target=target, baseline_path=baseline_file)
    if junit_file is not None:
        write_junit(evaluation, junit_file, report_name=str(report_json))
    if as_json:
        click.echo(json.dumps({"report": str(report_json), "baseline": str(baseline_file) if baseline_file else None,
                               **evaluation.to_json()}, indent=2))  # fmt: skip
    else:
        _print_table(evaluation, report_json)
    return evaluation.exit_code
