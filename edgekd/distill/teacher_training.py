"""Reproducible training of the bundled example teacher (``edgekd example train-teacher``)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from edgekd import __version__
from edgekd.core.atomic import atomic_write_bytes, atomic_write_text
from edgekd.core.hashing import sha256_file
from edgekd.core.inference import accuracy, predict_logits
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.data.bundled import example_dataset
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_teacher import EXAMPLE_WIDTHS, example_teacher
from edgekd.models.example_weights import TEACHER_CARD, TEACHER_CHECKPOINT, TEACHER_DIR


def train_example_teacher(
    out_dir: Path = TEACHER_DIR,
    settings: TrainSettings | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict:
    """Train the example teacher on the bundled data; write its state dict and a model card."""
    settings = settings or TrainSettings(epochs=6, lr=2e-3, batch_size=128, seed=0, augment=True)
    data = example_dataset()
    model = example_teacher()
    result = train(model, data, settings, progress=progress, description="train teacher")
    test_acc = accuracy(predict_logits(model, data, data.test), data.test.y)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / TEACHER_CHECKPOINT.name
    import io

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(ckpt, buf.getvalue())
    card = {
        "factory": "edgekd.models.example_teacher:example_teacher",
        "widths": list(EXAMPLE_WIDTHS),
        "checkpoint": ckpt.name,
        "sha256": sha256_file(ckpt),
        "dataset": data.source.split("calibration_data/")[-1],
        "dataset_digest": data.digest,
        "test_accuracy": test_acc,
        "best_val_accuracy": result.best_val_accuracy,
        "epochs_run": result.epochs_run,
        "history": result.history,
        "train_seconds": round(result.seconds, 1),
        "settings": settings.__dict__,
        "command": f"edgekd example train-teacher --epochs {settings.epochs} --seed {settings.seed}",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "edgekd_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write_text(out_dir / TEACHER_CARD.name, json.dumps(card, indent=2) + "\n")
    return card
