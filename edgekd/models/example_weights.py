"""Where the bundled example teacher's weights live, and which weights file a teacher uses.

Every command that loads a teacher (build, prune, distill) resolves its weights here, so the rule
"the bundled teacher defaults to its shipped checkpoint, any other teacher needs a weights file"
exists once.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.config.build_config import EXAMPLE_FACTORY
from edgekd.core.errors import ConfigError, InputError

TEACHER_DIR = Path(__file__).resolve().parent / "weights"
TEACHER_CHECKPOINT = TEACHER_DIR / "example_teacher.pt"
TEACHER_CARD = TEACHER_DIR / "example_teacher.json"


def teacher_weights_path(factory: str, weights: Path | None) -> Path:
    """``weights`` when given; the shipped checkpoint for the bundled teacher; else a one-line error."""
    if weights is not None:
        return Path(weights)
    if factory == EXAMPLE_FACTORY:
        if not TEACHER_CHECKPOINT.exists():
            raise InputError(f"bundled teacher {TEACHER_CHECKPOINT} is missing; run `edgekd example train-teacher`")
        return TEACHER_CHECKPOINT
    raise ConfigError(f"teacher '{factory}' needs --teacher-weights (a state-dict file)")
