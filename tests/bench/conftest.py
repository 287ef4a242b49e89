"""A stand-in SSH board: our own sshd on 127.0.0.1 with its own host key, client key and temp folder.

The fixture owns every process it starts: it stops sshd and its session processes by PID (walking
/proc for descendants), never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekd-test", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (children first found by PPid in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class StandInBoard:
    """One running sshd: where it listens and the files a client needs."""

    root: Path
    port: int
    key: Path
    known_hosts: Path
    board_tmp: Path
    proc: subprocess.Popen
    remote_python: Path | None = None  # set for an Arm stand-in (arm_python); None = the host's python3

    def options(self, **overrides) -> dict:
        """``edgekd bench`` runner options that reach this board."""
        opts = {"host": "127.0.0.1", "port": self.port, "user": "root", "key_file": self.key,
                "known_hosts": self.known_hosts}  # fmt: skip
        if self.remote_python is not None:
            opts["remote_python"] = str(self.remote_python)
        opts.update(overrides)
        return opts

    def cli_args(self) -> list[str]:
        args = ["--runner", "ssh", "--host", "127.0.0.1", "--port", str(self.port), "--user", "root",
                "--key-file", str(self.key), "--known-hosts", str(self.known_hosts)]  # fmt: skip
        return args + (["--remote-python", str(self.remote_python)] if self.remote_python else [])

    def workdirs(self) -> list[Path]:
        return sorted(self.board_tmp.glob("edgekd-bench-*"))

    def kill(self) -> None:
        """SIGKILL sshd and every session and command below it (the 'board' dies mid-run)."""
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start_board(root: Path) -> StandInBoard:
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    host_key = keygen(root / "host_key")
    key = keygen(root / "client_key")
    (root / "authorized_keys").write_text(Path(str(key) + ".pub").read_text())
    (root / "authorized_keys").chmod(0o600)
    board_tmp = root / "board-tmp"
    board_tmp.mkdir()
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {root / 'sshd.pid'}\n"
        f"Subsystem sftp internal-sftp\nSetEnv TMPDIR={board_tmp}\nLogLevel ERROR\n"
    )
    known_hosts = root / "known_hosts"
    host_pub = Path(str(host_key) + ".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-p", str(port)], stderr=subprocess.DEVNULL)
    board = StandInBoard(root, port, key, known_hosts, board_tmp, proc)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return board
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            board.kill()
            raise RuntimeError(f"stand-in sshd did not start (exit code {proc.poll()})")
        time.sleep(0.1)


def stop_board(board: StandInBoard) -> None:
    if board.proc.poll() is None:
        board.kill()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    b = start_board(tmp_path_factory.mktemp("board"))
    yield b
    stop_board(b)


def arm_python(root: Path, cpu: str = "cortex-a76") -> Path:
    """A ``python3`` for the stand-in board that is edgekd's arm64 emulator (qemu user mode, fake ``cpu``).

    Pointed to by the ssh runner's ``remote_python``, it makes the stand-in an Arm board: the bench script
    really runs aarch64 LiteRT there, and reports itself emulated (the emulator's marker file).
    """
    from edgekd.bench import emulator_rootfs

    view = emulator_rootfs.sysroot_for(cpu)
    qemu = shutil.which(emulator_rootfs.QEMU)
    if qemu is None:
        pytest.fail(f"{emulator_rootfs.QEMU} is not installed (make setup installs qemu-user-static)")
    wrapper = root / "arm-python3"
    wrapper.write_text(
        f'#!/bin/sh\nexec env -i PATH=/usr/bin:/bin HOME="{root}" TMPDIR="$TMPDIR" LANG=C.UTF-8 '
        f'{qemu} -cpu {cpu} -L "{view}" "{view / emulator_rootfs.PYTHON}" -I "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture(scope="module")
def arm_board(tmp_path_factory):
    """A stand-in Arm board: sshd on loopback whose python3 is the arm64 emulator (needs `edgekd emulator setup`)."""
    b = start_board(tmp_path_factory.mktemp("arm-board"))
    b.remote_python = arm_python(b.root)
    yield b
    stop_board(b)


@pytest.fixture
def fresh_board(tmp_path):
    """A board of its own, for tests that kill it."""
    b = start_board(tmp_path / "fresh-board")
    yield b
    stop_board(b)


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny 1x28x28 → 10 ONNX model with a dynamic batch (fits the bundled calibration images)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    torch.onnx.export(TinyNet().eval(), (torch.randn(1, 1, 28, 28),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})  # fmt: skip
    return path


@pytest.fixture
def fake_tflite(tmp_path) -> Path:
    """A file that passes the local .tflite checks (TFL3 identifier); enough to test a board without a runtime."""
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    return path
