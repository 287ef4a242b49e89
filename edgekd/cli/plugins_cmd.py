"""``edgekd plugins``: what each registry holds (exporters, runners, losses, importance criteria)."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def plugins(as_json: bool) -> int:
    """List every registered exporter, runner, loss and importance criterion, built-in or from a plugin.

    Plugins are Python packages that declare entry points in the groups ``edgekd.exporters``,
    ``edgekd.runners``, ``edgekd.losses`` or ``edgekd.importances``; nothing is imported to list them.

    \b
    Example:
      edgekd plugins
      edgekd plugins --json
    """
    from edgekd.core.registry import ALL_REGISTRIES

    table = {r.kind: [{"name": n, "target": t, "source": s} for n, t, s in r.entries()] for r in ALL_REGISTRIES}
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return 0
    for kind, rows in table.items():
        click.echo(f"{kind} ({len(rows)}):")
        width = max((len(r["name"]) for r in rows), default=0)
        for r in rows:
            click.echo(f"  {r['name']:<{width}}  {r['target']}  [{r['source']}]")
    return 0
