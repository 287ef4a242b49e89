"""The one stage runner: computed then reused, nothing half-written, a killed run's leftovers removed."""

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgekd.bench.runner_base import BenchSettings
from edgekd.bench.stage import BenchStage
from edgekd.config.targets import load_target
from edgekd.core.stage import Stage, StageSpec
from edgekd.pipeline.cache import StageCache, remove_interrupted
from edgekd.pipeline.stage_runner import StageRunner

ROOT = Path(__file__).resolve().parents[2]


def counting_stage(calls: list, value: str = "42", name: str = "answer") -> StageSpec:
    def write(out: Path) -> None:
        calls.append(value)
        (out / "a.txt").write_text(value)

    return StageSpec(name, {"value": value}, write, lambda entry: (entry / "a.txt").read_text())


def test_computed_once_then_reused_with_the_original_time(tmp_path, caplog):
    calls: list = []
    runner = StageRunner(StageCache(tmp_path))
    with caplog.at_level(logging.INFO, logger="edgekd.pipeline.stage_runner"):
        assert runner.run(counting_stage(calls)) == "42"
        again = StageRunner(StageCache(tmp_path))  # a later run of the same output folder
        assert again.run(counting_stage(calls)) == "42"
    assert calls == ["42"]
    assert [r.status for r in runner.records + again.records] == ["computed", "reused"]
    assert again.records[0].computed_seconds == runner.records[0].computed_seconds is not None
    assert "stage answer: computed" in caplog.text and "stage answer: reused" in caplog.text
    assert isinstance(counting_stage(calls), Stage)


def test_a_changed_input_recomputes(tmp_path):
    calls: list = []
    runner = StageRunner(StageCache(tmp_path))
    runner.run(counting_stage(calls, "1"))
    runner.run(counting_stage(calls, "2"))
    assert calls == ["1", "2"] and [r.status for r in runner.records] == ["computed", "computed"]


def test_a_failing_stage_publishes_nothing(tmp_path):
    def write(out: Path) -> None:
        (out / "half.txt").write_text("half")
        raise RuntimeError("interrupted")

    runner = StageRunner(StageCache(tmp_path))
    with pytest.raises(RuntimeError):
        runner.run(StageSpec("broken", {}, write))
    assert list(tmp_path.iterdir()) == [] and runner.records == []


def test_only_edgekd_temporary_names_are_removed(tmp_path):
    stages, arts = tmp_path / ".stages", tmp_path / "artifacts"
    (stages / ".distill-k2j4_x9a").mkdir(parents=True)  # a killed stage's temp folder
    (stages / "distill-0123456789abcdef").mkdir()  # a completed entry
    (stages / "distill-0123456789abcdef" / "_complete.json").write_text("{}")
    arts.mkdir()
    (arts / ".student.pt.tmp").write_text("half")
    (tmp_path / ".report.json.ab12cd34.tmp").write_text("half")
    keep = [tmp_path / "notes.txt", tmp_path / ".git", arts / "student.pt", stages / "mine"]
    for p in keep:
        p.write_text("user")
    removed = remove_interrupted(tmp_path)
    assert sorted(p.name for p in removed) == [".distill-k2j4_x9a", ".report.json.ab12cd34.tmp", ".student.pt.tmp"]
    assert all(p.exists() for p in keep) and (stages / "distill-0123456789abcdef").exists()


SLOW_STAGE = """
import sys, time
from pathlib import Path
from edgekd.core.stage import StageSpec
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.stage_runner import StageRunner

def write(out):
    (out / "partial.bin").write_bytes(b"x" * 1000)
    print("writing", flush=True)
    time.sleep(60)

StageRunner(StageCache(Path(sys.argv[1]) / ".stages")).run(StageSpec("slow", {}, write))
"""


def test_kill_9_mid_stage_then_resume_leaves_no_temporary_file(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STAGE, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    leftovers = [p for p in (tmp_path / ".stages").iterdir() if p.name.startswith(".slow-")]
    assert len(leftovers) == 1  # what kill -9 leaves behind
    remove_interrupted(tmp_path)
    calls: list = []
    runner = StageRunner(StageCache(tmp_path / ".stages"))
    runner.run(counting_stage(calls, name="slow"))
    assert sorted(p.name for p in (tmp_path / ".stages").iterdir())[0].startswith("slow-")
    assert not [p for p in (tmp_path / ".stages").rglob("*") if p.name.startswith(".")]


def test_bench_key_names_the_measuring_machine():
    settings = BenchSettings(threads=1, warmup=1, runs=5)
    a76 = load_target("cortex-a76")
    board_a = a76.model_copy(update={"runner": a76.runner.model_copy(update={"host": "pi-a", "user": "u"})})
    board_b = a76.model_copy(update={"runner": a76.runner.model_copy(update={"host": "pi-b", "user": "u"})})
    key_a = BenchStage.for_profile(Path("m.tflite"), "0" * 64, board_a, settings).key()
    key_b = BenchStage.for_profile(Path("m.tflite"), "0" * 64, board_b, settings).key()
    local = BenchStage(Path("m.tflite"), "0" * 64, a76, settings, "local").key()
    assert key_a["machine"] != key_b["machine"] and key_a["runner"] == "ssh"
    assert local["runner"] == "local" and local["machine"].startswith("host:")
