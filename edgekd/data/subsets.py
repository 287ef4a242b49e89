"""Representative subsets: a seeded, class-stratified sample instead of "the first N".

Image folders are read class by class and many ``.npz`` files are sorted by label, so the first N
images can be a single class. Every place that uses part of a split (distillation, calibration,
parity, the corruption suite, Arm parity, validation slices) takes :func:`stratified_indices` instead:
each class gets a share proportional to its size (largest remainder; every class at least one image
when ``n`` allows), drawn with a fixed seed, so two runs (and two stages) pick the same images.

Example:
    >>> import numpy as np
    >>> y = np.repeat(np.arange(4), 100)  # class-ordered
    >>> sorted(set(y[stratified_indices(y, 8)].tolist()))
    [0, 1, 2, 3]
"""

from __future__ import annotations

import numpy as np

SUBSET_SEED = 0


def stratified_indices(labels: np.ndarray, n: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of ``n`` samples stratified by ``labels`` (all indices when ``n >= len(labels)``).

    Negative labels (unlabeled images) form one group of their own.
    """
    y = np.asarray(labels).reshape(-1)
    total = len(y)
    if n >= total:
        return np.arange(total)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(np.where(y < 0, -1, y), return_counts=True)
    if n < len(classes):  # fewer picks than classes: n distinct classes, one image each
        chosen = set(rng.choice(classes, n, replace=False).tolist())
        quota = np.array([1 if c in chosen else 0 for c in classes])
    else:
        exact = counts * (n / total)
        quota = np.maximum(1, np.floor(exact).astype(np.int64))
        quota = np.minimum(quota, counts)
        while quota.sum() > n:  # the at-least-one floor overshot: take from the largest quotas
            quota[int(np.argmax(np.where(quota > 1, quota - exact, -np.inf)))] -= 1
        remainder = exact - quota
        while quota.sum() < n:
            open_ = quota < counts
            i = int(np.argmax(np.where(open_, remainder, -np.inf)))
            quota[i] += 1
            remainder[i] -= 1.0
    picks = []
    for c, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(np.where(y < 0, -1, y) == c)
        if q:
            picks.append(rng.choice(members, int(q), replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64) if picks else np.zeros(0, dtype=np.int64)
