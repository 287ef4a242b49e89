"""Per-epoch training checkpoints, so an interrupted run resumes at the last finished epoch.

One file, ``<dir>/last.pt``, rewritten atomically after every epoch (temporary file, then rename), and
loadable with ``torch.load(..., weights_only=True)``: it holds only tensors, numbers, strings, lists
and dicts. A fingerprint of the training settings guards against resuming a different run.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import torch

from edgekd.core.atomic import atomic_write_bytes
from edgekd.core.errors import InputError

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"


def fingerprint(settings: dict[str, Any]) -> str:
    """A stable text form of the settings a checkpoint belongs to."""
    return json.dumps(settings, sort_keys=True, default=str)


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/last.pt`` atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(Path(directory) / CHECKPOINT_NAME, buf.getvalue())


def load_checkpoint(directory: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The saved state in ``directory``, or None when there is none.

    Raises:
        InputError: The file is unreadable or was written for different training settings.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for bad files
        raise InputError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("fingerprint") != expected_fingerprint:
        raise InputError(
            f"checkpoint {path} was written by a run with other settings; delete it or run without --resume"
        )
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return state
