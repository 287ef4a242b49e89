"""YAML loading into pydantic models with one-line, actionable errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edgekd.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at the parent of ``loc`` (for 'unknown key' messages)."""
    current: type[BaseModel] | None = model
    dict_key_next = False
    for part in loc[:-1]:
        if dict_key_next or isinstance(part, int):  # a list index or a dict key, not a field name
            dict_key_next = False
            continue
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        dict_key_next = get_origin(ann) is dict
        candidates = [ann, *get_args(ann)]
        for arg in list(candidates):
            candidates.extend(get_args(arg))
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(current.model_fields) if current is not None else []


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """First problem of a pydantic error as one line naming the file, the key and what is allowed."""
    errors = exc.errors()
    # A misspelt key fails twice (unknown + missing); report the unknown one the user wrote.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{source}: unknown key '{key}'{hint}; allowed keys here: {', '.join(allowed)}{more}"
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{source}: key '{key}' = {err.get('input')!r} is not allowed; expected {expected}{more}"
    if err["type"] == "missing":
        return f"{source}: required key '{key}' is missing{more}"
    return f"{source}: key '{key}': {err['msg']} (got {err.get('input')!r}){more}"


def load_yaml(path: Path) -> object:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML; fix the syntax") from exc


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` with ``yaml.safe_load`` and validate it as ``model``."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, str(path))) from exc
