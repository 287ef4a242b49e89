"""``edgekd calibrate-latency --target NAME``."""

from __future__ import annotations

import click


@click.command("calibrate-latency")
@click.option("--target", "-t", required=True, help="Target profile (its runner must reach the device).")
@click.option("--threads", type=int, default=None, help="[default: the profile's budget threads]")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs per micro-model.")
def calibrate_latency(target: str, threads: int | None, runs: int) -> int:
    """Time micro-models on TARGET and fit its latency model; writes targets/NAME.calibration.json.

    Builds afterwards predict with the fitted figures and state the fit's error. Only targets whose
    device is reachable can be calibrated (today: local targets such as x86-64-host).

    \b
    Example:
      edgekd calibrate-latency --target x86-64-host
    """
    from edgekd.bench.latency_calibration import calibrate, local_onnx_timer, write_calibration
    from edgekd.cli.progress_rich import RichProgress
    from edgekd.config.targets import load_target
    from edgekd.errors import RunnerError

    profile = load_target(target)
    if not profile.measured_locally:
        raise RunnerError(
            f"no runner reaches a {profile.name} device from here (runner '{profile.runner.kind}'); "
            "calibrate a local target, or on the device once its runner is available"
        )
    data = calibrate(profile, local_onnx_timer(runs), threads=threads or profile.budget.threads,
                     progress=RichProgress())  # fmt: skip
    path = write_calibration(data, profile)
    fp = data["precisions"]["fp32"]
    click.echo(f"wrote {path}: median error {fp['median_abs_error_pct']:.1f} %, "
               f"{100 * fp['within_10pct']:.0f} % of micro-models within 10 %")  # fmt: skip
    return 0
