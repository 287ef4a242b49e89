"""The runner-independent layer: CV repeat/flag rule and the report."""

import json

import pytest

from edgekd.bench.bench_run import BenchReport, run_checked
from edgekd.bench.runner_base import BenchSettings, Runner, RunResult
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError
from edgekd.core.registry import RUNNERS


class ScriptedRunner:
    """Returns prepared sample lists in order (one per run call)."""

    def __init__(self, runs: list[list[float]]) -> None:
        self.runs, self.calls = list(runs), 0

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        self.calls += 1
        return RunResult(self.runs.pop(0), 1.0, None, "fake 1.0", "measured-device", settings.threads)


STEADY = [10.0, 10.1, 9.9, 10.0]
NOISY = [5.0, 20.0, 5.0, 20.0]
LESS_NOISY = [8.0, 12.0, 8.0, 12.0]


def test_a_steady_run_is_not_repeated():
    runner = ScriptedRunner([STEADY, NOISY])
    checked = run_checked(runner, "m", BenchSettings(), max_cv=0.15, repeats=2)
    assert runner.calls == 1 and not checked.unstable and checked.result.samples_ms == STEADY


def test_an_unstable_run_is_repeated_and_the_steadier_attempt_kept():
    runner = ScriptedRunner([NOISY, STEADY])
    checked = run_checked(runner, "m", BenchSettings(), max_cv=0.15, repeats=1)
    assert runner.calls == 2 and not checked.unstable and checked.result.samples_ms == STEADY
    assert checked.cvs[0] > 0.15 > checked.cvs[1]


def test_a_run_that_stays_unstable_is_flagged():
    runner = ScriptedRunner([NOISY, LESS_NOISY, NOISY])
    checked = run_checked(runner, "m", BenchSettings(), max_cv=0.15, repeats=2)
    assert runner.calls == 3 and checked.unstable and checked.result.samples_ms == LESS_NOISY
    assert checked.stats.cv == min(checked.cvs) > 0.15
    report = BenchReport("m.onnx", "t", "fake", checked, BenchSettings())
    data = json.loads(json.dumps(report.to_json()))
    assert data["unstable"] is True and data["attempt_cvs"] == checked.cvs and data["evidence"] == "measured-device"


def test_bad_limits():
    with pytest.raises(ConfigError):
        run_checked(ScriptedRunner([STEADY]), "m", BenchSettings(), max_cv=0, repeats=1)


# Contract over every registered runner: `edgekd bench` passes the options the user gave to from_profile.
_ARM_BOARD = load_target("cortex-a76")
_ARM_BOARD = _ARM_BOARD.model_copy(update={"runner": _ARM_BOARD.runner.model_copy(update={"host": "board.lan"})})


@pytest.mark.parametrize("name", RUNNERS.names())
def test_every_runner_refuses_options_it_does_not_take(name):
    with pytest.raises(ConfigError, match="--no-such-option does not apply to the"):
        RUNNERS.get(name).from_profile(_ARM_BOARD, no_such_option=1)


@pytest.mark.parametrize("name", RUNNERS.names())
def test_every_runner_takes_a_timeout_and_states_its_evidence(name):
    runner = RUNNERS.get(name).from_profile(_ARM_BOARD, timeout=5.0)
    assert isinstance(runner, Runner)
    assert runner.evidence in {"measured-device", "measured-emulated", "measured-host"}
    assert runner.capabilities and runner.capabilities <= {"latency", "memory", "energy"}
