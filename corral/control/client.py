"""The RPC client the CLI uses: connect, send one request, read the replies.

Starts the daemon on first use when asked to (``start``, ``resurrect`` and ``ping`` do;
every other command says that no daemon runs).  Imports only the standard
library's ``socket``/``json``/``os`` on the fast path.

Every call has a timeout (``control.ops.timeout_for``: 30 s, or ``CORRAL_TIMEOUT``) for
connecting, sending and each message of the reply; a long operation's keep-alives restart it.
A daemon that does not answer in time is :class:`DaemonTimeout`, naming the operation.
"""

from __future__ import annotations

import os
import socket
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time on the CLI's fast path
    from typing import Any, Callable

from corral.control import protocol
from corral.config.limits import max_instances
from corral.control.ops import OPS, check_request, timeout_for
from corral.exceptions import OperationFailed
from corral.paths import MAX_SOCKET_PATH, Home

DAEMON_START_TIMEOUT = 15.0


#: glibc's malloc for the daemon (read when it starts; the daemon drops them from its environment):
#: a fixed mmap threshold, so a large answer (``events --lines 1000``, ``ls`` of many apps) is
#: given back when freed instead of raising the threshold and growing the heap for good, and a
#: lower trim threshold.  Measured: RSS growth per start/stop round of 50 apps 100-160 -> ~40 KiB.
#: 256 KiB (not 64): a log chunk (``corral.logs.pipe.READ_SIZE``, 128 KiB) and its copies reuse
#: heap blocks instead of a fresh mapping each (a page fault per 4 KiB); and a trim threshold of
#: 1 MiB (not 128 KiB) keeps them between two chunks (at 512 KiB a flood of JSON lines still took
#: 3x the page faults).  RSS with 50 apps unchanged (20.4-20.6 MiB).
DAEMON_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "262144", "MALLOC_TRIM_THRESHOLD_": "1048576"}


class DaemonUnavailable(OperationFailed):
    """No daemon answers on this home's socket (and none could be started)."""


class DaemonTimeout(OperationFailed):
    """The daemon did not answer within the timeout (it is wedged, or far too busy)."""


class Client:
    def __init__(self, home: Home | None = None, *, autostart: bool = False) -> None:
        self.home = home or Home.from_env()
        self.autostart = autostart
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 1
        self.timeout = timeout_for("")
        self.remote: Any = None
        if os.environ.get("CORRAL_REMOTE"):  # `corral --remote URL ...`: the HTTP API of another host
            from corral.control.remote import from_env

            self.remote = from_env()

    # -- connection -----------------------------------------------------------------
    def _try_connect(self) -> socket.socket | None:
        self.home.check()  # a socket in a folder others can write may be anyone's
        path = self.home.socket
        if len(path.encode()) > MAX_SOCKET_PATH:
            raise DaemonUnavailable(
                f"CORRAL_HOME {self.home.root!r} is too long for a Unix socket path "
                f"(at most {MAX_SOCKET_PATH - len('/corral.sock')} characters)"
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect(sock, path, time.monotonic() + self.timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except TimeoutError:
            sock.close()
            raise DaemonTimeout(f"the daemon did not accept a connection within {self.timeout:g}s ({path})") from None
        except PermissionError:
            sock.close()
            raise DaemonUnavailable(f"cannot connect to {path}: permission denied "
                                    "(the daemon of another user? set CORRAL_HOME to a home of your own)") from None
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from None
        return sock

    def connect(self) -> None:
        if self._sock is not None:
            return
        sock = self._try_connect()
        if sock is None:
            if not self.autostart:
                raise DaemonUnavailable(f"no daemon is running for {self.home.root}")
            sock = self._start_daemon()
        self._sock = sock

    def _start_daemon(self) -> socket.socket:
        import subprocess

        try:
            self.home.ensure()
            log = open(_open_private(self.home.daemon_log), "ab")
        except OSError as exc:
            raise DaemonUnavailable(f"cannot use CORRAL_HOME {self.home.root}: "
                                    f"{exc.strerror or exc}{_whose(self.home.root)}") from None
        proc = subprocess.Popen(
            # -OO: no docstrings in the daemon's memory (it has no asserts to lose); no_debug_ranges:
            # no column tables in the code it compiles (~0.12 MiB; tracebacks lose their ^^^ marks)
            [sys.executable, "-OO", "-X", "no_debug_ranges", "-m", "corral.daemon"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "CORRAL_HOME": self.home.root, "CORRAL_SUBREAPER": "1", **DAEMON_MALLOC},
            preexec_fn=_become_subreaper,  # the CLI is single-threaded; kept across exec
        )
        log.close()
        deadline = time.monotonic() + DAEMON_START_TIMEOUT
        delay = 0.002
        while time.monotonic() < deadline:
            sock = self._try_connect()
            if sock is not None:
                proc.returncode = 0  # detached: never wait for it
                return sock
            if proc.poll() is not None and proc.returncode != 0:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        raise DaemonUnavailable(
            f"the daemon did not start (see {self.home.daemon_log}): {_tail(self.home.daemon_log)}"
        )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- calls ------------------------------------------------------------------------
    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Any:
        """Send one request; return its result or raise ``protocol.RemoteError`` (or
        :class:`DaemonTimeout` when a message is not there within the timeout)."""
        if op in OPS:  # the daemon checks it too; here the mistake costs no round trip
            check_request(op, args or {}, max_instances())
        if self.remote is not None:
            return self.remote.call(op, args, on_progress)
        self.timeout = timeout_for(op)
        self.connect()
        assert self._sock is not None
        msg_id = self._next_id
        self._next_id += 1
        self._sock.settimeout(self.timeout)
        try:
            self._sock.sendall(protocol.request(msg_id, op, args))
        except TimeoutError:
            raise self._timed_out(op) from None
        while True:
            message = protocol.decode(self._read_line(op))
            if "progress" in message:
                keepalive = isinstance(message["progress"], dict) and "keepalive" in message["progress"]
                if on_progress is not None and not keepalive:
                    on_progress(message["progress"])
                continue
            if "error" in message:
                err = message["error"]
                raise protocol.RemoteError(err.get("code", protocol.INTERNAL), err.get("message", "?"))
            return message.get("result")

    def _read_line(self, op: str = "") -> bytes:
        """The next message, within the timeout."""
        assert self._sock is not None
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out(op)
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise self._timed_out(op) from None
            if not chunk:
                raise DaemonUnavailable("the daemon closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _timed_out(self, op: str) -> DaemonTimeout:
        what = f'"{op}"' if op else "in time"
        return DaemonTimeout(f"the daemon did not answer {what} within {self.timeout:g}s")


def _connect(sock: socket.socket, path: str, deadline: float) -> None:
    """``connect``, waiting while the daemon's accept queue is full (a Unix socket with a timeout
    says EAGAIN at once instead of waiting)."""
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() + delay > deadline:
                raise TimeoutError from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _become_subreaper() -> None:
    """Make the daemon a child subreaper before it execs, so the daemon need not load ctypes."""
    from corral.process.reaper import become_subreaper

    become_subreaper()


def _whose(path: str) -> str:
    """ " (owned by uid N)" when PATH belongs to another user."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return ""
    return f" (owned by uid {owner}, not you: set CORRAL_HOME to a folder of your own)" if owner != os.getuid() else ""


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read()[-4000:].decode(errors="replace")
    except OSError:
        return "no daemon log"
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def _open_private(path: str) -> int:
    """``path`` opened for appending, created 0600 (an older one is made 0600 too: it is ours)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd
