"""Inference helpers every stage uses: a model's logits on a split, top-1 accuracy, chunked runtime calls.

They stand on two small protocols rather than the data package, so ``core`` imports nothing above it:
anything with ``batches(split, batch_size)`` and ``num_classes`` (a
:class:`~edgekd.data.datasets.DatasetBundle`) can be predicted on.

Example:
    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    >>> run_chunked(lambda x: x * 2, np.arange(5.0), chunk=2).tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from edgekd.core.errors import InputError

#: Images per forward pass / runtime call.
BATCH = 256


class Batched(Protocol):
    """What :func:`predict_logits` needs of a dataset."""

    num_classes: int

    def batches(self, split: Any, batch_size: int) -> Iterable[tuple[torch.Tensor, Any, Any]]: ...


@torch.no_grad()
def predict_logits(model: nn.Module, data: Batched, split: Any, batch_size: int = BATCH) -> np.ndarray:
    """Logits of ``model`` on a whole split, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    out = [model(x).float().numpy() for x, _, _ in data.batches(split, batch_size)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, data.num_classes), np.float32)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of ``logits`` against ``labels`` (0.0 for no labels)."""
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


def run_chunked(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, chunk: int = BATCH) -> np.ndarray:
    """``run`` (an exported artifact's runtime) over ``x`` in chunks of ``chunk`` images, concatenated."""
    if len(x) == 0:  # runtimes reject empty batches
        return np.zeros((0,), np.float32)
    return np.concatenate([np.asarray(run(x[i : i + chunk])) for i in range(0, len(x), chunk)])


def check_fit(teacher: nn.Module, data: Any) -> None:
    """The dataset's images must go through the teacher and give one logit per class.

    ``data`` is a :class:`~edgekd.data.datasets.DatasetBundle` (``to_tensor``, ``test``, ``input_shape``,
    ``num_classes``); raises :class:`~edgekd.core.errors.InputError` naming the mismatch.
    """
    x = data.to_tensor(data.test.x[:2])
    try:
        with torch.no_grad():
            out = teacher(x)
    except Exception as exc:  # any shape error from user code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"dataset images of shape {tuple(data.input_shape)} do not fit the teacher ({first}); "
            "resize the data or pass the matching teacher"
        ) from exc
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise InputError(
            f"teacher outputs shape {tuple(out.shape)} but the dataset has {data.num_classes} classes; "
            "pass a teacher with one logit per class"
        )
