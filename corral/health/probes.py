"""Readiness probes: http (path and status), tcp (connect), cmd (exit code 0).

Each launching instance gets one :class:`ReadinessProbe`: attempts on the core's timer
service, each published as a ``ProbeResult`` event; it stops as soon as the instance is
ready, dies, or is replaced.  A cmd probe is run through the
daemon's own reaper (asyncio's child watcher would race with it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from typing import Any, Callable, Protocol

from corral.config.addresses import parse_listen
from corral.daemon.core import Core, Handle
from corral.feature_events import ProbeResult
from corral.exceptions import CorralError, UserMistake


class ProbeError(UserMistake):
    pass


class AnsweredElsewhere(CorralError):
    """Another instance sharing the socket took the probe: it says nothing about this one."""


class Reaper(Protocol):
    """The daemon's reaper (``process.reaper``): calls back when a child it watches exits."""

    def watch(self, pid: int, callback: Callable[[int, int | None, str | None], None]) -> None: ...


def target(probe: dict[str, Any], listen: list[str]) -> tuple[str, str, int | str]:
    """Where an http/tcp probe connects: its own host/port/address, else the app's first socket."""
    if probe.get("address"):
        return parse_listen(str(probe["address"]))
    if probe.get("port"):
        return "tcp", str(probe.get("host", "127.0.0.1")), int(probe["port"])
    if not listen:
        raise ProbeError("an http/tcp probe needs the app's listen address, or port = N")
    kind, host, where = parse_listen(listen[0])
    if kind == "tcp" and host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    return kind, host, where


async def _connect(where: tuple[str, str, int | str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, host, port = where
    if kind == "unix":
        return await asyncio.open_unix_connection(str(port))
    return await asyncio.open_connection(host, int(port))


Owner = Callable[[], set[int]]


def _hex_endpoint(address: tuple[Any, ...]) -> str | None:
    """An IPv4 (host, port) as /proc/net/tcp writes it: ``0100007F:1F90``."""
    try:
        packed = socket.inet_aton(address[0])
    except OSError:
        return None
    return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"


def accepting_inode(server: tuple[Any, ...], client: tuple[Any, ...]) -> int | None:
    """The inode of the socket a server process accepted for our connection (0: not accepted yet)."""
    local, remote = _hex_endpoint(server), _hex_endpoint(client)
    if local is None or remote is None:
        return None
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 9 and fields[1] == local and fields[2] == remote:
                return int(fields[9])
    return None


def owns_socket(pids: set[int], inode: int) -> bool:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except OSError:
                continue
    return False


async def answered_by(writer: asyncio.StreamWriter, owner: Owner | None, wait: bool, elsewhere: bool = False) -> bool:
    """True when a process of the probed instance accepted this connection.

    With a shared socket the kernel may hand the probe to any instance (an old one, during a
    reload), and the daemon's own copy of the socket accepts connections into its backlog
    before any instance does; so a probe counts only when the instance itself took it.
    Unix sockets and IPv6 are not checked.
    """
    if owner is None:
        return True
    server, client = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
    if not isinstance(server, tuple) or not isinstance(client, tuple):
        return True
    while True:
        inode = accepting_inode(server, client)
        if inode is None:
            return True
        if inode:
            if owns_socket(owner(), inode):
                return True
            if elsewhere:
                raise AnsweredElsewhere
            return False
        if not wait:
            return False
        await asyncio.sleep(0.01)  # still in the accept queue: the probe's own timeout bounds this


async def check_http(where: tuple[str, str, int | str], path: str, status: int, owner: Owner | None = None,
                     elsewhere: bool = False) -> bool:
    reader, writer = await _connect(where)
    try:
        # HTTP/1.1 keep-alive: the server keeps the connection open after its answer, so the
        # probe can still see which process holds it
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: corral-probe\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        parts = line.split()
        ok = len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) == status
        return await answered_by(writer, owner, wait=False, elsewhere=elsewhere) and ok
    finally:
        writer.close()


async def check_tcp(where: tuple[str, str, int | str], owner: Owner | None = None, elsewhere: bool = False) -> bool:
    _, writer = await _connect(where)
    try:
        return await answered_by(writer, owner, wait=True, elsewhere=elsewhere)
    finally:
        writer.close()


async def check_cmd(reaper: Reaper, argv: list[str], cwd: str | None, env: dict[str, str]) -> bool:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    try:
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, close_fds=True, process_group=0)
    except OSError:
        return False
    def exited(pid: int, code: int | None, sig: str | None) -> None:
        if not done.done():
            done.set_result(-1 if code is None else code)

    reaper.watch(popen.pid, exited)
    try:
        code = await done
    except asyncio.CancelledError:
        try:
            os.killpg(popen.pid, 9)
        except ProcessLookupError:
            pass
        raise
    finally:
        popen.returncode = 0 if done.done() else -1
    return code == 0


class ReadinessProbe:
    """Probe a launching instance every ``interval`` (on the core's timer service) until it
    passes (then ``on_ready()``), the instance is no longer launching, or ``cancel()``.

    Each attempt is bounded by the probe's ``timeout`` and published as a ``ProbeResult``.
    """

    def __init__(
        self,
        core: Core,
        app: str,
        instance: int,
        probe: dict[str, Any],
        listen: list[str],
        still_launching: Callable[[], bool],
        on_ready: Callable[[], None],
        reaper: Reaper,
        cwd: str | None,
        env: dict[str, str],
        owner: Owner | None = None,
    ) -> None:
        self._core = core
        self._app, self._instance = app, instance
        self._probe = probe
        self._listen = listen
        self._still_launching = still_launching
        self._on_ready = on_ready
        self._reaper, self._cwd, self._env, self._owner = reaper, cwd, env, owner
        self._timer: Handle | None = None
        self._task: asyncio.Task[None] | None = None
        self.cancelled = False

    def start(self) -> None:
        self._timer = self._core.timers.after(0, self._attempt)

    def cancel(self) -> None:
        self.cancelled = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def _attempt(self) -> None:
        if not self.cancelled and self._still_launching():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        ok, detail = await self.check()
        self._core.publish(ProbeResult(app=self._app, instance=self._instance, probe=str(self._probe["kind"]),
                                       ok=ok, detail=detail))
        if ok and self._still_launching():
            self._on_ready()
        elif not self.cancelled:
            self._timer = self._core.timers.after(float(self._probe["interval"]), self._attempt)

    async def check(self) -> tuple[bool, str]:
        """One attempt: (passed, why not)."""
        return await check(self._probe, self._listen, self._reaper, self._cwd, self._env, self._owner)


async def check(probe: dict[str, Any], listen: list[str], reaper: Reaper, cwd: str | None, env: dict[str, str],
                owner: Owner | None = None, elsewhere: bool = False) -> tuple[bool, str]:
    """One attempt of a probe (readiness or liveness): (passed, why not), bounded by its timeout.
    With ``elsewhere``, :class:`AnsweredElsewhere` when another instance took it."""
    try:
        async with asyncio.timeout(float(probe["timeout"])):
            if probe["kind"] == "cmd":
                ok = await check_cmd(reaper, probe["cmd"], cwd, env)
                return ok, "" if ok else "command failed"
            where = target(probe, listen)
            if probe["kind"] == "http":
                ok = await check_http(where, probe["path"], int(probe["status"]), owner, elsewhere)
                return ok, "" if ok else f"no {probe['status']} answer from this instance"
            ok = await check_tcp(where, owner, elsewhere)
            return ok, "" if ok else "not accepted by this instance"
    except TimeoutError:
        return False, f"timed out after {float(probe['timeout']):g}s"
    except (OSError, ValueError, ProbeError) as exc:
        return False, str(exc) or type(exc).__name__
