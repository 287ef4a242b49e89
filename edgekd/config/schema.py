"""JSON schema of target profiles, generated from :class:`TargetProfile`.

The schema is committed as ``targets/schema.json`` so editors can validate and complete
``targets/*.yaml`` (each profile names it in a ``yaml-language-server`` comment). A test checks the
committed file matches the models; after changing ``target_profile.py`` regenerate it with::

    python -m edgekd.config.schema            # writes targets/schema.json
    python -m edgekd.config.schema OUT.json   # or anywhere else

Example:
    >>> schema = target_profile_schema()
    >>> schema["title"]
    'TargetProfile'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekd.config.target_profile import TargetProfile
from edgekd.config.targets import TARGETS_DIR
from edgekd.core.atomic import atomic_write_text

SCHEMA_PATH = TARGETS_DIR / "schema.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "python -m edgekd.config.schema"


def target_profile_schema() -> dict:
    """The JSON schema (draft 2020-12) of one ``targets/<name>.yaml`` file."""
    return {"$schema": JSON_SCHEMA_DIALECT, **TargetProfile.model_json_schema()}


def render_schema() -> str:
    """The schema as the exact text committed in ``targets/schema.json``."""
    return json.dumps(target_profile_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write the schema to ``path`` (atomically) and return the path."""
    return atomic_write_text(Path(path), render_schema())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print(f"usage: {REGENERATE} [OUT.json]", file=sys.stderr)
        return 2
    out = write_schema(Path(args[0]) if args else SCHEMA_PATH)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
