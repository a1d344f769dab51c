"""Where corral keeps its files: one ``CORRAL_HOME`` per daemon.

Imported by the CLI on every call, so it imports only ``os`` (and ``stat``, which ``os`` loads).

A home is used only when it is corral's own: a folder owned by the user corral runs as and
writable by nobody else.  Anything else (a shared 1777 folder such as ``/tmp``, another user's
folder) is refused with one line, never chmodded: other users could plant a socket, a database
or a symbolic link there.
"""

from __future__ import annotations

import os
import stat

from corral.exceptions import UserMistake

SOCKET_NAME = "corral.sock"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the NUL


class HomeError(UserMistake):
    """``CORRAL_HOME`` cannot be used (not corral's own, or not creatable); one line says why."""


def _account(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


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
        """Create the home (0700) and its logs folder, or check that an existing home is
        corral's own (:meth:`check`); never changes the mode of an existing folder."""
        try:
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            os.mkdir(self.root, 0o700)
        except FileExistsError:
            self.check()
        except OSError as exc:
            raise HomeError(f"CORRAL_HOME {self.root}: cannot create it: {exc.strerror or exc}") from None
        try:
            os.mkdir(self.logs, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise HomeError(f"CORRAL_HOME {self.root}: cannot create {self.logs}: {exc.strerror or exc}") from None

    def check(self) -> None:
        """Raise :class:`HomeError` unless the home (when it exists) is a folder owned by the
        user we run as and writable by no one else.  One ``stat``: cheap enough for every call."""
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise HomeError(f"CORRAL_HOME {self.root}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise HomeError(f"CORRAL_HOME {self.root} is not a folder")
        me = os.geteuid()
        if st.st_uid != me:
            raise HomeError(f"CORRAL_HOME {self.root} belongs to {_account(st.st_uid)}, not to {_account(me)}: "
                            f"refusing to use it (each user needs a CORRAL_HOME of their own)")
        if st.st_mode & 0o022:
            raise HomeError(f"CORRAL_HOME {self.root} is writable by other users "
                            f"(mode {stat.S_IMODE(st.st_mode):04o}): refusing to use it "
                            f"(use a folder only you can write, such as ~/.corral)")
