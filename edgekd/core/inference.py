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

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from edgekd.core.device import autocast, place, resolve_device, to_device
from edgekd.core.errors import InputError

log = logging.getLogger(__name__)

#: Images per forward pass / runtime call.
BATCH = 256


class Batched(Protocol):
    """What :func:`predict_logits` needs of a dataset."""

    num_classes: int

    def batches(self, split: Any, batch_size: int) -> Iterable[tuple[torch.Tensor, Any, Any]]: ...


@torch.no_grad()
def predict_logits(
    model: nn.Module, data: Batched, split: Any, batch_size: int = BATCH, device: str = "cpu"
) -> np.ndarray:
    """Logits of ``model`` on a whole split, in eval mode, on ``device`` (``auto``, ``cpu``, ``cuda[:N]``).

    The model's mode is restored and it comes back to the CPU.
    """
    was_training = model.training
    model.eval()
    dev = resolve_device(device)
    if dev.type != "cpu":
        place(model, dev)
    try:
        with autocast(dev):
            out = [model(to_device(x, dev)).float().cpu().numpy() for x, _, _ in data.batches(split, batch_size)]
    finally:
        if dev.type != "cpu":
            model.to("cpu").to(memory_format=torch.contiguous_format)
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


def check_fit(teacher: nn.Module, data: Any) -> Any:
    """The dataset's images must go through the teacher and give one logit per class; returns the dataset.

    ``data`` is a :class:`~edgekd.data.datasets.DatasetBundle` (``to_tensor``, ``test``, ``input_shape``,
    ``num_classes``, ``class_names``). A dataset without ``class_names`` has its class count guessed from
    the largest label; when the teacher has more logits, the teacher's count is the better guess and the
    returned bundle is widened. Raises :class:`~edgekd.core.errors.InputError` naming any other mismatch.
    """
    x = data.to_tensor(data.test.x[:2])
    try:
        with torch.no_grad():
            out = teacher(x)
    except Exception as exc:  # any shape error from user code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"dataset images of shape {tuple(data.input_shape)} do not fit the teacher ({first[:200]}); "
            "resize the data or pass the matching teacher"
        ) from exc
    counted = tuple(data.class_names) == tuple(str(i) for i in range(data.num_classes))
    if out.ndim == 2 and counted and out.shape[1] > data.num_classes:
        log.info("dataset has no class_names; taking the teacher's %d classes", out.shape[1])
        return dataclasses.replace(data, class_names=tuple(str(i) for i in range(out.shape[1])))
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        basis = " (counted from the largest label)" if counted else ""
        raise InputError(
            f"teacher outputs shape {tuple(out.shape)} but the dataset has {data.num_classes} classes{basis}; "
            "pass a teacher with one logit per class"
        )
    return data
