"""``edgekd distill``: distil one student with chosen losses, optionally a sweep and a teacher-assistant chain."""

from __future__ import annotations

from pathlib import Path

import click


def _loss_weights(items: tuple[str, ...]) -> dict[str, float]:
    from edgekd.core.errors import ConfigError

    weights: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError as exc:
            raise ConfigError(f"--loss '{item}' is not NAME=WEIGHT (e.g. --loss kd=1 --loss hint=0.5)") from exc
    return weights


@click.command()
@click.option(
    "--student",
    "student_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Pruned student file (edgekd student.pt) to distil.",
)
@click.option("--ratio", type=float, default=None, help="Or: prune the teacher by this ratio to get the student.")
@click.option("--teacher", "teacher_factory", default=None, help="Teacher factory 'module:function' [bundled].")
@click.option("--teacher-weights", type=click.Path(path_type=Path), default=None, help="Teacher state dict.")
@click.option(
    "--extra-teacher",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Another teacher (student.pt or state dict of --teacher) for multi-teacher KD; repeatable.",
)
@click.option("--data", type=click.Path(path_type=Path), default=None, help=".npz, image folder or .csv [bundled].")
@click.option("--input-size", type=int, default=None, help="Model input size in pixels (square) [the images'].")
@click.option("--preprocess", "preset", type=click.Choice(["imagenet", "tf", "none"]), default=None,
              help="Normalisation preset: imagenet mean/std, tf = [-1, 1], none = [0, 1].")  # fmt: skip
@click.option("--transfer", type=click.Path(path_type=Path), default=None,
              help="Folder of unlabeled images, distilled from the teacher's outputs alone.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True, help="auto | cpu | cuda[:N].")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML with a DistillConfig (the `distill:` section of a build config); options override it.",
)
@click.option("--loss", "losses", multiple=True, help="NAME=WEIGHT, repeatable: kd, hint, at, rkd, spkd, multi.")
@click.option("--weight-ce", type=float, default=None, help="Weight of plain cross-entropy [0].")
@click.option(
    "--hint-layer",
    "hint_layers",
    multiple=True,
    help="TEACHER_PATH:STUDENT_PATH for feature losses; repeatable [paired by relative depth].",
)
@click.option("--temperature", type=float, default=None, help="KD temperature [4].")
@click.option("--alpha", type=float, default=None, help="KD weight of soft vs hard targets, in [0, 1] [0.7].")
@click.option("--epochs", type=int, default=None, help="[1]")
@click.option("--lr", type=float, default=None, help="AdamW learning rate [1e-3].")
@click.option("--max-train-samples", type=int, default=None, help="Distil on N training images (class-stratified).")
@click.option("--seed", type=int, default=None)
@click.option("--sweep", "sweeps", multiple=True, help="NAME=V1,V2,...: train the grid, keep the best by val accuracy.")
@click.option("--sweep-epochs", type=int, default=1, show_default=True, help="Epochs per sweep point.")
@click.option("--assistant", default=None, help="Teacher-assistant chain: 'auto' or the assistant's prune ratio.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUT/checkpoints.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("distill"), show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option(
    "--dist-backend",
    type=click.Choice(["auto", "gloo", "nccl"]),
    default="auto",
    show_default=True,
    help="Under torchrun: torch.distributed backend (auto = nccl with CUDA, else gloo).",
)
def distill(
    student_path: Path | None, ratio: float | None, teacher_factory: str | None, teacher_weights: Path | None,
    extra_teacher: tuple[Path, ...], data: Path | None, input_size: int | None, preset: str | None,
    transfer: Path | None, device: str, config_file: Path | None, losses: tuple[str, ...],
    weight_ce: float | None, hint_layers: tuple[str, ...], temperature: float | None, alpha: float | None,
    epochs: int | None, lr: float | None, max_train_samples: int | None, seed: int | None, sweeps: tuple[str, ...],
    sweep_epochs: int, assistant: str | None, resume: bool, out_dir: Path, no_progress: bool, dist_backend: str,
) -> int:  # fmt: skip
    """Distil a pruned student from the teacher; writes OUT/student.pt, distill.json (and sweep.json).

    Exit code 0 on success, 2 on bad input or config, 3 when the process group cannot form.
    Launched by torchrun it trains data-parallel (DDP); only rank 0 prints and writes.

    \b
    Example:
      edgekd distill --ratio 0.7 --loss kd=1 --loss hint=0.5 --epochs 3
      edgekd distill --student student.pt --sweep temperature=1,2,4,8 --sweep alpha=0.3,0.5,0.7
      edgekd distill --ratio 0.9 --assistant auto --epochs 2
      torchrun --standalone --nproc-per-node 2 -m edgekd distill --ratio 0.7 --epochs 3
    """
    import logging

    from pydantic import ValidationError

    from edgekd.cli.progress_rich import RichProgress
    from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
    from edgekd.config.loading import format_validation_error, load_model
    from edgekd.config.preprocess import PreprocessConfig
    from edgekd.core.errors import ConfigError
    from edgekd.core.progress import NULL_PROGRESS
    from edgekd.distill.distill_job import DistillJob, run_job
    from edgekd.distill.distributed import session
    from edgekd.distill.sweep import parse_sweep

    values = load_model(config_file, DistillConfig).model_dump(exclude_unset=True) if config_file else {}
    options = {"temperature": temperature, "alpha": alpha, "epochs": epochs, "lr": lr, "weight_ce": weight_ce,
               "max_train_samples": max_train_samples, "seed": seed, "assistant": assistant}  # fmt: skip
    values.update({k: v for k, v in options.items() if v is not None})
    if assistant not in (None, "auto"):
        try:
            values["assistant"] = float(assistant)
        except ValueError as exc:
            raise ConfigError(f"--assistant must be 'auto' or a prune ratio in (0, 1) (got '{assistant}')") from exc
    if losses:
        values["losses"] = _loss_weights(losses)
    if hint_layers:
        pairs = [tuple(item.split(":", 1)) for item in hint_layers]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError("--hint-layer must be TEACHER_PATH:STUDENT_PATH (e.g. stages.2:stages.2)")
        values["hint_layers"] = pairs
    if extra_teacher:
        factory = teacher_factory or EXAMPLE_FACTORY
        values["teachers"] = [{"weights": p, "factory": factory} for p in extra_teacher]
    if resume:
        values["resume"] = True
    try:
        cfg = DistillConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, DistillConfig, "distill option")) from exc
    declared = {k: v for k, v in {"input_size": input_size, "preset": preset}.items() if v is not None}
    job = DistillJob(cfg, out_dir, student_path, ratio, teacher_factory or EXAMPLE_FACTORY, teacher_weights, data,
                     parse_sweep(sweeps), sweep_epochs, PreprocessConfig(**declared), transfer, device)  # fmt: skip
    with session(dist_backend) as dist:
        if not dist.is_main:  # the other ranks train quietly; rank 0 reports
            logging.getLogger("edgekd").setLevel(logging.ERROR)
        outcome = run_job(job, NULL_PROGRESS if no_progress or not dist.is_main else RichProgress())
    if not dist.is_main:
        return 0
    r = outcome.record
    if outcome.sweep is not None:
        best = outcome.sweep.best
        click.echo(f"sweep: {len(outcome.sweep.points)} points, best {best.values} (val acc {best.val_accuracy:.4f}); "
                   f"all points in {out_dir / 'sweep.json'}")  # fmt: skip
    click.echo(f"student: val acc {r['best_val_accuracy']:.4f} (before {r['initial_val_accuracy']:.4f}), "
               f"test acc {r['test_accuracy']:.4f}; wrote {outcome.student_path}, distill.json")  # fmt: skip
    return 0
