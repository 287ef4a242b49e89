"""ci/build_and_gate.sh: the per-target CI step. `edgekd build` is replaced by a stand-in that writes a
hand-made report.json and exits with a chosen code; `edgekd gate` is the real command."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.gate.report_factory import make_report
from tests.gate.test_junit import check_structure

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "build_and_gate.sh"

FAKE_EDGEKD = f"""#!{sys.executable}
import json, os, shutil, sys
if sys.argv[1] == "build":
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    out = sys.argv[sys.argv.index("--out") + 1]
    if os.environ.get("FAKE_REPORT"):
        os.makedirs(out, exist_ok=True)
        shutil.copy(os.environ["FAKE_REPORT"], os.path.join(out, "report.json"))
    sys.exit(int(os.environ["FAKE_BUILD_EXIT"]))
sys.path.insert(0, {str(ROOT)!r})
from edgekd.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def ci(tmp_path):
    """Run the script in ``tmp_path`` with the stand-in build: ``ci(report, build_exit, **env) -> (code, out_dir)``."""
    fake = tmp_path / "fake-edgekd"
    fake.write_text(FAKE_EDGEKD)
    fake.chmod(0o755)

    def run(report: dict | None, build_exit: int = 0, **extra_env: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKD_")}
        env.update(EDGEKD=str(fake), FAKE_LOG=str(tmp_path / "build.log"), FAKE_BUILD_EXIT=str(build_exit))
        if report is not None:
            src = tmp_path / "made-report.json"
            src.write_text(json.dumps(report))
            env["FAKE_REPORT"] = str(src)
        env.update(extra_env)
        return subprocess.run(["bash", str(SCRIPT), "x86-64-host"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    return run


def junit_cases(tmp_path: Path) -> dict[str, ET.Element]:
    root = ET.parse(tmp_path / "build" / "x86-64-host" / "gate-junit.xml").getroot()
    check_structure(root)
    return {c.get("name"): c for c in root.iter("testcase")}


def test_passing_build_exits_0_with_junit(ci, tmp_path):
    proc = ci(make_report())
    assert proc.returncode == 0, proc.stderr
    cases = junit_cases(tmp_path)
    assert "latency" in cases and all(c.find("failure") is None for c in cases.values())
    assert "no baseline report" in proc.stdout
    (build_args,) = [json.loads(line) for line in (tmp_path / "build.log").read_text().splitlines()]
    assert build_args == ["build", "--target", "x86-64-host", "--out", "build/x86-64-host", "--no-progress"]


def test_failed_gate_exits_1_and_still_writes_junit(ci, tmp_path):
    proc = ci(make_report(host=(20.0, 21.0, 22.0)), build_exit=1)
    assert proc.returncode == 1
    assert junit_cases(tmp_path)["latency"].find("failure") is not None


@pytest.mark.parametrize("code", [2, 3])
def test_build_errors_stop_with_their_code_before_gating(ci, tmp_path, code):
    proc = ci(make_report(), build_exit=code)
    assert proc.returncode == code
    assert f"failed with exit code {code}" in proc.stderr
    assert not (tmp_path / "build" / "x86-64-host" / "gate-junit.xml").exists()


def test_build_failure_without_a_report_is_a_failure(ci, tmp_path):
    proc = ci(None, build_exit=1)
    assert proc.returncode == 1 and "without build/x86-64-host/report.json" in proc.stderr


def test_baseline_regression_fails_unless_within_the_allowed_regression(ci, tmp_path):
    base = tmp_path / "base" / "x86-64-host"
    base.mkdir(parents=True)
    (base / "report.json").write_text(json.dumps(make_report(host=(4.0, 5.0, 6.0))))
    slower = make_report(host=(4.6, 5.0, 6.0))  # p50 15 % slower than the baseline, still within budget
    proc = ci(slower, EDGEKD_BASELINE_DIR="base")
    assert proc.returncode == 1 and "against the baseline" in proc.stdout
    assert junit_cases(tmp_path)["baseline:latency"].find("failure") is not None
    assert ci(slower, EDGEKD_BASELINE_DIR="base", EDGEKD_MAX_REGRESSION="20%").returncode == 0
    assert ci(slower, EDGEKD_BASELINE_DIR="elsewhere").returncode == 0  # no baseline there: budgets only


def test_rules_file_and_extra_build_options_are_passed_on(ci, tmp_path):
    (tmp_path / "gate.yaml").write_text("rules:\n  size: 0.5MB\n")
    proc = ci(make_report(size_bytes=1_000_000), EDGEKD_GATE_RULES="gate.yaml", EDGEKD_BUILD_ARGS="--epochs 2")
    assert proc.returncode == 1
    assert junit_cases(tmp_path)["size"].find("failure") is not None
    assert json.loads((tmp_path / "build.log").read_text())[-2:] == ["--epochs", "2"]


def test_usage_error_exits_2():
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "usage:" in proc.stderr
