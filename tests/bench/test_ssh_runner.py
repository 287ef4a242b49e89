"""SshRunner against a real sshd on 127.0.0.1 (the stand-in board, see conftest.py).

The board's "runtime" is this virtualenv's python; /usr/bin/python3 (no numpy, no runtimes) plays a
board without one.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgekd.bench import ssh_runner
from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.runner_base import BenchSettings
from edgekd.bench.ssh_runner import SshOptions, SshRunner
from edgekd.cli.main import main
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError, InputError, RunnerError
from edgekd.core.registry import RUNNERS

from .conftest import free_port, keygen

pytestmark = pytest.mark.board
FAST = {"warmup": 2, "runs": 15}
PROFILE = load_target("cortex-a76")
EDGEKD = str(Path(sys.executable).with_name("edgekd"))


def _runner(board, **overrides) -> SshRunner:
    return SshRunner.from_profile(PROFILE, **board.options(**{"remote_python": sys.executable, **overrides}))


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_ssh_is_registered_and_built_from_the_profile(board):
    assert RUNNERS.get("ssh") is SshRunner
    r = SshRunner.from_profile(PROFILE, host="board.lan")
    assert (r.options.host, r.options.port, r.options.user) == ("board.lan", 22, "pi")  # user from the profile
    assert r.options.remote_python == "python3"  # runtime 'ai-edge-litert' names a package, not an interpreter
    r = SshRunner.from_profile(PROFILE.model_copy(update={"runner": PROFILE.runner.model_copy(
        update={"host": "h", "runtime": "/opt/py/bin/python3"})}))  # fmt: skip
    assert (r.options.host, r.options.remote_python) == ("h", "/opt/py/bin/python3")
    with pytest.raises(ConfigError, match="needs a board"):
        SshRunner.from_profile(PROFILE)
    with pytest.raises(ConfigError, match="--serial does not apply to the ssh runner"):
        SshRunner.from_profile(PROFILE, host="h", serial="abc")


def test_ssh_run_gives_the_same_figures_format_as_local_and_cleans_up(board, tiny_onnx):
    settings = BenchSettings(threads=1, save_outputs=True, **FAST)
    with LocalRunner() as local:
        here = local.run(local.push(tiny_onnx), settings)
    with _runner(board) as remote:
        remote_path = remote.push(tiny_onnx)
        assert len(board.workdirs()) == 1 and Path(remote_path).parent == board.workdirs()[0]
        there = remote.run(remote_path, settings)
    assert board.workdirs() == []  # model and script folder removed on close
    assert there.evidence == "measured-device" and here.evidence == "measured-host"
    assert set(there.to_json()) == set(here.to_json())
    assert set(here.extra) <= set(there.extra)  # same facts, plus where it ran
    assert there.extra["runner"] == "ssh" and there.extra["host"] == "127.0.0.1"
    assert len(there.samples_ms) == FAST["runs"] and all(s > 0 for s in there.samples_ms)
    assert there.runtime == here.runtime and there.threads == 1
    assert there.outputs is not None and there.outputs.shape == here.outputs.shape == (1, 10)
    assert abs(there.outputs - here.outputs).max() < 1e-6  # same model, same seed, same inputs


def test_cli_bench_over_ssh_writes_json_atomically(board, tiny_onnx, tmp_path, capsys):
    out = tmp_path / "res" / "result.json"
    args = ["bench", str(tiny_onnx), "-t", "cortex-a76", *board.cli_args(), "--remote-python", sys.executable,
            "--runs", "12", "--warmup", "1", "--input", "calibration", "--batch", "2", "--json",
            "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    assert written == printed
    assert printed["evidence"] == "measured-device" and printed["runner"] == "ssh" and printed["batch"] == 2
    assert printed["run"]["extra"]["input_source"] == "npy" and printed["run"]["extra"]["input_shapes"]["x"][0] == 2
    assert printed["stats"]["runs"] >= 12 and printed["stats"]["p50_ms"] > 0
    assert [p.name for p in out.parent.iterdir()] == ["result.json"]
    assert board.workdirs() == []


def test_killing_the_board_mid_run_is_a_clean_error_and_writes_nothing(fresh_board, tiny_onnx, tmp_path):
    out = tmp_path / "result.json"
    out.write_text("previous result\n")
    args = ["bench", str(tiny_onnx), "-t", "cortex-a76", *fresh_board.cli_args(), "--remote-python", sys.executable,
            "--runs", "5", "--min-seconds", "60", "-o", str(out)]  # fmt: skip
    # The real command in its own process, so stderr is exactly what a user sees (logging configured).
    proc = subprocess.Popen([EDGEKD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any((d / "run.pid").is_file() for d in fresh_board.workdirs()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the benchmark is timing now
        assert proc.poll() is None
        fresh_board.kill()
        t_kill = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ssh benchmark on root@127.0.0.1:") and "failed after 2 attempt(s)" in lines[0]
    assert lines[0].endswith("connection refused")  # the one clean retry found the board gone
    assert time.monotonic() - t_kill < 30  # not the 60 s the run would have taken
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh-board", "result.json"]  # no temp file left


def test_unreachable_board_is_exit_3_after_one_retry(tiny_onnx, tmp_path, capsys, caplog):
    args = ["bench", str(tiny_onnx), "-t", "cortex-a76", "--runner", "ssh", "--host", "127.0.0.1", "--port",
            str(free_port()), "--known-hosts", str(tmp_path / "kh")]  # fmt: skip
    with caplog.at_level("INFO", logger="edgekd"):
        assert main(["-v", *args]) == 3  # -v: the retry notice is logged at INFO
    line = _error_line(capsys)
    assert "error: ssh connecting on pi@127.0.0.1:" in line and "failed after 2 attempt(s): connection refused" in line
    assert any("retrying once" in r.message for r in caplog.records)


def test_wrong_key_is_exit_3_without_retry(board, tiny_onnx, tmp_path, capsys, caplog):
    other = keygen(tmp_path / "other_key")
    args = ["bench", str(tiny_onnx), "-t", "cortex-a76", *board.cli_args(), "--key-file", str(other)]
    with caplog.at_level("INFO", logger="edgekd"):
        assert main(["-v", *args]) == 3  # -v: the retry notice is logged at INFO
    line = _error_line(capsys)
    assert "refused key authentication with" in line and str(other) in line and "authorized_keys" in line
    assert not any("retrying" in r.message for r in caplog.records)


def test_changed_host_key_is_refused(board, tiny_onnx, tmp_path, capsys):
    impostor = keygen(tmp_path / "impostor").with_suffix(".pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{board.port} {impostor[0]} {impostor[1]}\n")
    args = ["bench", str(tiny_onnx), "-t", "cortex-a76", *board.cli_args(), "--known-hosts", str(known),
            "--trust-on-first-use"]  # fmt: skip
    assert main(args) == 3
    line = _error_line(capsys)
    assert "does not match" in line and "ssh-keygen" in line
    assert known.read_text().split()[2] == impostor[1]  # never overwritten, even with --trust-on-first-use


def test_unknown_host_needs_trust_on_first_use(board, tiny_onnx, tmp_path, capsys):
    known = tmp_path / "ssh" / "known_hosts"
    runner = _runner(board, known_hosts=known)
    with pytest.raises(RunnerError, match=r"is not in .*known_hosts.*ssh-keyscan.*--trust-on-first-use"):
        runner.connect()
    assert not known.exists()
    with _runner(board, known_hosts=known, trust_on_first_use=True) as r:
        r.run(r.push(tiny_onnx), BenchSettings(**FAST))
    assert known.read_text().split()[:2] == [f"[127.0.0.1]:{board.port}", "ssh-ed25519"]
    assert known.read_text().split()[2] == board.known_hosts.read_text().split()[2]
    with _runner(board, known_hosts=known) as r:  # now known: no flag needed
        assert r.run(r.push(tiny_onnx), BenchSettings(**FAST)).evidence == "measured-device"


def test_board_without_the_runtime_says_what_to_install(board, fake_tflite, capsys):
    args = ["bench", str(fake_tflite), "-t", "cortex-a76", *board.cli_args(), "--remote-python", "/usr/bin/python3"]
    assert main(args) == 3
    line = _error_line(capsys)
    assert line == (f"error: ssh board root@127.0.0.1:{board.port}: /usr/bin/python3 lacks numpy, ai-edge-litert; "
                    "install with `/usr/bin/python3 -m pip install numpy ai-edge-litert`")  # fmt: skip
    assert board.workdirs() == []  # cleaned up after the error too


def test_board_without_python(board, tiny_onnx):
    runner = _runner(board, remote_python="/nonexistent/python3")
    with pytest.raises(RunnerError, match=r"/nonexistent/python3 not found on root@127.0.0.1:\d+; .*--remote-python"):
        runner.connect()
    runner.close()


def test_bad_input_is_exit_2_before_connecting(tiny_onnx, tmp_path, capsys):
    unreachable = ["--runner", "ssh", "--host", "127.0.0.1", "--port", str(free_port())]
    assert main(["bench", str(tmp_path / "missing.onnx"), "-t", "cortex-a76", *unreachable]) == 2
    assert _error_line(capsys) == f"error: model not found: {tmp_path / 'missing.onnx'}"
    assert main(["bench", str(tiny_onnx), "-t", "cortex-a76", *unreachable, "--key-file", str(tmp_path / "k")]) == 2
    assert _error_line(capsys) == f"error: ssh key file not found: {tmp_path / 'k'}"
    (tmp_path / "notakey").write_text("hello\n")
    assert (
        main(["bench", str(tiny_onnx), "-t", "cortex-a76", *unreachable, "--key-file", str(tmp_path / "notakey")]) == 2
    )
    assert "is not a usable private key" in _error_line(capsys)
    assert main(["bench", str(tiny_onnx), "-t", "cortex-a76", *unreachable, "--serial", "x"]) == 2
    assert "--serial does not apply to the ssh runner" in _error_line(capsys)


def test_timeout_stops_the_remote_process(board, tiny_onnx):
    runner = _runner(board, timeout=3)
    with runner, pytest.raises(RunnerError, match=r"timed out after 3 s; raise --timeout"):
        remote = runner.push(tiny_onnx)
        pid_file = Path(remote).parent / "run.pid"
        try:
            runner.run(remote, BenchSettings(min_seconds=120, **FAST))
        finally:
            pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
    assert board.workdirs() == []


def test_one_clean_retry_after_a_dropped_connection(board, tiny_onnx, monkeypatch):
    calls = {"n": 0}
    real_exec = SshRunner._exec

    def flaky_exec(self, command, timeout_s):
        if "bench_script.py" in command and calls["n"] == 0:
            calls["n"] += 1
            self._client.get_transport().close()  # the connection drops just as the run starts
        return real_exec(self, command, timeout_s)

    monkeypatch.setattr(SshRunner, "_exec", flaky_exec)
    with _runner(board) as r:
        result = r.run(r.push(tiny_onnx), BenchSettings(**FAST))
    assert calls["n"] == 1 and len(result.samples_ms) == FAST["runs"]
    assert board.workdirs() == []


def test_options_and_key_checks():
    opts = SshOptions(host="h", port=2222, user="pi")
    assert opts.where == "pi@h:2222"
    assert opts.known_hosts_path == Path("~/.ssh/known_hosts").expanduser()
    with pytest.raises(InputError, match="ssh key file not found"):
        SshRunner(SshOptions(host="h", key_file=Path("/nonexistent/key"))).connect()
    assert ssh_runner.WORKDIR_PREFIX == "edgekd-bench-"


def test_benchmark_killed_on_the_board_is_not_mistaken_for_a_dropped_connection(board, tiny_onnx):
    def kill_when_running(workdir: Path) -> None:
        deadline = time.monotonic() + 60
        while not (workdir / "run.pid").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(int((workdir / "run.pid").read_text()), signal.SIGKILL)  # e.g. the board's OOM killer

    with _runner(board) as r:
        remote = r.push(tiny_onnx)
        killer = threading.Thread(target=kill_when_running, args=(Path(remote).parent,))
        killer.start()
        with pytest.raises(RunnerError, match=r"was killed by a signal \(out of memory\?\)"):
            r.run(remote, BenchSettings(min_seconds=60, **FAST))
        killer.join()
    assert board.workdirs() == []
