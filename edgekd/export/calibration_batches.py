"""Calibration images cut into batches of one size, whatever their count.

ONNX Runtime's histogram calibrators stack each batch's activations into one array, so a short last
batch (200 images in batches of 32) breaks them. Batches here all have the largest size that divides
the count and is at most ``largest`` (37 images: 37 batches of 1; 200: 8 batches of 25).
"""

from __future__ import annotations

import numpy as np


def even_batch_size(count: int, largest: int) -> int:
    """The largest batch size ``<= largest`` that divides ``count`` (1 when ``count`` is prime and larger)."""
    if count <= 0:
        raise ValueError(f"calibration needs at least one image, got {count}")
    for size in range(min(count, largest), 0, -1):
        if count % size == 0:
            return size
    return 1


def even_batches(data: np.ndarray, largest: int) -> list[np.ndarray]:
    """``data`` split along its first axis into equal float32 batches of at most ``largest`` images."""
    size = even_batch_size(len(data), largest)
    return [np.ascontiguousarray(data[i : i + size], dtype=np.float32) for i in range(0, len(data), size)]
