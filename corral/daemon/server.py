"""The control socket: newline-delimited JSON requests in, replies out.

A malformed message, an unknown operation or a handler's failure becomes an
error reply; a client that goes away mid-request is simply dropped.  Nothing a
client sends can stop the daemon (except the ``kill`` operation).

``subscribe`` is the one streaming operation: the connection then carries events
until the client hangs up (``corral.daemon.ops.stream``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable

from corral.control import protocol
from corral.daemon.ops.apps import Context, handler_for
from corral.exceptions import OperationFailed, UserMistake

log = logging.getLogger("corral.daemon")


class ControlServer:
    def __init__(self, path: str, context: Context, on_shutdown: Callable[[], None]) -> None:
        self.path = path
        self.context = context
        self._on_shutdown = on_shutdown
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)  # we hold the daemon lock, so this socket is stale
        old = os.umask(0o177)  # created 0600: never chmod after bind
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, self.path, limit=protocol.MAX_MESSAGE
            )
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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(protocol.error(None, protocol.BAD_REQUEST, "message too long"))
                    break
                if not line:
                    break
                subscription = self._subscription(line)
                if subscription is not None:
                    from corral.daemon.ops.stream import serve_subscription  # loaded at the first one

                    await serve_subscription(self.context, *subscription, reader, writer)
                    break
                writer.write(await self._handle(line))
                await writer.drain()
                if self.context.shutdown_requested:
                    self._on_shutdown()
                    break
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _subscription(line: bytes) -> tuple[Any, dict[str, Any]] | None:
        """(id, args) when LINE is a well-formed ``subscribe`` request."""
        if b"subscribe" not in line:
            return None
        try:
            message = protocol.decode(line)
        except protocol.ProtocolError:
            return None
        args = message.get("args") or {}
        if message.get("op") != "subscribe" or not isinstance(args, dict):
            return None
        return message.get("id"), args

    async def _handle(self, line: bytes) -> bytes:
        try:
            message = protocol.decode(line)
        except protocol.ProtocolError as exc:
            return protocol.error(None, protocol.BAD_REQUEST, str(exc))
        msg_id = message.get("id")
        op = message.get("op")
        args = message.get("args") or {}
        handler = handler_for(op) if isinstance(op, str) else None
        if handler is None:
            return protocol.error(msg_id, protocol.BAD_REQUEST, f"unknown operation {op!r}")
        if not isinstance(args, dict):
            return protocol.error(msg_id, protocol.BAD_REQUEST, "args must be an object")
        try:
            result: Any = await handler(self.context, args)
        except UserMistake as exc:
            return protocol.error(msg_id, protocol.USER, str(exc))
        except OperationFailed as exc:
            return protocol.error(msg_id, protocol.FAILED, str(exc))
        except Exception as exc:  # a bug in a handler must not take the daemon down
            log.exception("operation %r failed", op)
            return protocol.error(msg_id, protocol.INTERNAL, f"{type(exc).__name__}: {exc}")
        return protocol.reply(msg_id, result)
