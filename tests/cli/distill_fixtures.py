"""Tiny models and data for `edgekd distill` tests (importable as factories 'tests.cli.distill_fixtures:...')."""

from pathlib import Path

import numpy as np
import torch

from edgekd.data.bundled import example_dataset
from edgekd.models.example_teacher import ResidualCNN


def tiny_teacher() -> ResidualCNN:
    return ResidualCNN((16, 32), blocks_per_stage=1)


def tiny_five_classes() -> ResidualCNN:
    return ResidualCNN((8, 16), blocks_per_stage=1, num_classes=5)


def write_tiny_data(path: Path, n_train: int = 192, n_eval: int = 64) -> Path:
    """The first images of the bundled Fashion-MNIST splits, as a small .npz."""
    d = example_dataset()
    np.savez(path, x_train=d.train.x[:n_train], y_train=d.train.y[:n_train], x_val=d.val.x[:n_eval],
             y_val=d.val.y[:n_eval], x_test=d.test.x[:n_eval], y_test=d.test.y[:n_eval],
             class_names=np.array(d.class_names))  # fmt: skip
    return path


def write_tiny_teacher(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.save(tiny_teacher().state_dict(), path)
    return path
