"""Finding and loading target profiles."""

from __future__ import annotations

import difflib
from pathlib import Path

from edgekd.config.loading import load_model
from edgekd.config.target_profile import TargetProfile
from edgekd.core.errors import ConfigError

TARGETS_DIR = Path(__file__).resolve().parents[2] / "targets"


def profile_paths(targets_dir: Path = TARGETS_DIR) -> dict[str, Path]:
    return {p.stem: p for p in sorted(targets_dir.glob("*.yaml"))}


def load_target(name_or_path: str, targets_dir: Path = TARGETS_DIR) -> TargetProfile:
    """A profile by name (``targets/<name>.yaml``) or by path to a YAML file."""
    if len(name_or_path) > 1000:
        raise ConfigError(f"target '{name_or_path[:40]}...' is {len(name_or_path):,} characters; pass a name or path")
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        profile = load_model(p, TargetProfile)
    else:
        known = profile_paths(targets_dir)
        if name_or_path not in known:
            close = difflib.get_close_matches(name_or_path, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown target '{name_or_path}'{hint}; known targets: {', '.join(known)}")
        p = known[name_or_path]
        profile = load_model(p, TargetProfile)
    if profile.name != p.stem:
        raise ConfigError(f"{p}: key 'name' is '{profile.name}' but the file is named '{p.stem}.yaml'")
    return profile


def load_all(targets_dir: Path = TARGETS_DIR) -> list[TargetProfile]:
    return [load_target(name, targets_dir) for name in profile_paths(targets_dir)]
