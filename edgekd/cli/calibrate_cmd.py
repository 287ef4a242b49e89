"""``edgekd calibrate-latency --target NAME``."""

from __future__ import annotations

import click


@click.command("calibrate-latency")
@click.option("--target", "-t", required=True, help="Target profile (its runner must reach the device).")
@click.option("--threads", type=int, default=None, help="[default: the profile's budget threads]")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs per micro-model.")
@click.option("--stat", type=click.Choice(["p50", "min"]), default="p50", show_default=True,
              help="Statistic fitted; min suits a machine busy with other work.")  # fmt: skip
@click.option("--precision", "precisions", type=click.Choice(["fp32", "int8"]), multiple=True,
              help="Precision to fit (repeatable) [default: those of the profile's ONNX exports].")  # fmt: skip
def calibrate_latency(target: str, threads: int | None, runs: int, stat: str, precisions: tuple[str, ...]) -> int:
    """Time micro-models on TARGET and fit its latency model; writes targets/NAME.calibration.json.

    Each precision (fp32; int8 as the ONNX exporter's QDQ model) gets its own efficiencies and
    per-operator overhead. Builds afterwards predict with the fitted figures and state the fit's
    error. Only targets whose device is reachable can be calibrated (today: local targets such as
    x86-64-host).

    \b
    Example:
      edgekd calibrate-latency --target x86-64-host
      edgekd calibrate-latency --target x86-64-host --precision int8
    """
    from edgekd.bench.latency_calibration import calibrate, local_onnx_timer, write_calibration
    from edgekd.cli.progress_rich import RichProgress
    from edgekd.config.targets import load_target
    from edgekd.core.errors import RunnerError

    profile = load_target(target)
    if not profile.measured_locally:
        raise RunnerError(
            f"no runner reaches a {profile.name} device from here (runner '{profile.runner.kind}'); "
            "calibrate a local target, or on the device once its runner is available"
        )
    chosen = precisions or tuple(dict.fromkeys(e.precision for e in profile.exports if e.format == "onnx")) or ("fp32",)
    timer = local_onnx_timer(runs, stat=stat)
    data = calibrate(profile, timer, chosen, threads or profile.budget.threads, progress=RichProgress())
    data["stat"] = stat
    path = write_calibration(data, profile)
    for precision, fitted in data["precisions"].items():
        click.echo(f"{precision}: median error {fitted['median_abs_error_pct']:.1f} %, "
                   f"{100 * fitted['within_10pct']:.0f} % of micro-models within 10 %")  # fmt: skip
    click.echo(f"wrote {path}")
    return 0
