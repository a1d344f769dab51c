"""The ``subscribe`` operation: events streamed over the control socket as they happen.

Request args: ``target`` (an app, id, namespace or "all"; default all), ``history`` (send
the last N stored events first, default 0), ``all`` (also the events the history does not
keep: state changes, probe results, requested exits), ``maxsize`` (the subscription's
queue, default and at most 1000).

Every message is a ``progress`` message of the request: ``{"event": ROW}`` (rows as
``corral events --json`` prints them), ``{"dropped": N}`` whenever events were lost
because the client read too slowly (N: lost on this subscription so far), and
``{"keepalive": "subscribe"}`` after ``ops.KEEPALIVE`` seconds without an event.  There is no
final reply: the stream ends when the client disconnects (or the daemon exits).

History and subscription are taken in one step of the loop: no event is missed or sent
twice between them.  The subscription is bounded; a client that does not read stalls
only its own stream while its queue fills and then drops, and it is closed as soon as
the client goes away.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

from corral.control import protocol
from corral.control.ops import KEEPALIVE
from corral.daemon.bus import DEFAULT_MAXSIZE, Subscription
from corral.daemon.ops.apps import Context, UserError, history, is_job, resolve
from corral.daemon.supervisor import Supervisor
from corral.events import Event

#: What a client that does not read can pin in the daemon besides its queue: the transport's
#: buffer (asyncio waits in ``drain`` above this) and the kernel's send buffer.
WRITE_BUFFER = 16 * 1024
SEND_BUFFER = 32 * 1024


def app_filter(sup: Supervisor, target: Any) -> Callable[[str], bool]:
    """Which apps' events a target means.  A namespace also takes apps that join it later."""
    if target in (None, "", "all"):
        return lambda name: True
    if is_job(sup, target):
        return lambda name: name == target
    names = {a.name for a in resolve(sup, target)}  # raises UserError for an unknown target
    if target in sup.apps or str(target).isdigit():
        return names.__contains__

    def in_namespace(name: str) -> bool:
        app = sup.apps.get(name)
        return name in names or (app is not None and app.namespace == target)

    return in_namespace


def _options(args: dict[str, Any]) -> tuple[int, int, bool]:
    try:
        maxsize = int(args.get("maxsize") or DEFAULT_MAXSIZE)
        rows = int(args.get("history") or 0)
    except (TypeError, ValueError):
        raise UserError("subscribe: maxsize and history must be numbers") from None
    if not 1 <= maxsize <= DEFAULT_MAXSIZE:
        raise UserError(f"subscribe: maxsize must be from 1 to {DEFAULT_MAXSIZE}, not {maxsize}")
    return maxsize, max(0, rows), bool(args.get("all"))


async def serve_subscription(ctx: Context, msg_id: Any, args: dict[str, Any],
                             reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Stream events to one client until it disconnects.  Errors in the request are replied."""
    sup = ctx.supervisor
    try:
        maxsize, rows, everything = _options(args)
        wanted = app_filter(sup, args.get("target"))
    except UserError as exc:
        writer.write(protocol.error(msg_id, protocol.USER, str(exc)))
        await writer.drain()
        return
    past = history(sup, args.get("target"), rows) if rows else []

    def where(event: Event) -> bool:
        return (everything or event.stored) and wanted(event.app)

    _bound_buffers(writer)
    sub = sup.bus.subscribe(maxsize=maxsize, where=where)
    watcher = asyncio.get_running_loop().create_task(_close_on_eof(reader, sub))
    try:
        for row in past:
            writer.write(protocol.progress(msg_id, {"event": row}))
        await writer.drain()
        await _pump(sub, msg_id, writer)
    finally:
        sub.close()
        watcher.cancel()


def _bound_buffers(writer: asyncio.StreamWriter) -> None:
    writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass


async def _pump(sub: Subscription, msg_id: Any, writer: asyncio.StreamWriter) -> None:
    """Write queued events in batches; ``drain`` waits while the client is not reading."""
    told = 0
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE):
                await sub.wait()
        except TimeoutError:  # nothing happened: say the daemon is alive (the CLI's timeout)
            writer.write(protocol.progress(msg_id, {"keepalive": "subscribe"}))
            await writer.drain()
            continue
        if sub.closed:
            return
        if sub.dropped != told:
            told = sub.dropped
            writer.write(protocol.progress(msg_id, {"dropped": told}))
        for event in sub.take():
            writer.write(protocol.progress(msg_id, {"event": event.row()}))
        await writer.drain()


async def _close_on_eof(reader: asyncio.StreamReader, sub: Subscription) -> None:
    """The client sends nothing more; when it hangs up, the subscription ends."""
    try:
        while await reader.read(4096):
            pass
    except (ConnectionError, OSError):
        pass
    finally:
        sub.close()
