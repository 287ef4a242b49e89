"""Host-key policies for :mod:`edgekd.bench.ssh_runner`: refuse unknown keys, or trust them on first use.

A key that differs from the one in known_hosts is never accepted (paramiko raises
``BadHostKeyException`` before any policy is asked).
"""

from __future__ import annotations

import logging
from pathlib import Path

import paramiko

from edgekd.core.atomic import atomic_write_text

logger = logging.getLogger(__name__)


class UnknownHostKey(Exception):
    """The server's host key is not in known_hosts (and trust on first use is off)."""

    def __init__(self, name: str, key: paramiko.PKey) -> None:
        super().__init__(name)
        self.name, self.key = name, key


class RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuses an unknown host key with :class:`UnknownHostKey` (which carries the key for the message)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(hostname, key)


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accepts an unknown host key and appends it to the known_hosts file (atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        old = self.path.read_text() if self.path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(self.path, f"{old}{hostname} {key.get_name()} {key.get_base64()}\n")
        logger.warning("trusting %s host key %s on first use; saved to %s", hostname, key.fingerprint, self.path)
