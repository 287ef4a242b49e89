"""Artifact: a file (or folder) a stage produced, with its hash, kind and lineage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekd.core.hashing import sha256_file


@dataclass(frozen=True)
class Artifact:
    """A stage output on disk.

    Attributes:
        path: the file (or folder, for multi-file formats such as OpenVINO IR).
        kind: what it is, e.g. ``torch-student``, ``onnx``, ``tflite``, ``openvino``.
        sha256: content hash (see :func:`edgekd.core.hashing.sha256_file`).
        stage: the stage that produced it.
        config_hash: hash of the stage config that produced it.
        parents: sha256 of the artifacts it was made from.
        meta: small JSON-able facts (precision, format, sidecar path...).
    """

    path: Path
    kind: str
    sha256: str
    stage: str
    config_hash: str = ""
    parents: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_file(
        cls,
        path: Path,
        kind: str,
        stage: str,
        config_hash: str = "",
        parents: tuple[str, ...] = (),
        meta: dict | None = None,
    ) -> Artifact:
        return cls(Path(path), kind, sha256_file(Path(path)), stage, config_hash, parents, meta or {})

    @property
    def size_bytes(self) -> int:
        p = Path(self.path)
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["parents"] = list(self.parents)
        return d
