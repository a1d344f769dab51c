"""The control socket: newline-delimited JSON requests in, replies out.

Nothing a client sends can stop, wedge or bloat the daemon (except the ``kill`` operation):

* every request is checked against the declared operations (``control.ops``) before a handler
  sees it; a malformed message, one nested too deeply, an unknown operation or argument, a value
  of the wrong type or out of bounds, or a handler's failure becomes one error reply;
* at most :data:`MAX_CLIENTS` connections: past that the longest-idle one is closed to make room
  (a connection that waits for a reply or streams events is never idle), so idle clients never
  keep a command out;
* a connection that sends no complete request for :data:`IDLE_TIMEOUT` seconds, or does not read
  its reply for as long, is closed;
* buffered input is bounded per client (``protocol.MAX_MESSAGE``) and in total
  (:data:`TOTAL_BUFFER`, beyond the first :data:`FREE_BUFFER` bytes each client may always hold);
* a ``long`` operation sends a keep-alive ``progress`` every ``ops.KEEPALIVE`` seconds while it
  waits, so the CLI's timeout finds a daemon that hangs and never one that works.

``subscribe`` is the one streaming operation: the connection then carries events
until the client hangs up (``corral.daemon.ops.stream``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable

from corral.config.limits import max_instances
from corral.control import protocol
from corral.control.ops import KEEPALIVE, OPS, BadArgs, check_request
from corral.daemon.ops.apps import PROGRESS, Context, handler_for
from corral.exceptions import OperationFailed, UserMistake

log = logging.getLogger("corral.daemon")

MAX_CLIENTS = 256
BACKLOG = 1024  # connections the kernel queues before the daemon accepts them
IDLE_TIMEOUT = 30.0
READ_CHUNK = 64 * 1024
FREE_BUFFER = 64 * 1024
TOTAL_BUFFER = 16 * 1024 * 1024
MAX_ID = 64  # characters of a string id


class _Drop(OperationFailed):
    """End this connection, after sending ``reply`` when there is one."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.reply = reply


class _Client:
    __slots__ = ("writer", "buf", "scanned", "busy", "streaming", "since")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.buf = bytearray()
        self.scanned = 0  # bytes of buf known to hold no newline
        self.busy = False
        self.streaming = False
        self.since = time.monotonic()


class ControlServer:
    def __init__(self, path: str, context: Context, on_shutdown: Callable[[], None]) -> None:
        self.path = path
        self.context = context
        self._on_shutdown = on_shutdown
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[_Client] = set()
        self._buffered = 0  # bytes held in every client's buffer
        self.evicted = 0
        self.max_instances = max_instances()

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)  # we hold the daemon lock, so this socket is stale
        old = os.umask(0o177)  # created 0600: never chmod after bind
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path, limit=READ_CHUNK,
                                                           backlog=BACKLOG)
        finally:
            os.umask(old)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # -- connections --------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = self._admit(writer)
        if client is None:
            return
        try:
            await self._converse(client, reader, writer)
        except _Drop as drop:
            if drop.reply is not None:
                writer.write(drop.reply)
        except (ConnectionError, BrokenPipeError, TimeoutError):
            pass
        except Exception:  # a bug must not take the daemon down (the log throttles repeats)
            log.exception("control connection failed")
        finally:
            self._forget(client)
            writer.close()

    def _admit(self, writer: asyncio.StreamWriter) -> _Client | None:
        """A new connection; at the cap the longest-idle one makes room, or this one is refused."""
        if len(self._clients) >= MAX_CLIENTS:
            idle = [c for c in self._clients if not c.busy and not c.streaming]
            if not idle:
                writer.write(protocol.error(None, protocol.FAILED,
                                            f"too many connections ({MAX_CLIENTS}, all busy); try again"))
                writer.close()
                return None
            oldest = min(idle, key=lambda c: c.since)
            self._forget(oldest)
            oldest.writer.transport.abort()
            self.evicted += 1
        client = _Client(writer)
        self._clients.add(client)
        return client

    def _forget(self, client: _Client) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._buffered -= len(client.buf)
            client.buf = bytearray()

    async def _converse(self, client: _Client, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await self._next_line(client, reader)
            if line is None:
                return
            subscription = self._subscription(line)
            if subscription is not None:
                from corral.daemon.ops.stream import serve_subscription  # loaded at the first one

                client.streaming = True
                await serve_subscription(self.context, *subscription, reader, writer)
                return
            client.busy = True
            try:
                reply = await self._answer(line, writer)
                writer.write(reply)
                async with asyncio.timeout(IDLE_TIMEOUT):  # a client that does not read its reply
                    await writer.drain()
            finally:
                client.busy = False
                client.since = time.monotonic()
            if self.context.shutdown_requested:
                self._on_shutdown()
                return

    async def _next_line(self, client: _Client, reader: asyncio.StreamReader) -> bytes | None:
        """The next request line (the rest of the buffer at end of input); None when none is left."""
        while True:
            end = client.buf.find(b"\n", client.scanned)
            if end >= 0:
                line = bytes(client.buf[:end])
                self._take(client, end + 1)
                return line
            client.scanned = len(client.buf)
            if len(client.buf) > protocol.MAX_MESSAGE:
                raise _Drop(protocol.error(None, protocol.BAD_REQUEST, "message too long"))
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    chunk = await reader.read(READ_CHUNK)
            except TimeoutError:
                raise _Drop(protocol.error(None, protocol.BAD_REQUEST,
                                           f"no complete request in {IDLE_TIMEOUT:g}s: closed")) from None
            if not chunk:
                line = bytes(client.buf)
                self._take(client, len(client.buf))
                return line or None
            self._hold(client, chunk)

    def _hold(self, client: _Client, chunk: bytes) -> None:
        if client not in self._clients:  # evicted meanwhile: what it still sends is not kept
            raise _Drop()
        client.buf += chunk
        self._buffered += len(chunk)
        if len(client.buf) > FREE_BUFFER and self._buffered > TOTAL_BUFFER:
            raise _Drop(protocol.error(None, protocol.FAILED, "the daemon holds too much unread input "
                                       f"({TOTAL_BUFFER >> 20} MiB from all clients); try again"))

    def _take(self, client: _Client, count: int) -> None:
        if client in self._clients:
            self._buffered -= count
        client.scanned = 0
        if count >= len(client.buf):
            client.buf = bytearray()  # a fresh one: a large buffer's memory goes back
        else:
            del client.buf[:count]

    # -- requests -----------------------------------------------------------------------
    def _subscription(self, line: bytes) -> tuple[Any, dict[str, Any]] | None:
        """(id, args) when LINE is a well-formed ``subscribe`` request (bad ones get a reply)."""
        if b"subscribe" not in line:
            return None
        try:
            message = protocol.decode(line, protocol.MAX_DEPTH)
        except protocol.ProtocolError:
            return None
        args = message.get("args") or {}
        if message.get("op") != "subscribe" or not isinstance(args, dict) or _bad_id(message.get("id")):
            return None
        try:
            check_request("subscribe", args)
        except BadArgs:
            return None  # answered by _answer
        return message.get("id"), args

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> bytes:
        """The reply to one request line; a long operation sends keep-alives while it runs."""
        parsed = self._parse(line)
        if isinstance(parsed, bytes):
            return parsed
        msg_id, op, args = parsed
        if not OPS[op].long:
            return await self._run(msg_id, op, args)
        def progress(data: Any) -> None:  # the operation's own progress messages (jobs run's output)
            if not writer.transport.is_closing():
                writer.write(protocol.progress(msg_id, data))

        token = PROGRESS.set(progress)
        try:  # the task copies the context now: its operation sees its progress function
            task = asyncio.get_running_loop().create_task(self._run(msg_id, op, args))
        finally:
            PROGRESS.reset(token)
        started = time.monotonic()
        while True:
            done, _ = await asyncio.wait({task}, timeout=KEEPALIVE)
            if done:
                return task.result()
            if not writer.transport.is_closing():  # a client gone meanwhile: the operation goes on
                writer.write(protocol.progress(msg_id, {"keepalive": op,
                                                        "elapsed": round(time.monotonic() - started)}))

    def _parse(self, line: bytes) -> tuple[Any, str, dict[str, Any]] | bytes:
        """(id, op, args) of a valid request, or the error reply."""
        try:
            message = protocol.decode(line, protocol.MAX_DEPTH)
        except protocol.ProtocolError as exc:
            return protocol.error(None, protocol.BAD_REQUEST, str(exc))
        msg_id = message.get("id")
        if _bad_id(msg_id):
            return protocol.error(None, protocol.BAD_REQUEST, f"id must be a number or a string of at most {MAX_ID}")
        op = message.get("op")
        args = message.get("args") or {}
        if not isinstance(op, str) or op not in OPS:
            shown = op[:64] if isinstance(op, str) else op if not isinstance(op, (dict, list)) else type(op).__name__
            return protocol.error(msg_id, protocol.BAD_REQUEST, f"unknown operation {shown!r}")
        if not isinstance(args, dict):
            return protocol.error(msg_id, protocol.BAD_REQUEST, "args must be an object")
        try:
            check_request(op, args, self.max_instances)
        except BadArgs as exc:
            return protocol.error(msg_id, exc.code, exc.message)
        if handler_for(op) is None:  # "subscribe" spelt so that it was not seen as one
            return protocol.error(msg_id, protocol.BAD_REQUEST, f"{op}: write the operation's name plainly")
        return msg_id, op, args

    async def _run(self, msg_id: Any, op: str, args: dict[str, Any]) -> bytes:
        handler = handler_for(op)
        assert handler is not None  # checked by _parse
        try:
            result: Any = await handler(self.context, args)
        except UserMistake as exc:
            return protocol.error(msg_id, protocol.USER, _one_line(exc))
        except OperationFailed as exc:
            return protocol.error(msg_id, protocol.FAILED, _one_line(exc))
        except Exception as exc:  # a bug in a handler must not take the daemon down
            log.exception("operation %r failed", op)
            return protocol.error(msg_id, protocol.INTERNAL, f"{type(exc).__name__}: {_one_line(exc)}")
        return protocol.reply(msg_id, result)


def _bad_id(msg_id: Any) -> bool:
    if msg_id is None or (isinstance(msg_id, str) and len(msg_id) <= MAX_ID):
        return False
    return not (isinstance(msg_id, int) and not isinstance(msg_id, bool) and abs(msg_id) < 2**53)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n"))
    return text if len(text) <= 1000 else text[:997] + "..."
