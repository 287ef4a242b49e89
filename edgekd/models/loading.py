"""Loading user models: a ``module:function`` factory plus a state-dict file (``weights_only=True``).

Pruned students are saved as a plain state dict plus each layer's channel attributes, and rebuilt
by instantiating the original architecture and resizing its layers — no pickled modules, so a
student file is as safe to load as any weights file.
"""

from __future__ import annotations

import importlib
import io
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from edgekd.core.atomic import atomic_write_bytes
from edgekd.core.errors import InputError

log = logging.getLogger(__name__)

SHAPE_ATTRS = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm1d: ("num_features",),
}


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """Import ``module:function``; the current directory is importable so local files work."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"teacher factory '{spec}' is not of the form 'module:function'")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"teacher factory '{spec}' does not exist: cannot import module '{module_name}' ({exc}); "
            "give an importable 'module:function'"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"teacher factory '{spec}' does not exist: '{module_name}' has no callable '{attr}'")
    return factory


def load_weights_only(path: Path, advice: str) -> object:
    """``torch.load(path, weights_only=True)`` with a one-line InputError ending in ``advice``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for bad files
        raise InputError(
            f"{path} is not a PyTorch checkpoint loadable with weights_only=True ({type(exc).__name__}); {advice}"
        ) from exc


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (plain, or under a 'state_dict'/'model' key); weights only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"teacher weights {path} do not exist; pass a state-dict file saved with torch.save")
    obj = load_weights_only(path, "save it with torch.save(model.state_dict(), path)")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path} holds no state dict of tensors; save model.state_dict()")
    return obj


def load_model(factory_spec: str, weights: Path | None) -> nn.Module:
    """Instantiate ``factory_spec`` and load ``weights`` into it (eval mode)."""
    factory = load_factory(factory_spec)
    try:
        model = factory()
    except Exception as exc:  # user code
        raise InputError(f"teacher factory '{factory_spec}' failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise InputError(f"teacher factory '{factory_spec}' returned {type(model).__name__}, not an nn.Module")
    if weights is not None:
        state = read_state_dict(weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{weights} does not fit '{factory_spec}': {first}") from exc
    return model.eval()


def structure_of(model: nn.Module) -> dict[str, dict[str, int]]:
    """Channel attributes of every resizable layer."""
    out = {}
    for name, m in model.named_modules():
        attrs = SHAPE_ATTRS.get(type(m))
        if attrs:
            out[name] = {a: int(getattr(m, a)) for a in attrs}
    return out


def save_student(model: nn.Module, path: Path, factory_spec: str) -> Path:
    """Write a pruned model as {factory, structure, state_dict} (weights-only loadable)."""
    buf = io.BytesIO()
    payload = {"factory": factory_spec, "structure": structure_of(model), "state_dict": model.state_dict()}
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_student(path: Path, factory_spec: str | None = None, payload: object = None) -> nn.Module:
    """Rebuild a model saved by :func:`save_student` (``payload``: the file's content, if already read)."""
    if payload is None:
        payload = load_weights_only(path, "pass a student.pt written by edgekd")
    if not isinstance(payload, dict) or "structure" not in payload:
        raise InputError(f"{path} is not an edgekd student file (no 'structure')")
    model = load_factory(factory_spec or payload["factory"])()
    try:
        _rebuild(model, payload["structure"], payload["state_dict"])
    except (KeyError, AttributeError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise InputError(
            f"{path} does not fit the model its factory builds ({type(exc).__name__}: {detail}); "
            "pass a student.pt written by edgekd for this teacher"
        ) from None
    return model.eval()


def _rebuild(model: nn.Module, structure: dict, state: dict) -> None:
    """Resize ``model``'s layers to ``structure`` and load ``state`` (raises on any mismatch)."""
    modules = dict(model.named_modules())
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TypeError("'state_dict' is not a mapping of tensors")
    for name, attrs in structure.items():
        m = modules[name]
        for attr, value in attrs.items():
            if attr not in SHAPE_ATTRS.get(type(m), ()) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"layer '{str(name)[:60]}' cannot take {str(attr)[:40]}={str(value)[:20]}")
            setattr(m, attr, value)
        for pname, _p in list(m.named_parameters(recurse=False)):
            saved = state[f"{name}.{pname}" if name else pname]
            setattr(m, pname, nn.Parameter(torch.empty_like(saved)))
        for bname, b in list(m.named_buffers(recurse=False)):
            key = f"{name}.{bname}" if name else bname
            if b is not None and key in state:
                m.register_buffer(bname, torch.empty_like(state[key]))
        if not _shapes_agree(m):
            raise ValueError(f"layer '{str(name)[:60]}': saved tensors do not match its recorded channels")
    model.load_state_dict(state)


def _shapes_agree(m: nn.Module) -> bool:
    """A resized layer's weight has the shape its channel attributes say."""
    w = getattr(m, "weight", None)
    if w is None:
        return True
    if isinstance(m, nn.Conv2d):
        return tuple(w.shape[:2]) == (m.out_channels, m.in_channels // m.groups)
    if isinstance(m, nn.Linear):
        return tuple(w.shape) == (m.out_features, m.in_features)
    return tuple(w.shape) == (m.num_features,)
