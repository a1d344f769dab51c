"""The control server's caps, in process with small limits: idle clients, too many clients,
buffered bytes, keep-alives during long operations, and the daemon.log throttle."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import pytest

from corral.daemon import server as srv
from corral.daemon.logthrottle import BURST, Throttle
from corral.daemon.ops.apps import HANDLERS

Scenario = Callable[[str, srv.ControlServer], Awaitable[None]]


def run(scenario: Scenario) -> None:
    context: Any = SimpleNamespace(shutdown_requested=False, supervisor=SimpleNamespace(
        apps={}, bus=SimpleNamespace(stats=lambda: {}), tracker=SimpleNamespace(cgroups=None),
        store=SimpleNamespace(status=lambda: {"ok": True})))

    async def main() -> None:
        folder = tempfile.mkdtemp(prefix="corral-srv-", dir="/tmp")
        path = os.path.join(folder, "s.sock")
        server = srv.ControlServer(path, context, lambda: None)
        await server.start()
        try:
            await asyncio.wait_for(scenario(path, server), 20)
        finally:
            await server.close()
            os.rmdir(folder)

    asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the loop run until CONDITION holds (a deadline, never a bare sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def reply_of(reader: asyncio.StreamReader) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(reader.readline(), 10))


async def ping(path: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"id": 1, "op": "ping"}\n')
    try:
        return await reply_of(reader)
    finally:
        writer.close()


def test_an_idle_client_is_closed_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "IDLE_TIMEOUT", 0.2)

    async def scenario(path: str, server: srv.ControlServer) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"id": 1, "op": "pi')  # and nothing more
        assert (await reply_of(reader))["error"] == {
            "code": "bad_request", "message": "no complete request in 0.2s: closed"}
        assert await reader.read() == b""
        writer.close()

    run(scenario)


def test_idle_clients_make_room_for_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "MAX_CLIENTS", 4)

    async def scenario(path: str, server: srv.ControlServer) -> None:
        idle = []
        for _ in range(10):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'{"id": 1, "op": "pi')  # half a request, then nothing
            idle.append((reader, writer))
        assert (await ping(path))["result"]["pid"] == os.getpid()
        assert server.evicted >= 7 and len(server._clients) <= 4
        for _, writer in idle:
            writer.close()
        await until(lambda: not server._clients)
        assert server._buffered == 0  # nothing counted for a client that is gone

    run(scenario)


def test_buffered_input_is_bounded_in_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "TOTAL_BUFFER", 256 * 1024)
    monkeypatch.setattr(srv, "FREE_BUFFER", 16 * 1024)

    async def scenario(path: str, server: srv.ControlServer) -> None:
        first = await asyncio.open_unix_connection(path)
        first[1].write(b"{" + b" " * 200_000)
        await first[1].drain()
        second = await asyncio.open_unix_connection(path)
        second[1].write(b"{" + b" " * 200_000)
        await second[1].drain()
        reads = [asyncio.ensure_future(reply_of(r)) for r, _ in (first, second)]
        done, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        assert done.pop().result()["error"]["message"] == (
            "the daemon holds too much unread input (0 MiB from all clients); try again")
        assert server._buffered <= 256 * 1024 + srv.READ_CHUNK
        assert "result" in await ping(path)
        for _, writer in (first, second):
            writer.close()

    run(scenario)


def test_long_operations_send_keepalives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "KEEPALIVE", 0.05)
    release = asyncio.Event()

    async def slow_stop(ctx: Any, args: dict[str, Any]) -> Any:
        await release.wait()
        return {"rows": []}

    monkeypatch.setitem(HANDLERS, "stop", slow_stop)

    async def scenario(path: str, server: srv.ControlServer) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"id": 7, "op": "stop", "args": {"target": "all"}}\n')
        first = await reply_of(reader)
        assert first["id"] == 7 and first["progress"]["keepalive"] == "stop"
        release.set()
        while "progress" in (message := await reply_of(reader)):
            pass
        assert message == {"v": 1, "id": 7, "result": {"rows": []}}
        writer.close()

    run(scenario)


def test_a_failing_handler_is_one_line_and_the_server_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(ctx: Any, args: dict[str, Any]) -> Any:
        raise RuntimeError("line one\nline two")

    monkeypatch.setitem(HANDLERS, "describe", broken)

    async def scenario(path: str, server: srv.ControlServer) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"id": 1, "op": "describe", "args": {"target": "x"}}\n')
        assert (await reply_of(reader))["error"] == {"code": "internal", "message": "RuntimeError: line one line two"}
        writer.close()
        assert "result" in await ping(path)

    run(scenario)


def test_the_log_throttle() -> None:
    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])

    def record(msg: str, exc: bool = False) -> logging.LogRecord:
        info = None
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                import sys

                info = sys.exc_info()
        return logging.LogRecord("corral.daemon", logging.ERROR, __file__, 1, msg, None, info)

    first = record("operation failed", exc=True)
    assert throttle.filter(first) and first.exc_info is not None  # the first traceback is written
    second = record("operation failed", exc=True)
    assert throttle.filter(second) and second.exc_info is None and second.msg == "operation failed: ValueError: boom"
    passed = sum(throttle.filter(record("operation failed")) for _ in range(100))
    assert passed == BURST - 2
    now[0] = 61.0
    later = record("operation failed")
    assert throttle.filter(later) and later.msg == "operation failed (92 repeated lines were not written)"
