"""The stand-in Arm board: an sshd on loopback whose python3 is edgekd's arm64 emulator.

`edgekd bench --runner ssh` really pushes a .tflite, runs aarch64 LiteRT "on the board" and reads the
timings back; because the board is the emulator, the figures are labelled measured-emulated, never
measured-device (emulated time says nothing about speed).
"""

import json

import pytest
import torch

from edgekd.cli.main import main

from .conftest import TinyNet

pytestmark = [pytest.mark.board, pytest.mark.emulator]


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    import litert_torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("arm-models") / "tiny.tflite"
    litert_torch.convert(TinyNet().eval(), (torch.randn(1, 1, 28, 28),)).export(str(path))
    return path


def test_bench_on_the_arm_stand_in_runs_aarch64_and_says_emulated(arm_board, tiny_tflite, capsys):
    args = ["bench", str(tiny_tflite), "-t", "cortex-a76", *arm_board.cli_args(), "--runs", "5", "--warmup", "1",
            "--json"]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["runner"] == "ssh"
    assert printed["run"]["extra"]["machine"] == "aarch64"  # the script ran on the emulated Arm CPU
    assert printed["run"]["extra"]["emulated"] == "cortex-a76"
    assert printed["evidence"] == "measured-emulated"  # not measured-device: the "board" is an emulator
    assert printed["stats"]["runs"] >= 5
    assert arm_board.workdirs() == []


def test_a_real_host_python_is_not_reported_as_emulated(board, tiny_tflite, capsys):
    import sys

    args = ["bench", str(tiny_tflite), "-t", "cortex-a76", *board.cli_args(), "--remote-python", sys.executable,
            "--runs", "3", "--warmup", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"]["extra"]["emulated"] is None and printed["evidence"] == "measured-device"
