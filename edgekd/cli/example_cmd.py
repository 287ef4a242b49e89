"""``edgekd example make-data|train-teacher``: rebuild the bundled example from its sources."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def example() -> None:
    """Reproduce the bundled example dataset and teacher.

    \b
    Example:
      edgekd example make-data
      edgekd example train-teacher --epochs 6 --seed 0
    """


@example.command("make-data")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="[default: calibration_data/fashion-mnist]")
@click.option("--seed", type=int, default=0, show_default=True)
def make_data(out: Path | None, seed: int) -> int:
    """Draw the class-balanced Fashion-MNIST subset from Debian's dataset-fashion-mnist.

    \b
    Example:
      edgekd example make-data --out /tmp/fmnist
    """
    from edgekd.data.bundled import EXAMPLE_DATASET
    from edgekd.data.fashion_mnist_subset import make_subset

    path = make_subset(out or EXAMPLE_DATASET.parent, seed=seed)
    click.echo(f"wrote {path} and {path.parent / 'MANIFEST.json'}")
    return 0


@example.command("train-teacher")
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="[default: edgekd/models/weights]")
def train_teacher(epochs: int, seed: int, out: Path | None) -> int:
    """Train the bundled example teacher on the bundled data (about 35 min on 2 cores).

    \b
    Example:
      edgekd example train-teacher --epochs 6 --seed 0 --out /tmp/teacher
    """
    from edgekd.cli.progress_rich import RichProgress
    from edgekd.distill.teacher_training import train_example_teacher
    from edgekd.distill.trainer import TrainSettings
    from edgekd.models.example_weights import TEACHER_DIR

    settings = TrainSettings(epochs=epochs, lr=2e-3, batch_size=128, seed=seed, augment=True)
    card = train_example_teacher(out or TEACHER_DIR, settings, RichProgress())
    click.echo(f"teacher test accuracy {card['test_accuracy']:.4f}; wrote {(out or TEACHER_DIR)}")
    return 0
