"""Shared pieces of the malformed-input corpus: the case record, its folder, and command builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.cli import hostile_inputs as h

CASE_TIMEOUT_S = 60


@dataclass
class Ctx:
    """One case's folder (also the working directory), its output folder and the shared good assets."""

    d: Path
    a: h.Assets

    @property
    def out(self) -> str:
        return str(self.d / "out")

    def write(self, name: str, content: bytes | str) -> str:
        path = self.d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def npz(self, **changes: np.ndarray | None) -> str:
        return str(h.write_npz(self.d / "data.npz", **changes))

    def profile(self, old: str, new: str) -> str:
        return self.write("x86-64-host.yaml", h.profile_with(self.a.profile_text, old, new))

    def teacher(self, state: object) -> str:
        return self.write("teacher.pt", h.torch_bytes(state))

    def student(self, payload: object) -> str:
        return self.write("student.pt", h.torch_bytes(payload))

    def folder(self, **kw: object) -> Path:
        return h.write_folder(self.d / "imgs", **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    needle: str


def build(c: Ctx, *extra: str) -> list[str]:
    return ["build", "--target", "x86-64-host", "--out", c.out, "--no-progress", *extra]


def build_data(make: Callable[[Ctx], str]) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, "--data", make(c))


def split_arrays(value: Callable[[], np.ndarray], key: str) -> Callable[[Ctx], str]:
    return lambda c: c.npz(**{key: value()})


rng = np.random.default_rng(0)
SHAPE = (h.N_PER_SPLIT, *h.IMAGE)


def _u8(shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _float_with(value: float) -> np.ndarray:
    x = rng.random(SHAPE).astype(np.float32)
    x[0, 0, 0] = value
    return x
