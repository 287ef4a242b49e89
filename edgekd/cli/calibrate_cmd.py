"""``edgekd calibrate-latency --target NAME``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("calibrate-latency")
@click.option("--target", "-t", required=True, help="Target profile (its runner must reach the device).")
@click.option("--threads", type=int, default=None, help="[default: the profile's budget threads]")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs per micro-model.")
@click.option("--stat", type=click.Choice(["p50", "min"]), default="p50", show_default=True,
              help="Statistic fitted; min suits a machine busy with other work.")  # fmt: skip
@click.option("--precision", "precisions", type=click.Choice(["fp32", "int8"]), multiple=True,
              help="Precision to fit (repeatable) [default: those of the profile's ONNX exports].")  # fmt: skip
@click.option("--from-measurements", "from_measurements", is_flag=True,
              help="Fit an Arm profile's constants to published device figures (no device needed).")  # fmt: skip
@click.option("--measurements", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of published figures [default: targets/measurements/NAME.csv].")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="With --from-measurements: report the fit, do not write the profile.")
def calibrate_latency(target: str, threads: int | None, runs: int, stat: str, precisions: tuple[str, ...],
                      from_measurements: bool, measurements: Path | None, dry_run: bool) -> int:  # fmt: skip
    """Time micro-models on TARGET and fit its latency model; writes targets/NAME.calibration.json.

    With --from-measurements (Arm targets): fit the profile's few constants to the published
    device latencies in targets/measurements/NAME.csv, write them into targets/NAME.yaml
    (latency_fit: values, source, date) and report the leave-one-source-out error.

    Each precision (fp32; int8 as the ONNX exporter's QDQ model) gets its own efficiencies and
    per-operator overhead. Builds afterwards predict with the fitted figures and state the fit's
    error. Only targets whose device is reachable can be calibrated (today: local targets such as
    x86-64-host).

    \b
    Example:
      edgekd calibrate-latency --target x86-64-host
      edgekd calibrate-latency --target x86-64-host --precision int8
      edgekd calibrate-latency --target cortex-a76 --from-measurements
    """
    if from_measurements:
        return _from_measurements(target, measurements, dry_run)
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


def _from_measurements(target: str, measurements: Path | None, dry_run: bool) -> int:
    from edgekd.bench.latency_fit import calibrate_from_measurements, write_fit
    from edgekd.config.targets import TARGETS_DIR, load_target, profile_paths

    profile = load_target(target)
    yaml_path = Path(target) if Path(target).suffix in (".yaml", ".yml") else profile_paths()[profile.name]
    csv_path = measurements or TARGETS_DIR / "measurements" / f"{profile.name}.csv"
    fit, scored = calibrate_from_measurements(profile, csv_path)
    for row, predicted in scored:
        click.echo(
            f"  {row.model:<20} {row.precision} {row.threads}t {row.device[:28]:<28} "
            f"measured {row.ms:7.1f} ms  predicted {predicted:7.1f} ms  ratio {predicted / row.ms:5.2f}"
        )
    e = fit.error
    click.echo(
        f"{profile.name}: {e.n} measurements from {e.sources} sources, {e.method}: median predicted/measured "
        f"{e.median_ratio:.2f} (quartiles {e.p25_ratio:.2f}-{e.p75_ratio:.2f}), "
        f"{100 * e.within_10pct:.0f} % within ±10 %, {100 * e.within_25pct:.0f} % within ±25 %"
    )
    scales = ", ".join(f"{k} {v:.3g}" for k, v in fit.compute_scale.items())
    click.echo(
        f"fitted: compute scale {scales}; bandwidth x{fit.bandwidth_scale:.3g}; overhead x{fit.overhead_scale:.3g}"
    )
    if dry_run:
        return 0
    write_fit(yaml_path, fit)
    load_target(str(yaml_path))  # the written profile must still load
    click.echo(f"wrote latency_fit into {yaml_path}")
    return 0
