"""The web process's side of the control socket: asyncio calls and streams to the daemon.

One connection per call (the daemon serves many at once); a stream (``subscribe``) holds its own.
Requests are checked against ``control.ops`` first, as the CLI's client does.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from corral.config.limits import max_instances
from corral.control import protocol
from corral.control.ops import READ_ONLY, check_request, timeout_for
from corral.paths import Home
from corral.exceptions import OperationFailed

MAX_REPLY = 64 * 1024 * 1024  # bytes in one reply line (an ``events --lines`` of a big history)


class Unavailable(OperationFailed):
    """The daemon does not answer (not running, or too slow)."""


async def _open(home: Home) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(home.socket, limit=MAX_REPLY)
    except OSError as exc:
        raise Unavailable(f"no daemon answers on {home.socket}: {exc.strerror or exc}") from None


REPLY_PREFIX = b'{"v":1,"id":1,"result":'


class Raw(bytes):
    """A result as the daemon encoded it (JSON text), passed on without decoding it."""


MAX_IDLE = 4  # connections kept open to the daemon between calls
_idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []


async def call(home: Home, op: str, args: dict[str, Any] | None = None, raw: bool = False) -> Any:
    """OP's result (with ``raw``, as :class:`Raw` JSON bytes when it can be cut from the reply
    as it is); raises ``protocol.RemoteError`` (its error reply), ``ops.BadArgs`` or
    :class:`Unavailable`.  Progress messages are skipped; each must come within the timeout.

    Connections are kept for the next call (the daemon answers many requests on one); one the
    daemon closed meanwhile is replaced, and an operation that only reads is sent again."""
    args = {k: v for k, v in (args or {}).items() if v is not None}
    check_request(op, args, max_instances())
    pooled = bool(_idle)
    conn = _idle.pop() if pooled else await _open(home)
    try:
        result = await _exchange(conn, op, args, raw)
    except protocol.RemoteError:
        _keep(conn)
        raise
    except Unavailable:
        conn[1].close()
        if not (pooled and op in READ_ONLY):
            raise
        conn = await _open(home)
        try:
            result = await _exchange(conn, op, args, raw)
        except BaseException:
            conn[1].close()
            raise
    except BaseException:
        conn[1].close()
        raise
    _keep(conn)
    return result


def _keep(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    if len(_idle) < MAX_IDLE and not conn[1].is_closing():
        _idle.append(conn)
    else:
        conn[1].close()


async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], op: str, args: dict[str, Any],
                    raw: bool) -> Any:
    reader, writer = conn
    try:
        writer.write(protocol.request(1, op, args))
        await writer.drain()
    except OSError as exc:
        raise Unavailable(f"the daemon's connection broke: {exc}") from None
    while True:
        line = await _line(reader, op)
        if raw and line.startswith(REPLY_PREFIX) and line.endswith(b"}\n"):
            return Raw(line[len(REPLY_PREFIX):-2])
        message = protocol.decode(line)
        if "progress" in message:
            continue
        if "error" in message:
            err = message["error"]
            raise protocol.RemoteError(err.get("code", protocol.INTERNAL), err.get("message", "?"))
        return message.get("result")


async def _next(reader: asyncio.StreamReader, op: str) -> dict[str, Any]:
    return protocol.decode(await _line(reader, op))


async def _line(reader: asyncio.StreamReader, op: str) -> bytes:
    try:
        async with asyncio.timeout(timeout_for(op)):
            line = await reader.readline()
    except TimeoutError:
        raise Unavailable(f'the daemon did not answer "{op}" in time') from None
    except (ValueError, OSError) as exc:  # a line over the limit, a reset
        raise Unavailable(f"the daemon's reply could not be read: {exc}") from None
    if not line:
        raise Unavailable("the daemon closed the connection")
    return line


async def subscribe(home: Home, target: str | None = None, history: int = 0) -> AsyncIterator[dict[str, Any]]:
    """The ``subscribe`` stream's messages (``{"event": ROW}``, ``{"dropped": N}``, keep-alives),
    until the daemon goes away; closing the generator closes the connection."""
    args: dict[str, Any] = {"history": history}
    if target:
        args["target"] = target
    check_request("subscribe", args)
    reader, writer = await _open(home)
    try:
        writer.write(protocol.request(1, "subscribe", args))
        await writer.drain()
        while True:
            message = await _next(reader, "subscribe")
            if "error" in message:
                err = message["error"]
                raise protocol.RemoteError(err.get("code", protocol.INTERNAL), err.get("message", "?"))
            if isinstance(message.get("progress"), dict):
                yield message["progress"]
    finally:
        writer.close()
