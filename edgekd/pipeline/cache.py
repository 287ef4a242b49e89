"""Stage cache: each stage's output folder is keyed by a hash of its inputs and config.

A stage writes into a temporary folder and renames it into place when complete, so an
interrupted build leaves no half-written entry and the next run resumes after the last
completed stage; an unchanged re-run finds every entry and does no work.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekd.core.hashing import sha256_json

log = logging.getLogger(__name__)

#: The temporary names edgekd itself makes: a stage's folder (``tempfile.mkdtemp(prefix=".<stage>-")``) and
#: atomic writes / artifact copies (``.<name>.<random>.tmp``, ``.<name>.tmp``). Nothing else is ever removed.
_STAGE_TMP = re.compile(r"^\.[A-Za-z0-9_.-]+-[a-z0-9_]{8}$")
_FILE_TMP = re.compile(r"^\..+\.tmp$")


def remove_interrupted(out_dir: Path) -> list[Path]:
    """Remove what an interrupted (killed) run of ``out_dir`` left half-written; return what was removed.

    Looks only at edgekd's own temporary names in ``out_dir``, ``out_dir/.stages`` and ``out_dir/artifacts``.
    """
    removed = []
    places = ((out_dir / ".stages", _STAGE_TMP), (out_dir, _FILE_TMP), (out_dir / ".stages", _FILE_TMP),
              (out_dir / "artifacts", _FILE_TMP))  # fmt: skip
    for folder, pattern in places:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not pattern.match(p.name) or (p / "_complete.json").exists():
                continue
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        log.warning("removed %d temporary file(s) of an interrupted run under %s", len(removed), out_dir)
    return removed


class StageCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits: list[str] = []
        self.misses: list[str] = []

    @staticmethod
    def key(inputs: dict) -> str:
        return sha256_json(inputs)[:16]

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key}"

    def lookup(self, stage: str, key: str) -> Path | None:
        p = self.path(stage, key)
        if (p / "_complete.json").exists():
            self.hits.append(stage)
            log.debug("stage %s: cache entry %s", stage, p.name)
            return p
        return None

    @contextmanager
    def produce(self, stage: str, key: str, inputs: dict) -> Iterator[Path]:
        """Yield a temporary folder; on success it becomes the cache entry ``stage-key``."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stage}-", dir=self.root))
        try:
            yield tmp
            (tmp / "_complete.json").write_text(json.dumps({"stage": stage, "inputs": inputs}, default=str))
            final = self.path(stage, key)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            self.misses.append(stage)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
