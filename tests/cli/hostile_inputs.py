"""Builders for the malformed-input corpus: every bad file is generated here, none is checked in.

Each builder writes into a case folder and returns the path it wrote. ``Assets`` holds the few good
files the bad ones are derived from (a teacher state dict, an edgekd student file, a tiny ONNX model,
a dataset that fits the bundled teacher), made once per test session.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgekd.config.build_config import EXAMPLE_FACTORY
from edgekd.config.targets import TARGETS_DIR
from edgekd.models.example_teacher import example_teacher
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import save_student

SPLITS = ("train", "val", "test")
N_PER_SPLIT = 6
IMAGE = (28, 28)  # the bundled teacher's input (1, 28, 28), 10 classes


@dataclass(frozen=True)
class Assets:
    teacher_state: dict
    student: Path
    onnx: Path
    profile_text: str


def make_assets(root: Path) -> Assets:
    root.mkdir(parents=True, exist_ok=True)
    state = torch.load(TEACHER_CHECKPOINT, map_location="cpu", weights_only=True)
    model = example_teacher()
    model.load_state_dict(state)
    student = save_student(model, root / "student.pt", EXAMPLE_FACTORY)
    return Assets(state, student, tiny_onnx(root / "tiny.onnx"),
                  (TARGETS_DIR / "x86-64-host.yaml").read_text())  # fmt: skip


def tiny_onnx(path: Path) -> Path:
    """A valid one-Relu ONNX model taking (1, 1, 28, 28)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, *IMAGE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, *IMAGE])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


# --- datasets -------------------------------------------------------------------------------------


def good_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for s in SPLITS:
        arrays[f"x_{s}"] = rng.integers(0, 256, (N_PER_SPLIT, *IMAGE), dtype=np.uint8)
        arrays[f"y_{s}"] = rng.integers(0, 10, N_PER_SPLIT)
    return arrays


def write_npz(path: Path, **changes: np.ndarray | None) -> Path:
    """A dataset that fits the bundled teacher, with ``changes`` applied (None removes an array)."""
    arrays = good_arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


def npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **good_arrays())
    return buf.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def png16_bytes(h: int = 28, w: int = 28) -> bytes:
    """A 16-bit greyscale PNG written by hand (PIL cannot write I;16 PNGs portably)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + np.arange(w, dtype=">u2").tobytes() for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def write_folder(root: Path, sizes: dict[str, tuple[int, int]] | None = None, constant: bool = False) -> Path:
    """DIR/{train,val,test}/{a,b}/*.png, 2 images per class."""
    rng = np.random.default_rng(1)
    for s in SPLITS:
        size = (sizes or {}).get(s, IMAGE)
        for cls in ("a", "b"):
            d = root / s / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                arr = np.full(size, 7, np.uint8) if constant else rng.integers(0, 256, size, dtype=np.uint8)
                (d / f"{i}.png").write_bytes(png_bytes(arr))
    return root


# --- checkpoints ----------------------------------------------------------------------------------


def torch_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Payload:
    """Unpickling this would create ``marker``: weights-only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def pickle_payload(marker: Path) -> bytes:
    """A torch.save archive whose pickle would call Path.touch(marker) if unpickled unsafely."""
    return torch_bytes({"state_dict": _Payload(marker)})


def raw_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def student_payload(assets: Assets) -> dict:
    return torch.load(assets.student, map_location="cpu", weights_only=True)


def with_nan(state: dict, value: float = float("nan")) -> dict:
    out = {k: v.clone() for k, v in state.items()}
    first = next(k for k, v in out.items() if v.is_floating_point())
    out[first].view(-1)[0] = value
    return out


# --- YAML and JSON ----------------------------------------------------------------------------------


def alias_bomb(indent: int = 2, levels: int = 9, width: int = 9) -> str:
    """A block YAML value whose aliases expand to width**levels strings (~387 M for 9x9)."""
    pad = " " * indent
    lines = [f'{pad}- &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"{pad}- &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\n{pad}- *l{levels - 1}\n"


def profile_with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_text(obj: object) -> str:
    return json.dumps(obj)
