"""SshRunner: benchmark on a board reached over SSH (paramiko); figures are ``measured-device``.

Key authentication only; the board's host key must be in ``known_hosts`` unless the user asks to
trust it on first use. The runner makes a private folder on the board, pushes ``bench_script.py``
and the model there, runs the script with the board's Python and streams its output back, then
removes the folder in :meth:`SshRunner.close` (also after errors). A dropped or refused connection
is retried once, cleanly (reconnect, re-push, re-run); authentication and host-key failures are not.

Example:
    >>> runner = SshRunner(SshOptions(host="pi5.local", user="pi", key_file=Path("~/.ssh/id_ed25519")))
    >>> with runner:  # doctest: +SKIP
    ...     result = runner.run(runner.push(Path("student.tflite")), BenchSettings(runs=100))
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import shlex
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import numpy as np
import paramiko

from edgekd.bench.runner_base import (
    BENCH_SCRIPT,
    BenchSettings,
    Capability,
    Evidence,
    Runner,
    RunResult,
    check_model_file,
    interpreter_from_runtime,
    last_line,
    parse_script_output,
    script_args,
    script_failure,
    take_options,
)
from edgekd.bench.ssh_hostkeys import RejectUnknown, TrustOnFirstUse, UnknownHostKey
from edgekd.core.errors import ConfigError, InputError, RunnerError

if TYPE_CHECKING:
    from edgekd.config.target_profile import TargetProfile

logger = logging.getLogger(__name__)
T = TypeVar("T")

WORKDIR_PREFIX = "edgekd-bench-"
_OPTIONS = {"host", "port", "user", "key_file", "known_hosts", "trust_on_first_use", "remote_python", "timeout"}
# Makes the private folder and proves the interpreter runs; prints the folder's path.
_MKDTEMP = f"import tempfile; print(tempfile.mkdtemp(prefix='{WORKDIR_PREFIX}'))"


@dataclass(frozen=True)
class SshOptions:
    """How to reach one board.

    Attributes:
        host: name or address of the board.
        port: sshd port.
        user: login name; None = the local user name (paramiko's default).
        key_file: private key; None = ssh-agent and the default ``~/.ssh/id_*`` keys.
        known_hosts: file checked (and with ``trust_on_first_use`` extended); None = ``~/.ssh/known_hosts``.
        trust_on_first_use: accept and record an unknown host key (never a changed one).
        remote_python: interpreter on the board that has numpy and the model's runtime.
        connect_timeout_s: TCP connect, banner and authentication timeout.
        timeout_s: wall-clock limit of one benchmark run on the board.
        retries: clean retries after a transient connection failure.
    """

    host: str
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    trust_on_first_use: bool = False
    remote_python: str = "python3"
    connect_timeout_s: float = 10.0
    timeout_s: float = 900.0
    retries: int = 1

    @property
    def where(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()


class _Transient(Exception):
    """A connection failure worth one clean retry (refused, timed out, dropped)."""


class SshRunner(Runner):
    """Runs ``bench_script.py`` on an SSH board with its own Python and runtime.

    Args:
        options: how to reach the board and which interpreter to use there.
    """

    capabilities: frozenset[Capability] = frozenset({"latency", "memory"})
    evidence: Evidence = Evidence.MEASURED_DEVICE

    def __init__(self, options: SshOptions) -> None:
        self.options = options
        self._client: paramiko.SSHClient | None = None
        self._pkey: paramiko.PKey | None = None
        self._workdir: str | None = None
        self._pushed: dict[str, Path] = {}  # remote name -> local file, re-pushed after a reconnect

    @classmethod
    def from_profile(cls, profile: TargetProfile, **options: Any) -> Self:
        """Settings from ``profile.runner`` overridden by options (``host``, ``port``, ``user``, ``key_file``,
        ``known_hosts``, ``trust_on_first_use``, ``remote_python``, ``timeout`` in s).

        ``profile.runner.runtime`` is used as the remote interpreter when it names one (a path or ``python*``).
        """
        opts = take_options("ssh", options, _OPTIONS)
        spec = profile.runner
        host = opts.get("host") or spec.host
        if not host:
            raise ConfigError(
                f"the ssh runner needs a board: pass --host or set runner.host in the {profile.name} profile"
            )
        key_file = opts.get("key_file") or spec.key_file
        return cls(
            SshOptions(
                host=host,
                port=int(opts.get("port") or spec.port or 22),
                user=opts.get("user") or spec.user,
                key_file=Path(key_file).expanduser() if key_file else None,
                known_hosts=Path(opts["known_hosts"]) if opts.get("known_hosts") else None,
                trust_on_first_use=bool(opts.get("trust_on_first_use", False)),
                remote_python=opts.get("remote_python") or interpreter_from_runtime(spec.runtime) or "python3",
                timeout_s=float(opts.get("timeout") or 900.0),
            )
        )

    # -- connection -------------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect (one clean retry) and make the private folder on the board.

        Raises:
            InputError: the key file is missing or unusable.
            RunnerError: unreachable, authentication refused, host key unknown or changed, no Python.
        """
        self._pkey = self._load_key()
        try:
            self._retrying("connecting", self._ensure_ready)
        except BaseException:
            self.close()  # a context manager's __exit__ does not run when __enter__ fails
            raise

    def _load_key(self) -> paramiko.PKey | None:
        path = self.options.key_file
        if path is None:
            return None
        if not path.is_file():
            raise InputError(f"ssh key file not found: {path}")
        try:
            return paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException as exc:
            raise InputError(f"{path} is passphrase-protected; load it into ssh-agent and omit --key-file") from exc
        except (paramiko.SSHException, ValueError, OSError) as exc:
            raise InputError(f"{path} is not a usable private key: {exc}") from exc

    def _open(self) -> paramiko.SSHClient:
        o = self.options
        known = o.known_hosts_path
        client = paramiko.SSHClient()
        if known.is_file():
            client.load_host_keys(str(known))
        client.set_missing_host_key_policy(TrustOnFirstUse(known) if o.trust_on_first_use else RejectUnknown())
        t = o.connect_timeout_s
        try:
            client.connect(o.host, o.port, username=o.user, pkey=self._pkey, allow_agent=self._pkey is None,
                           look_for_keys=self._pkey is None, timeout=t, banner_timeout=t, auth_timeout=t)  # fmt: skip
        except UnknownHostKey as exc:
            client.close()
            raise RunnerError(
                f"{exc.name} is not in {known} (its {exc.key.get_name()} key is {exc.key.fingerprint}); add it with "
                f"`ssh-keyscan -p {o.port} {o.host} >> {known}` or pass --trust-on-first-use"
            ) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise RunnerError(
                f"host key of {o.where} does not match {known} (possible impersonation); if the board was "
                f"reinstalled, run `ssh-keygen -f {known} -R '{exc.hostname}'` and reconnect"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            key = self.options.key_file or "ssh-agent/default keys"
            raise RunnerError(
                f"{o.where} refused key authentication with {key} ({exc}); add the public key to the board's "
                "~/.ssh/authorized_keys or pass the right --key-file"
            ) from None
        except socket.gaierror as exc:
            client.close()
            raise RunnerError(f"cannot resolve board host name {o.host!r}: {exc.strerror}; check --host") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise _Transient(_describe(exc)) from exc
        return client

    def _ensure_ready(self) -> None:
        """Connected, with the private folder made and every pushed file in it."""
        if self._client is not None and _active(self._client):
            return
        self._drop_client()
        self._client = self._open()
        o = self.options
        if self._workdir is None:
            status, out, err = self._exec(f"{shlex.quote(o.remote_python)} -c {shlex.quote(_MKDTEMP)}", 30.0)
            if status == 127:
                raise RunnerError(
                    f"{o.remote_python} not found on {o.where}; install python3 there or pass --remote-python"
                )
            if status != 0 or not out.strip().startswith("/"):
                raise RunnerError(f"cannot make a work folder on {o.where}: {last_line(err) or out.strip()}")
            self._workdir = out.strip().splitlines()[-1]
            self._pushed["bench_script.py"] = BENCH_SCRIPT
        else:
            self._exec(f"mkdir -p {shlex.quote(self._workdir)}", 30.0)
        sftp = self._client.open_sftp()
        try:
            for name, local in self._pushed.items():
                sftp.put(str(local), posixpath.join(self._workdir, name))
        finally:
            sftp.close()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _retrying(self, what: str, step: Callable[[], T]) -> T:
        for attempt in range(self.options.retries + 1):
            try:
                self._ensure_ready()
                return step()
            except (_Transient, OSError, EOFError, paramiko.SSHException) as exc:
                self._drop_client()
                message = str(exc) if isinstance(exc, _Transient) else _describe(exc)
                if attempt >= self.options.retries:
                    raise RunnerError(f"ssh {what} on {self.options.where} failed after {attempt + 1} attempt(s): "
                                      f"{message}") from None  # fmt: skip
                logger.info("ssh %s on %s: %s; retrying once", what, self.options.where, message)
                time.sleep(1.0)
        raise AssertionError("unreachable")

    # -- commands ---------------------------------------------------------------------------------

    def _exec(self, command: str, timeout_s: float) -> tuple[int, str, str]:
        """Run ``command`` on the board, logging its stderr as it arrives; (status, stdout, stderr).

        Raises:
            _Transient: the connection dropped before the command finished.
            TimeoutError: it ran past ``timeout_s``.
        """
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise _Transient("the connection is closed")
        chan = transport.open_session(timeout=self.options.connect_timeout_s)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout_s
        try:
            chan.exec_command(command)
            while True:
                idle = True
                while chan.recv_ready():
                    out += chan.recv(65536)
                    idle = False
                while chan.recv_stderr_ready():
                    chunk = chan.recv_stderr(65536)
                    err += chunk
                    for line in chunk.decode(errors="replace").splitlines():
                        logger.debug("%s: %s", self.options.host, line)
                    idle = False
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(command)
                if idle:
                    time.sleep(0.02)
            status = chan.recv_exit_status()
        finally:
            chan.close()
        # paramiko closes the channels a moment before it marks a dead transport inactive: give it that moment.
        settle = time.monotonic() + (1.0 if status == -1 else 0.0)
        while transport.is_active() and time.monotonic() < settle:
            time.sleep(0.02)
        if not transport.is_active():
            raise _Transient("the connection dropped while the command ran")
        if status == -1:  # sshd sends exit-signal, not exit-status, for a process killed by a signal
            raise RunnerError(f"the command on {self.options.where} was killed by a signal (out of memory?)")
        return status, out.decode(errors="replace"), err.decode(errors="replace")

    def push(self, path: Path) -> str:
        """Copy the model (with its OpenVINO ``.bin`` and any sidecar) to the board's work folder.

        Raises:
            InputError: the model is missing or unusable (checked before anything is sent).
        """
        model = check_model_file(Path(path))
        files = [model, model.with_suffix(".bin") if model.suffix.lower() == ".xml" else None,
                 model.with_name(model.name + ".sidecar.json"), model.with_suffix(".sidecar.json")]  # fmt: skip
        new = {f.name: f for f in files if f is not None and f.is_file()}
        self._pushed.update(new)
        if self._client is not None:
            self._retrying("pushing the model", lambda: self._put(new))
        else:
            self.connect()
        assert self._workdir is not None
        return posixpath.join(self._workdir, model.name)

    def _put(self, files: dict[str, Path]) -> None:
        assert self._client is not None and self._workdir is not None
        sftp = self._client.open_sftp()
        try:
            for name, local in files.items():
                sftp.put(str(local), posixpath.join(self._workdir, name))
        finally:
            sftp.close()

    def run(self, remote_path: str, settings: BenchSettings) -> RunResult:
        """Benchmark the pushed model with the board's Python.

        Raises:
            InputError: the input file is missing, or the board's runtime cannot use the model.
            RunnerError: connection lost twice, timeout, missing runtime or any other failure on the board.
        """
        if self._workdir is None:
            self.connect()
        if settings.input_npy is not None:
            local_input = Path(settings.input_npy)
            if not local_input.is_file():
                raise InputError(f"input file not found: {local_input}")
            name = "input-" + local_input.name
            self._pushed[name] = local_input
            self._retrying("pushing the inputs", lambda: self._put({name: local_input}))
            settings = dataclasses.replace(settings, input_npy=Path(posixpath.join(self._workdir, name)))
        return self._retrying("benchmark", lambda: self._run_once(remote_path, settings))

    def _run_once(self, remote_path: str, settings: BenchSettings) -> RunResult:
        o, workdir = self.options, self._workdir
        assert workdir is not None
        outputs = posixpath.join(workdir, "outputs.npy") if settings.save_outputs else None
        args = " ".join(shlex.quote(a) for a in script_args(remote_path, settings, outputs))
        # $$ is the shell that exec turns into python: run.pid lets a timeout stop exactly that process.
        command = (f"cd {shlex.quote(workdir)} && echo $$ > run.pid && "
                   f"exec {shlex.quote(o.remote_python)} bench_script.py {args}")  # fmt: skip
        try:
            status, out, err = self._exec(command, o.timeout_s)
        except TimeoutError:
            self._exec(f"kill $(cat {shlex.quote(posixpath.join(workdir, 'run.pid'))}) 2>/dev/null", 30.0)
            raise RunnerError(
                f"benchmark on {o.where} timed out after {o.timeout_s:g} s; "
                "raise --timeout or lower --runs/--min-seconds"
            ) from None
        if status == 127:
            raise RunnerError(
                f"{o.remote_python} not found on {o.where}; install python3 there or pass --remote-python"
            )
        if status != 0:
            raise script_failure(status, err, f"ssh board {o.where}")
        result = parse_script_output(out, self.evidence, settings.threads)
        result.extra.update(runner="ssh", host=o.host, remote_python=o.remote_python)
        if outputs is not None:
            assert self._client is not None
            with tempfile.TemporaryDirectory(prefix="edgekd-ssh-") as tmp:
                sftp = self._client.open_sftp()
                try:
                    sftp.get(outputs, str(Path(tmp) / "outputs.npy"))
                finally:
                    sftp.close()
                result.outputs = np.load(Path(tmp) / "outputs.npy", allow_pickle=False)
            result.extra.pop("outputs_path", None)
        logger.info("%s on %s: %d runs, %s", posixpath.basename(remote_path), o.where, len(result.samples_ms),
                    result.runtime)  # fmt: skip
        return result

    def close(self) -> None:
        """Remove the work folder on the board (reconnecting once if needed) and disconnect; never raises."""
        workdir, self._workdir = self._workdir, None
        try:
            if workdir is not None and WORKDIR_PREFIX in posixpath.basename(workdir):
                if self._client is None or not _active(self._client):
                    self._drop_client()
                    self._client = self._open()
                status, _, err = self._exec(f"rm -rf -- {shlex.quote(workdir)}", 30.0)
                if status != 0:
                    logger.warning("could not remove %s on %s: %s", workdir, self.options.where, last_line(err))
        except (_Transient, RunnerError, OSError, EOFError, paramiko.SSHException, TimeoutError) as exc:
            # A board that is gone was already reported by the error that got us here: no second stderr line.
            log = logger.info if isinstance(exc, _Transient) else logger.warning
            log("could not remove %s on %s (%s); delete it by hand", workdir, self.options.where, exc)
        finally:
            self._drop_client()
            self._pushed.clear()


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
