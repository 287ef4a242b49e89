"""Bounded YAML/JSON loading into pydantic models with one-line, actionable errors.

Every file a user hands edgekd (configs, target profiles, gate rules, reports, baselines, sidecars)
is read with a size cap; YAML is composed first and refused when its aliases would expand past a
node limit (a "billion laughs" file is a few hundred bytes), when it nests too deeply, or when it
names a tag ``yaml.safe_load`` cannot build (``!!python/object`` and friends). Error messages quote
input only through :func:`short_repr`, so no message grows with the input.
"""

from __future__ import annotations

import difflib
import json
import re
import reprlib
from pathlib import Path
from typing import TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from edgekd.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

MAX_YAML_BYTES = 1 << 20  # 1 MiB: the largest bundled profile is ~3 KB
MAX_JSON_BYTES = 64 << 20  # reports and baselines are < 1 MB; sidecars far less
MAX_YAML_NODES = 100_000  # nodes after alias expansion

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3


def short_repr(value: object) -> str:
    """``repr`` cut to at most 120 characters, whatever the size or depth of ``value``."""
    return _short(_REPR.repr(value), 120)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_bounded(path: Path, max_bytes: int, what: str = "file") -> str:
    """The UTF-8 text of ``path``; ConfigError when unreadable, larger than ``max_bytes`` or not text."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ConfigError(f"{path}: not a regular file (a pipe or device?); pass the {what} itself")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: {what} is larger than {max_bytes // 1024} KiB; is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not UTF-8 text (byte {exc.start}); pass a text file") from exc


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
    key = _short(".".join(str(p) for p in loc), 120) or "(top level)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        close = difflib.get_close_matches(str(loc[-1])[:100], allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{source}: unknown key '{key}'{hint}; allowed keys here: {', '.join(allowed)}{more}"
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{source}: key '{key}' = {short_repr(err.get('input'))} is not allowed; expected {expected}{more}"
    if err["type"] == "missing":
        return f"{source}: required key '{key}' is missing{more}"
    return f"{source}: key '{key}': {_short(err['msg'], 160)} (got {short_repr(err.get('input'))}){more}"


def _expanded_size(node: yaml.Node, source: str) -> int:
    """Nodes in ``node`` with every alias expanded; ConfigError past MAX_YAML_NODES or on a cycle."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{source}: a YAML alias refers to itself; remove the recursive anchor")
        open_nodes.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(c) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        open_nodes.discard(key)
        if total > MAX_YAML_NODES:
            raise ConfigError(
                f"{source}: YAML aliases expand to more than {MAX_YAML_NODES:,} values; write the values out"
            )
        sizes[key] = total
        return total

    return size(node)


def parse_yaml(text: str, source: str) -> object:
    """``yaml.safe_load`` with limits on alias expansion and nesting; one-line ConfigError otherwise."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source)
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        tag = re.search(r"tag '([^']*)'", str(exc.problem or ""))
        if tag is None:
            raise ConfigError(f"{source}:{where} is not plain YAML ({_short(str(exc.problem))}); fix it") from None
        name = _short(tag.group(1).replace("tag:yaml.org,2002:", "!!"), 60)
        raise ConfigError(
            f"{source}:{where} uses the unsafe or unknown YAML tag '{name}'; edgekd reads plain YAML only, "
            "remove the tag"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}:{where} is not valid YAML; fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nests too deeply; flatten it") from None
    finally:
        loader.dispose()


def load_yaml(path: Path) -> object:
    """A YAML file (at most MAX_YAML_BYTES, aliases bounded), as plain Python data."""
    return parse_yaml(read_bounded(path, MAX_YAML_BYTES, "YAML file"), str(path))


def load_json(path: Path, max_bytes: int = MAX_JSON_BYTES, what: str = "JSON file") -> object:
    """A JSON file (at most ``max_bytes``; NaN/Infinity refused) as plain Python data; ConfigError otherwise."""

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    text = read_bounded(path, max_bytes, what)
    try:
        return json.loads(text, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: {what} is not valid JSON ({_short(str(exc))}); pass one edgekd wrote") from None


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` with :func:`load_yaml` and validate it as ``model``."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, str(path))) from exc
