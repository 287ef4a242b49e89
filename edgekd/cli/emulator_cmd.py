"""``edgekd emulator setup [--force]`` and ``edgekd emulator status``."""

from __future__ import annotations

import json

import click


@click.group()
def emulator() -> None:
    """The Arm emulator (qemu user mode + an arm64 Python with LiteRT) used by `--runner qemu`.

    \b
    Example:
      edgekd emulator setup
      edgekd bench model.tflite --target cortex-a76 --runner qemu
    """


@emulator.command()
@click.option("--force", is_flag=True, help="Rebuild even if an up-to-date emulator exists.")
def setup(force: bool) -> int:
    """Build the arm64 root file system once (about a minute; nothing runs under emulation).

    Downloads arm64 Debian packages and aarch64 wheels (numpy, ai-edge-litert) into
    ~/.cache/edgekd/emulator/arm64 (or $EDGEKD_EMULATOR_DIR). Re-running it is instant.

    \b
    Example:
      edgekd emulator setup
    """
    from edgekd.bench.emulator_rootfs import setup as build
    from edgekd.cli.progress_rich import RichProgress

    result = build(force=force, progress=RichProgress())
    verb = "built" if result.built else "already up to date:"
    check = result.stamp.get("check", {})
    click.echo(f"Arm emulator {verb} {result.path} ({result.seconds:.1f} s); python {check.get('python', '?')}, "
               f"numpy {check.get('numpy', '?')}, ai-edge-litert {check.get('litert', '?')}")  # fmt: skip
    return 0


@emulator.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> int:
    """Say whether the emulator is set up and current; exit 3 if not.

    \b
    Example:
      edgekd emulator status
    """
    from edgekd.bench.emulator_rootfs import CPUS
    from edgekd.bench.emulator_rootfs import status as read_status

    state = read_status()
    if as_json:
        click.echo(json.dumps({"ready": state.ready, "path": str(state.path), "key": state.key,
                               "reason": state.reason, "cpus": sorted(CPUS)}, indent=2))  # fmt: skip
    elif state.ready:
        click.echo(f"Arm emulator ready: {state.path} (recipe {state.key}; cpus: {', '.join(sorted(CPUS))})")
    else:
        click.echo(f"Arm emulator not ready: {state.reason} ({state.path}); run `edgekd emulator setup`")
    return 0 if state.ready else 3
