"""The package layering (pyproject ``[tool.importlinter]``) holds: import-linter's contracts are kept."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_layering_contracts_are_kept():
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 kept, 0 broken" in run.stdout


def test_a_stage_package_importing_the_pipeline_breaks_the_contract(tmp_path):
    """The check can fail: a copy of the package where prune imports pipeline is refused."""
    import shutil

    shutil.copytree(ROOT / "edgekd", tmp_path / "edgekd", ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "edgekd" / "prune" / "bad_import.py").write_text("from edgekd.pipeline import inputs  # noqa\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "edgekd.prune.bad_import -> edgekd.pipeline.inputs" in run.stdout
