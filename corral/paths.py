"""Where corral keeps its files: one ``CORRAL_HOME`` per daemon.

Imported by the CLI on every call, so it imports only ``os``.
"""

from __future__ import annotations

import os

SOCKET_NAME = "corral.sock"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the NUL


class Home:
    """The folder that holds one daemon's socket, state and logs."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Home:
        env = os.environ if environ is None else environ
        root = env.get("CORRAL_HOME") or os.path.join(os.path.expanduser("~"), ".corral")
        return cls(os.path.abspath(root))

    @property
    def socket(self) -> str:
        return os.path.join(self.root, SOCKET_NAME)

    @property
    def database(self) -> str:
        return os.path.join(self.root, "state.db")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, "daemon.lock")

    @property
    def daemon_log(self) -> str:
        return os.path.join(self.root, "daemon.log")

    @property
    def dump(self) -> str:
        return os.path.join(self.root, "dump.json")

    def ensure(self) -> None:
        """Create the home (0700) and its logs folder; tighten an existing home."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        os.makedirs(self.logs, mode=0o700, exist_ok=True)
