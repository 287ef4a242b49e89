"""Loading user models: a ``module:function`` factory plus a state-dict file (``weights_only=True``).

A pruned student is saved as data only: its state dict, the integer attributes of every module
(``in_channels``, ``num_features``, ``normalized_shape``, ``num_heads``, ...) and the factory spec as a
string. It is rebuilt by calling the factory *the user names* and resizing, module by module, every
parameter and buffer to the saved shape — whatever the layer's type (subclasses, LayerNorm, GroupNorm,
Embedding, custom modules with parameters). Nothing the file names is ever imported or called.
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

STUDENT_FORMAT = 2
# factories shipped with edgekd: the only ones used when a student file is exported without --factory
TRUSTED_FACTORIES = frozenset({"edgekd.models.example_teacher:example_teacher"})


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """Import ``module:function``; the current directory is importable so local files work.

    Any exception raised while importing the user's module (``SyntaxError``, ``RuntimeError``, ...)
    becomes a one-line :class:`InputError` naming the factory.
    """
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"factory '{spec}' is not of the form 'module:function'")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"factory '{spec}' does not exist: cannot import module '{module_name}' ({exc}); "
            "give an importable 'module:function'"
        ) from exc
    except (Exception, SystemExit) as exc:  # user code runs on import
        raise InputError(f"factory '{spec}' failed on import: {_one_line(exc)}; fix the module") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"factory '{spec}' does not exist: '{module_name}' has no callable '{attr}'")
    return factory


def build_model(spec: str) -> nn.Module:
    """A fresh model from the user's factory ``spec``; any failure is a one-line :class:`InputError`."""
    factory = load_factory(spec)
    try:
        model = factory()
    except (Exception, SystemExit) as exc:  # user code
        raise InputError(f"factory '{spec}' failed: {_one_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise InputError(f"factory '{spec}' returned {type(model).__name__}, not an nn.Module")
    return model


def load_weights_only(path: Path, advice: str) -> object:
    """``torch.load(path, weights_only=True)`` with a one-line InputError ending in ``advice``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for bad files
        raise InputError(
            f"{path} is not a PyTorch checkpoint loadable with weights_only=True ({type(exc).__name__}); {advice}"
        ) from exc


def _tensor_dict(obj: object) -> bool:
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (plain, or under a 'state_dict'/'model' key); weights only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"teacher weights {path} do not exist; pass a state-dict file saved with torch.save")
    obj = load_weights_only(path, "save it with torch.save(model.state_dict(), path)")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not _tensor_dict(obj):
        raise InputError(f"{path} holds no state dict of tensors; save model.state_dict()")
    return obj


def load_model(factory_spec: str, weights: Path | None) -> nn.Module:
    """Instantiate ``factory_spec`` and load ``weights`` into it (eval mode)."""
    model = build_model(factory_spec)
    if weights is not None:
        state = read_state_dict(weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{weights} does not fit '{factory_spec}': {first}") from exc
    return model.eval()


def _int_like(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, tuple | list) and bool(value) and all(_int_like(v) for v in value)


def structure_of(model: nn.Module) -> dict[str, dict[str, object]]:
    """The public integer attributes (and tuples of them) of every module, by module path.

    These are what pruning changes besides tensor shapes (``in_channels``, ``groups``, ``num_features``,
    ``normalized_shape``, ``embed_dim``, ``num_heads``, ``head_dim``, ...), read without a list of
    layer types so that subclasses and custom modules are covered.
    """
    out: dict[str, dict[str, object]] = {}
    for name, m in model.named_modules():
        attrs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(m).items()
                 if not k.startswith("_") and _int_like(v)}  # fmt: skip
        if attrs:
            out[name] = attrs
    return out


def save_student(model: nn.Module, path: Path, factory_spec: str) -> Path:
    """Write a pruned model as {format, factory, structure, state_dict} (weights-only loadable)."""
    buf = io.BytesIO()
    payload = {
        "format": STUDENT_FORMAT,
        "factory": str(factory_spec),
        "structure": structure_of(model),
        "state_dict": model.state_dict(),
    }
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def student_factory(path: Path, payload: dict, given: str | None) -> str:
    """The factory to rebuild ``payload`` with: the one the user gives, checked against the file's record.

    Without ``given``, only factories shipped with edgekd are used; a file never makes edgekd call code.
    """
    recorded = payload.get("factory")
    recorded = recorded if isinstance(recorded, str) else None
    if given:
        if recorded and recorded != given:
            raise InputError(
                f"{path} was pruned from factory '{recorded[:200]}', not '{given}'; pass the factory that built it"
            )
        return given
    if recorded in TRUSTED_FACTORIES:
        return recorded
    named = f"(the file records '{recorded[:200]}')" if recorded else "(the file records none)"
    raise InputError(
        f"{path} needs the factory that built it: pass --factory module:function {named}; "
        "edgekd never calls a factory a file names"
    )


def _resize(model: nn.Module, state: dict[str, torch.Tensor], path: Path, spec: str) -> None:
    """Resize every parameter and buffer of ``model`` to the shape saved in ``state``."""
    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        for kind, table in (("parameter", m._parameters), ("buffer", m._buffers)):
            for tname, tensor in list(table.items()):
                if tensor is None:
                    continue
                key = prefix + tname
                if key not in state:
                    if kind == "buffer" and tname in m._non_persistent_buffers_set:
                        continue
                    layer = name or "<root>"
                    raise InputError(f"{path} does not fit factory '{spec}': layer '{layer}' has {kind} "
                                     f"'{tname}' the file lacks; pass the factory that built it")  # fmt: skip
                saved = state[key]
                if saved.shape == tensor.shape and saved.dtype == tensor.dtype:
                    continue
                fresh = torch.empty(saved.shape, dtype=saved.dtype)
                table[tname] = nn.Parameter(fresh, tensor.requires_grad) if kind == "parameter" else fresh


def _positive(value: object) -> bool:
    return value > 0 if isinstance(value, int) else all(_positive(v) for v in value)  # type: ignore[union-attr]


def _apply_structure(model: nn.Module, structure: object, path: Path, spec: str) -> None:
    """Set each layer's recorded integer attributes; a value the layer cannot take is a one-line InputError."""
    if not isinstance(structure, dict):
        raise InputError(f"{path} is not an edgekd student file ('structure' is not a table)")
    modules = dict(model.named_modules())
    for name, attrs in structure.items():
        m = modules.get(name) if isinstance(name, str) else None
        if m is None or not isinstance(attrs, dict):
            raise InputError(f"{path} does not fit factory '{spec}': the model has no layer '{str(name)[:200]}'; "
                             "pass the factory that built it")  # fmt: skip
        for attr, value in attrs.items():
            current = getattr(m, attr, None) if isinstance(attr, str) else None
            if not _int_like(current):
                continue  # not an integer attribute of this layer: the file's value is ignored, never applied
            plain = tuple(current) if isinstance(current, list) else current
            same_kind = _int_like(value) and type(plain) is type(value)
            if not same_kind or (value != plain and not _positive(value)):
                raise InputError(f"{path} does not fit factory '{spec}': layer '{name[:200]}' cannot take "
                                 f"{attr}={str(value)[:40]}; pass a student.pt written by edgekd")  # fmt: skip
            if value != plain:
                setattr(m, attr, list(value) if isinstance(current, list) else value)


# attributes that name a weight's dimensions, whatever the layer's type: (attribute, weight dim, divide by groups)
_WEIGHT_DIMS = (("out_channels", 0, False), ("in_channels", 1, True), ("out_features", 0, False),
                ("in_features", 1, False), ("num_features", 0, False), ("embedding_dim", 1, False))  # fmt: skip


_CHECKED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.Embedding)


def _check_consistent(model: nn.Module, path: Path, spec: str) -> None:
    """Each standard layer's weight (subclasses included) agrees with the channel attributes it runs with.

    A tampered file would not; custom layers are left to ``load_state_dict`` and the first forward pass.
    """
    for name, m in model.named_modules():
        weight = m._parameters.get("weight")
        if weight is None or not isinstance(m, _CHECKED) or getattr(m, "transposed", False):
            continue
        groups = getattr(m, "groups", 1)
        for attr, dim, per_group in _WEIGHT_DIMS:
            value = getattr(m, attr, None)
            if not isinstance(value, int) or isinstance(value, bool) or weight.ndim <= dim:
                continue
            expected = value // groups if per_group and isinstance(groups, int) and groups > 0 else value
            if weight.shape[dim] != expected:
                raise InputError(f"{path} does not fit factory '{spec}': layer '{name or '<root>'}' has a weight of "
                                 f"shape {tuple(weight.shape)} but {attr}={value}; pass a student.pt written by "
                                 "edgekd")  # fmt: skip


def load_student(path: Path, factory_spec: str | None = None, payload: object = None) -> nn.Module:
    """Rebuild a student saved by :func:`save_student` with the factory the user names.

    ``payload``: the file's content, if already read. A file that does not fit the factory's model
    is a one-line :class:`InputError` naming the first mismatching layer.
    """
    if payload is None:
        payload = load_weights_only(path, "pass a student.pt written by edgekd")
    if not isinstance(payload, dict) or "structure" not in payload:
        raise InputError(f"{path} is not an edgekd student file (no 'structure')")
    state = payload.get("state_dict")
    if not _tensor_dict(state):
        raise InputError(f"{path} is not an edgekd student file (no state dict of tensors)")
    spec = student_factory(path, payload, factory_spec)
    model = build_model(spec)
    _apply_structure(model, payload["structure"], path, spec)
    _resize(model, state, path, spec)
    if payload.get("format") == STUDENT_FORMAT:  # older files recorded no attributes for subclasses
        _check_consistent(model, path, spec)
    expected = set(model.state_dict())
    extra = [k for k in state if k not in expected]
    if extra:
        layer = extra[0].rpartition(".")[0] or extra[0]
        raise InputError(f"{path} does not fit factory '{spec}': the model has no layer '{layer[:200]}'; "
                         "pass the factory that built it")  # fmt: skip
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise InputError(f"{path} does not fit factory '{spec}': {first}") from exc
    return model.eval()
