"""Parity between an exported model and its PyTorch reference on the same inputs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edgekd.core.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityResult:
    """How closely an exported model follows its reference.

    Attributes:
        agreement: fraction of samples whose top-1 class equals the reference's.
        max_abs_diff: largest absolute logit difference over all samples and classes.
        mean_abs_diff: mean absolute logit difference.
        accuracy: top-1 accuracy of the exported model against the labels.
        reference_accuracy: top-1 accuracy of the reference against the labels.
        worst_sample: index of the sample with the largest logit difference.
        samples: number of samples compared.
    """

    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    accuracy: float
    reference_accuracy: float
    worst_sample: int
    samples: int

    def to_json(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


def check_parity(
    run: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    reference_logits: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 256,
) -> ParityResult:
    """Run ``run`` over ``x`` in batches and compare its logits with ``reference_logits``.

    Args:
        run: a loaded runtime (normalised float32 NCHW batch in, logits out).
        x: inputs, shape (N, ...).
        reference_logits: reference outputs, shape (N, K).
        labels: true classes, shape (N,).
        batch_size: samples per call of ``run``.

    Raises:
        InputError: the arrays do not line up, or the runtime returns the wrong shape.

    Example:
        >>> ref = np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
        >>> check_parity(lambda b: ref[: len(b)], np.zeros((2, 1)), ref, np.array([0, 1])).agreement
        1.0
    """
    n = len(x)
    if n == 0:
        raise InputError("parity check needs at least one sample")
    if reference_logits.ndim != 2 or len(reference_logits) != n or len(labels) != n:
        raise InputError(
            f"parity inputs do not line up: x {len(x)}, reference {reference_logits.shape}, labels {len(labels)}"
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    outs = []
    for start in range(0, n, batch_size):
        chunk = x[start : start + batch_size]
        out = np.asarray(run(chunk), dtype=np.float32)
        if out.shape != (len(chunk), reference_logits.shape[1]):
            raise InputError(
                f"runtime returned shape {out.shape} for a batch of {len(chunk)}; "
                f"expected ({len(chunk)}, {reference_logits.shape[1]})"
            )
        outs.append(out)
    logits = np.concatenate(outs)
    return compare_logits(logits, reference_logits, labels)


def compare_logits(logits: np.ndarray, reference_logits: np.ndarray, labels: np.ndarray) -> ParityResult:
    """Compare logits already computed (one row per sample) with ``reference_logits``.

    Raises:
        InputError: the arrays do not line up.
    """
    logits = np.asarray(logits, dtype=np.float32)
    n = len(logits)
    if n == 0:
        raise InputError("parity check needs at least one sample")
    if reference_logits.ndim != 2 or logits.shape != reference_logits.shape or len(labels) != n:
        raise InputError(
            f"parity inputs do not line up: logits {logits.shape}, reference {reference_logits.shape}, "
            f"labels {len(labels)}"
        )
    ref = np.asarray(reference_logits, dtype=np.float32)
    diff = np.abs(logits - ref)
    pred, ref_pred = logits.argmax(1), ref.argmax(1)
    result = ParityResult(
        agreement=float((pred == ref_pred).mean()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        accuracy=float((pred == labels).mean()),
        reference_accuracy=float((ref_pred == labels).mean()),
        worst_sample=int(diff.max(axis=1).argmax()),
        samples=n,
    )
    log.debug("parity: %s", result)
    return result
