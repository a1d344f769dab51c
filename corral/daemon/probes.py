"""Readiness probes: http (path and status), tcp (connect), cmd (exit code 0).

Each launching instance gets one probe task; it stops as soon as the
instance is ready, dies, or is replaced.  A cmd probe is run through the
daemon's own reaper (asyncio's child watcher would race with it).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import Any, Callable

from corral.config.addresses import parse_listen
from corral.daemon.reaper import Reaper


class ProbeError(Exception):
    pass


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


async def check_http(where: tuple[str, str, int | str], path: str, status: int) -> bool:
    reader, writer = await _connect(where)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: corral-probe\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    parts = line.split()
    return len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) == status


async def check_tcp(where: tuple[str, str, int | str]) -> bool:
    _, writer = await _connect(where)
    writer.close()
    return True


async def check_cmd(reaper: Reaper, argv: list[str], cwd: str | None, env: dict[str, str]) -> bool:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    try:
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, close_fds=True, process_group=0)
    except OSError:
        return False
    reaper.watch(popen.pid, lambda pid, code, sig: done.done() or done.set_result(-1 if code is None else code))
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


async def probe_until_ready(
    probe: dict[str, Any],
    listen: list[str],
    still_launching: Callable[[], bool],
    on_ready: Callable[[], None],
    reaper: Reaper,
    cwd: str | None,
    env: dict[str, str],
) -> None:
    """Probe every ``interval`` until it passes (then call ``on_ready``) or the instance is gone."""
    interval, timeout = float(probe["interval"]), float(probe["timeout"])
    where = None if probe["kind"] == "cmd" else target(probe, listen)
    while still_launching():
        try:
            async with asyncio.timeout(timeout):
                if probe["kind"] == "http":
                    ok = await check_http(where, probe["path"], int(probe["status"]))  # type: ignore[arg-type]
                elif probe["kind"] == "tcp":
                    ok = await check_tcp(where)  # type: ignore[arg-type]
                else:
                    ok = await check_cmd(reaper, probe["cmd"], cwd, env)
        except (OSError, TimeoutError, ValueError):
            ok = False
        if ok and still_launching():
            on_ready()
            return
        await asyncio.sleep(interval)
