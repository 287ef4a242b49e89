"""``edgekd targets list|show|schema``."""

from __future__ import annotations

import json

import click


@click.group()
def targets() -> None:
    """List and inspect target profiles (targets/*.yaml).

    \b
    Example:
      edgekd targets list
      edgekd targets show cortex-a76
    """


@targets.command("list")
def list_targets() -> int:
    """Every profile with its export formats, default budget and how a device is reached.

    \b
    Example:
      edgekd targets list
    """
    from rich.console import Console
    from rich.table import Table

    from edgekd.config.targets import load_all

    table = Table("target", "arch", "cores x GHz", "exports (first = deployed)", "budget", "runner")
    for p in load_all():
        exports = ", ".join(f"{e.format} {e.precision}" for e in p.exports)
        budget = f"{p.budget.latency_ms:g} ms {p.budget.stat} @{p.budget.threads}t"
        table.add_row(p.name, p.arch, f"{p.cpu.cores} x {p.cpu.freq_ghz:g}", exports, budget, p.runner.kind)
    Console(width=140).print(table)
    return 0


@targets.command("show")
@click.argument("name")
def show(name: str) -> int:
    """Print one profile as YAML (validated).

    \b
    Example:
      edgekd targets show cortex-a76
    """
    import yaml

    from edgekd.config.targets import load_target

    click.echo(yaml.safe_dump(load_target(name).model_dump(mode="json"), sort_keys=False))
    return 0


@targets.command("schema")
def schema() -> int:
    """Print the JSON schema of a target profile.

    \b
    Example:
      edgekd targets schema > targets/schema.json
    """
    from edgekd.config.target_profile import TargetProfile

    click.echo(json.dumps(TargetProfile.model_json_schema(), indent=2))
    return 0
