"""``edgekd prune``: prune to a latency budget, or sweep pruning ratios (``--sweep``)."""

from __future__ import annotations

from pathlib import Path

import click


def _ratios(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of numbers, e.g. 0.1,0.3,0.5") from None


@click.command()
@click.option("--target", "-t", default=None, help="Target profile name or YAML path [default: cortex-a76].")
@click.option("--budget-ms", type=float, default=None, help="Latency budget in ms [default: the profile's].")
@click.option(
    "--ratio",
    "fixed_ratio",
    type=float,
    default=None,
    help="Prune this uniform ratio of channels, no budget search (e.g. 0.5).",
)
@click.option("--sweep", "do_sweep", is_flag=True, help="Sweep pruning ratios instead of meeting a budget.")
@click.option("--ratios", default=None, help="Sweep ratios, comma-separated [default: 0,0.2,0.4,0.5,...,0.8,0.85,0.9].")
@click.option("--steps", type=int, default=None, help="Sweep: fine-tune steps per point [default: 60].")
@click.option("--train-samples", type=int, default=None, help="Sweep: fine-tune images [default: 2048].")
@click.option("--eval-samples", type=int, default=None, help="Sweep: test images per point [default: 1000].")
@click.option("--importance", default=None, help="Importance criterion (l1, l2, groupnorm, bnscale, taylor).")
@click.option(
    "--refine/--no-refine",
    default=None,
    help="Budget: after the uniform ratio, refine per layer by predicted latency saved per output change "
    "[default: off; it lost accuracy on the bundled example, benchmarks/results/gap_diagnosis.md].",
)
@click.option("--no-measure", is_flag=True, help="Sweep: do not measure latency even on a local target.")
@click.option("--teacher", "teacher_factory", default=None, help="Teacher factory 'module:function'.")
@click.option("--teacher-weights", type=click.Path(path_type=Path), default=None, help="Teacher state dict.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help=".npz or image folder.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="[default: build/TARGET/prune]")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def prune(
    target: str | None,
    budget_ms: float | None,
    fixed_ratio: float | None,
    do_sweep: bool,
    ratios: str | None,
    steps: int | None,
    train_samples: int | None,
    eval_samples: int | None,
    importance: str | None,
    refine: bool | None,
    no_measure: bool,
    teacher_factory: str | None,
    teacher_weights: Path | None,
    data: Path | None,
    out_dir: Path | None,
    no_progress: bool,
) -> int:
    """Prune the teacher for TARGET: to a latency budget (writes student.pt + prune.json), or --sweep.

    The budget search bisects a uniform ratio on the target's latency model (with --refine it then
    refines per layer, removing channels where predicted latency saved per output change is highest).
    Exit code 1 when no plan meets the budget (the message gives the nearest achievable latency).

    --sweep prunes at each ratio, fine-tunes briefly with KD and records accuracy, params, MACs and
    predicted (and, on a local target, measured) latency; it marks the Pareto front, runs the
    capacity-cliff detector and writes sweep.json.

    \b
    Example:
      edgekd prune --target cortex-a76 --budget-ms 30
      edgekd prune --target x86-64-host --sweep --ratios 0.2,0.4,0.6
      edgekd prune --ratio 0.5 --teacher mymodels:resnet --teacher-weights teacher.pt --data d.npz
    """
    from edgekd.cli.progress_rich import RichProgress
    from edgekd.core.errors import ConfigError
    from edgekd.core.progress import NULL_PROGRESS
    from edgekd.data.validation import check_output_dir
    from edgekd.distill.prune_sweep import SweepSettings, format_table
    from edgekd.pipeline.inputs import make_config, resolve
    from edgekd.pipeline.prune_plan import PruneJob, prune_to_budget, sweep

    if fixed_ratio is not None and (do_sweep or budget_ms is not None):
        raise ConfigError("--ratio prunes at one fixed ratio: drop --sweep/--budget-ms, or drop --ratio")
    sweep_ratios = _ratios(ratios)
    if importance is not None:
        from edgekd.config.build_config import registered
        from edgekd.core.registry import IMPORTANCES

        try:
            registered(IMPORTANCES, importance)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--importance") from None
    if eval_samples is not None and eval_samples < 1:
        raise click.BadParameter(f"must be >= 1 (got {eval_samples})", param_hint="--eval-samples")
    given = {"ratios": sweep_ratios, "finetune_steps": steps, "train_samples": train_samples,
             "eval_samples": eval_samples}  # fmt: skip
    settings = SweepSettings(**{k: v for k, v in given.items() if v is not None})
    if out_dir is not None:
        check_output_dir(out_dir)
    values: dict = {k: v for k, v in {"target": target, "budget_ms": budget_ms, "data": data}.items() if v is not None}
    if teacher_factory or teacher_weights:
        values["teacher"] = {k: v for k, v in {"factory": teacher_factory, "weights": teacher_weights}.items() if v}
    inputs = resolve(make_config(**values))
    out = out_dir or inputs.out_dir / "prune"
    progress = NULL_PROGRESS if no_progress else RichProgress()
    job = PruneJob(importance=importance, refine=refine, measure=not no_measure)
    if fixed_ratio is not None:
        from edgekd.pipeline.ratio_plan import prune_at_ratio

        record = prune_at_ratio(inputs, out, job, fixed_ratio)
        whole = len(record["left_whole"])
        click.echo(f"pruned {record['ratio']:.3f} of channels: {record['params']:,} of {record['teacher_params']:,} "
                   f"params, {whole} layer(s) left whole (see prune.json)")  # fmt: skip
        if record["mac_check"]["warning"]:
            click.echo(f"warning: {record['mac_check']['warning']}")
        click.echo(f"wrote {out / 'student.pt'} and {out / 'prune.json'}")
        return 0
    if do_sweep:
        result = sweep(inputs, out, job, settings, progress)
        click.echo(format_table(result))
        click.echo(f"wrote {out / 'sweep.json'}")
        return 0
    record = prune_to_budget(inputs, out, job, progress)
    plan = (record.get("refinement") or {}).get("chosen", "uniform")
    click.echo(f"pruned {record['ratio']:.3f} of channels ({plan} plan): {record['predicted_ms']:.2f} ms predicted "
               f"for a {record['budget_ms']:g} ms budget on {record['target']}")  # fmt: skip
    click.echo(f"wrote {out / 'student.pt'} and {out / 'prune.json'}")
    return 0
