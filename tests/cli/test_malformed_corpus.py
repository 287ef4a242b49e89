"""The malformed-input corpus: every case is generated here, run through ``edgekd`` in-process, and must

* exit 2 (bad input), with ONE line on stderr that starts with ``error:``, holds no ``Traceback`` and
  no ``internal error`` (the CLI's one-line report of an unexpected exception) and names the problem
  (``needle``, case-insensitive);
* finish within ``CASE_TIMEOUT_S`` (SIGALRM; a hang fails the case, it does not stall the suite);
* leave the case folder byte-identical: nothing written, changed or removed in the output folder
  (which holds a file from an "earlier run") or anywhere next to the inputs. A pickle payload or a
  factory that ran would leave a marker file there.

Cases are grouped by category (the test id starts with it); docs/hostile-input.md gives the count per
category.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgekd.cli.main import main
from tests.cli import hostile_inputs as h
from tests.cli.corpus_files import CHECKPOINT, DATASET, EXPORTED, IMAGE_FOLDER, SSH
from tests.cli.corpus_options import DESC, FACTORY, NUMBERS, PATHS, REPORTS, YAML
from tests.cli.corpus_support import CASE_TIMEOUT_S, Case, Ctx

CATEGORIES = {
    "dataset": DATASET,
    "image-folder": IMAGE_FOLDER,
    "checkpoint": CHECKPOINT,
    "exported-model": EXPORTED,
    "ssh-runner": SSH,
    "yaml-config": YAML,
    "numbers": NUMBERS,
    "paths": PATHS,
    "factory": FACTORY,
    "report": REPORTS,
}
ALL = [(f"{cat}/{case.id}", case) for cat, cases in CATEGORIES.items() for case in cases]


class CaseTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so the CLI's handlers cannot swallow it."""


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (folders as 'dir', links as their target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> h.Assets:
    # Import what the commands import, so a case's time limit measures the case, not a cold import.
    import edgekd.bench.bench_run
    import edgekd.distill.distill_job
    import edgekd.export.standalone
    import edgekd.gate.report_gate
    import edgekd.pipeline.orchestrator  # noqa: F401

    return h.make_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """The case folder as working directory; sys.path and sys.modules restored afterwards."""
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    monkeypatch.chdir(case_dir)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield case_dir
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        if name.startswith(("fac_", "evil_factory")):
            del sys.modules[name]


def _alarm(signum, frame):
    raise CaseTimeout


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=cid) for cid, case in ALL],
)
def test_malformed_input_is_refused_cleanly(case: Case, assets, isolated, capsys):
    ctx = Ctx(isolated, assets)
    out = isolated / "out"
    out.mkdir()
    (out / "earlier-run.txt").write_text("a file from an earlier, good run")
    argv = [str(a) for a in case.argv(ctx)]
    before = snapshot(isolated)
    capsys.readouterr()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        code = main(argv)
    except CaseTimeout:
        pytest.fail(f"hang: still running after {CASE_TIMEOUT_S} s: edgekd {' '.join(argv)[:200]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}, stderr: {err[:500]}"
    assert err.startswith("error: ") and "\n" not in err, err[:2000]
    assert "Traceback" not in err and "internal error" not in err, err[:500]
    assert len(err) < 1500, f"message of {len(err)} characters"
    assert case.needle.lower() in err.lower(), err[:500]
    assert snapshot(isolated) == before, "files were written, changed or removed"


def test_corpus_size_and_categories():
    """The issue asks for at least 100 generated cases; ids are unique; the doc's table matches."""
    ids = [cid for cid, _ in ALL]
    assert len(ids) >= 100 and len(ids) == len(set(ids))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "hostile-input.md").read_text()
    for cat, cases in CATEGORIES.items():
        assert f"| {cat} | {len(cases)} |" in doc, f"docs/hostile-input.md: count for {cat} is not {len(cases)}"
    assert f"| total | {len(ids)} |" in doc


@pytest.mark.parametrize(
    "args",
    [["targets", "show", "{bomb}"], ["build", "--config", "{cfg}", "--out", "out", "--no-progress"]],
    ids=["targets-show-alias-bomb", "build-config-alias-bomb"],
)
def test_alias_bombs_do_not_hang_a_real_process(tmp_path, args):
    """In a real interpreter (a hang cannot hide behind an in-process alarm): one line, exit 2, fast."""
    from edgekd.config.targets import TARGETS_DIR

    text = (TARGETS_DIR / "x86-64-host.yaml").read_text()
    bomb = tmp_path / "x86-64-host.yaml"
    bomb.write_text(text.replace(DESC, "description:\n" + h.alias_bomb() + "#", 1))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("distill:\n  seed:\n" + h.alias_bomb(4))
    argv = [a.format(bomb=bomb, cfg=cfg) for a in args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "edgekd", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "aliases" in err, err[-2000:]
    assert not (tmp_path / "out").exists()
