"""``edgekd build``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--target", "-t", default=None, help="Target profile name or YAML path [default: cortex-a76].")
@click.option("--budget-ms", type=float, default=None, help="Latency budget in ms [default: the profile's].")
@click.option("--teacher", "teacher_factory", default=None, help="Teacher factory 'module:function'.")
@click.option("--teacher-weights", type=click.Path(path_type=Path), default=None, help="Teacher state dict.")
@click.option("--data", type=click.Path(path_type=Path), default=None, help=".npz, image folder or .csv index.")
@click.option("--input-size", type=int, default=None, help="Model input size in pixels (square) [the images'].")
@click.option("--preprocess", "preset", type=click.Choice(["imagenet", "tf", "none"]), default=None,
              help="Normalisation preset: imagenet mean/std, tf = [-1, 1], none = [0, 1].")  # fmt: skip
@click.option("--transfer", type=click.Path(path_type=Path), default=None,
              help="Folder of unlabeled images, distilled from the teacher's outputs alone.")  # fmt: skip
@click.option("--device", default=None, help="auto | cpu | cuda[:N] for teacher, distillation, validation [cpu].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="[default: build/TARGET]")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="BuildConfig YAML; command-line options override it.")  # fmt: skip
@click.option("--epochs", type=int, default=None, help="Distillation epochs [default: 1].")
@click.option("--max-train-samples", type=int, default=None, help="Distil on N training images (class-stratified).")
@click.option("--parity-samples", type=int, default=None, help="Check parity on N test images (class-stratified).")
@click.option(
    "--arm-parity-samples",
    type=int,
    default=None,
    help="Arm targets: test images run under Arm emulation (~1 s each) [default: 100; 0 = off].",
)
@click.option("--runs", type=int, default=None, help="Timed runs per artifact [default: 50].")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def build(
    target: str | None,
    budget_ms: float | None,
    teacher_factory: str | None,
    teacher_weights: Path | None,
    data: Path | None,
    input_size: int | None,
    preset: str | None,
    transfer: Path | None,
    device: str | None,
    out_dir: Path | None,
    config_file: Path | None,
    epochs: int | None,
    max_train_samples: int | None,
    parity_samples: int | None,
    arm_parity_samples: int | None,
    runs: int | None,
    no_progress: bool,
) -> int:
    """Prune, distil, export, benchmark and gate a student for TARGET within a latency budget.

    Exit code 0 when the gate passes, 1 when it fails (or the budget cannot be met), 2 on bad input,
    3 on a tool-chain failure. Re-running resumes from the last completed stage.

    \b
    Example:
      edgekd build --target cortex-a76 --budget-ms 30
      edgekd build --target x86-64-host --budget-ms 5 --teacher mymodels:resnet --teacher-weights t.pt --data d.npz
    """
    from edgekd.cli.progress_rich import RichProgress
    from edgekd.config.build_config import BuildConfig
    from edgekd.config.loading import load_model
    from edgekd.core.progress import NULL_PROGRESS
    from edgekd.pipeline.inputs import make_config
    from edgekd.pipeline.orchestrator import run_build

    values: dict = {}
    if config_file is not None:
        values = load_model(config_file, BuildConfig).model_dump(exclude_unset=True)
    overrides = {"target": target, "budget_ms": budget_ms, "data": data, "out_dir": out_dir, "transfer": transfer,
                 "device": device}  # fmt: skip
    values.update({k: v for k, v in overrides.items() if v is not None})
    if teacher_factory or teacher_weights:
        teacher = values.setdefault("teacher", {})
        if teacher_factory:
            teacher["factory"] = teacher_factory
        if teacher_weights:
            teacher["weights"] = teacher_weights
    options = (("distill", "epochs", epochs), ("distill", "max_train_samples", max_train_samples),
               ("export", "parity_samples", parity_samples), ("export", "arm_parity_samples", arm_parity_samples),
               ("bench", "runs", runs), ("preprocess", "input_size", input_size),
               ("preprocess", "preset", preset))  # fmt: skip
    for section, key, value in options:
        if value is not None:
            values.setdefault(section, {})[key] = value
    config = make_config(**values)
    outcome = run_build(config, NULL_PROGRESS if no_progress else RichProgress())
    reused = [s["name"] for s in outcome.report.get("stages", []) if s["status"] == "reused"]
    if reused:
        click.echo(f"resumed: reused {len(reused)} completed stage(s): {', '.join(dict.fromkeys(reused))}")
    click.echo(outcome.report.get("summary", ""))
    click.echo(f"report: {outcome.report_path} (and .md, .html)")
    return outcome.exit_code
