"""Node apps on Node's IPC channel: PM2's cluster mode on corral's sockets, ``process.send('ready')``
and ``shutdown_with_message``.

Which apps (``config.command.node_mode``): a Node program in cluster mode (``exec_mode =
"cluster"``, or several instances) gets the channel and corral's preload (``node -r
cluster_preload.cjs``); one with ``wait_ready`` or ``shutdown_with_message`` gets the channel.
Any other app never loads this module.

* **Sockets.** The preload makes ``server.listen(port)`` use corral's socket for the instance's
  slot.  The slot's sockets corral holds already are inherited at spawn (the declared ``listen``
  addresses, and the ports this slot's earlier instances listened on), so a replacement listens
  at once on the socket its predecessor served; for any other port the preload asks over the
  channel (``NODE_CORRAL_LISTEN``), the daemon binds the slot's ``SO_REUSEPORT`` socket (only the
  daemon binds: the app may run as another user) and sends it back as a handle.  The address
  becomes the app's (``App.inferred``: address -> slots, stored with the app, shown by
  ``describe``) until the app is deleted or leaves cluster mode.
* **Readiness.** The preload reports the first ``'listening'`` (``lc.Listening``: ready, in the
  "delay" mode of cluster apps); ``process.send('ready')`` counts as READY=1.
* **Stop.** With ``shutdown_with_message`` the supervisor sends ``'shutdown'`` on the channel
  instead of the stop signal (:data:`SHUTDOWN`); SIGKILL still follows after ``kill_timeout``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from functools import partial
from typing import TYPE_CHECKING, Any

from corral import events as ev
from corral.config.addresses import parse_listen
from corral.config.command import with_preload
from corral.lifecycle import instance as lc
from corral.process.listeners import BindError
from corral.process.nodeipc import ENV, Channel, encode
from corral.process.spawner import SpawnError

if TYPE_CHECKING:
    from corral.daemon.slots import App, Slot
    from corral.daemon.supervisor import Supervisor
    from corral.process.spawner import Child

PRELOAD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "process", "cluster_preload.cjs")
SHUTDOWN = encode("shutdown")
MAX_INFERRED = 16  # ports one app may have corral bind for it


class Spawning:
    """One spawn's channel, from before the fork until the child has it (or the fork failed)."""

    __slots__ = ("ours", "theirs")

    def __init__(self) -> None:
        self.ours, self.theirs = Channel.pair()

    def started(self, sup: Supervisor, slot: Slot, child: Child) -> None:
        self.theirs.close()
        if slot.ipc is not None:
            slot.ipc.close()
        slot.ipc = Channel(sup.loop, self.ours, partial(on_message, sup, slot, child))

    def failed(self) -> None:
        self.ours.close()
        self.theirs.close()


def prepare(sup: Supervisor, slot: Slot, argv: list[str], env: dict[str, str],
            first_fd: int | None) -> tuple[list[str], list[int], Spawning]:
    """The argv (with the preload in cluster mode), the fds to pass besides the declared sockets
    (inherited inferred sockets, then the channel) and the channel, for one spawn.  ``first_fd``:
    where the exec shim puts those fds (None: no shim, they keep their numbers).  ENV gets
    ``NODE_CHANNEL_FD`` and, in cluster mode, what the preload needs to know."""
    app = slot.app
    try:
        spawning = Spawning()
    except OSError as exc:
        raise SpawnError(f"cannot make the IPC channel: {exc.strerror or exc}") from None
    inherited: list[tuple[str, int]] = []
    if app.node_cluster:
        argv = with_preload(argv, _preload(sup, slot))
        inherited = _held(sup, slot)
    extra = [fd for _, fd in inherited] + [spawning.theirs.fileno()]
    numbers = list(range(first_fd, first_fd + len(extra))) if first_fd is not None else extra
    env.update(ENV)
    env["NODE_CHANNEL_FD"] = str(numbers[-1])
    if app.node_cluster:
        declared = sup.sockets.resolved(app.name, app.spec.listen)
        env["CORRAL_NODE_CLUSTER"] = "1"
        env["CORRAL_NODE_LISTEN"] = " ".join(f"{3 + i}={a}" for i, a in enumerate(declared))
        env["CORRAL_NODE_INFERRED"] = " ".join(f"{n}={a}" for n, (a, _) in zip(numbers, inherited))
    return argv, extra, spawning


def _held(sup: Supervisor, slot: Slot) -> list[tuple[str, int]]:
    """(address, fd) of the inferred addresses this slot listened on: bound again if need be (a new
    daemon restoring the app); one that cannot be is left to the app's own listen call."""
    app, held = slot.app, []
    for address, slots in list(app.inferred.items()):
        if slot.index in slots:
            try:
                held.append((address, sup.sockets.fds(app.name, [address], slot.index)[0]))
            except BindError:
                slots.remove(slot.index)
    return held


def _preload(sup: Supervisor, slot: Slot) -> str:
    """corral's preload, or a copy in ``/run/corral/<home>`` for an app run as another user who
    cannot read corral's own (a package under /root)."""
    if slot.app.spec.user is None or _readable_by_all(PRELOAD):
        return PRELOAD
    try:
        return sup.notify_sockets.shared_file("cluster_preload.cjs", PRELOAD)
    except (OSError, AttributeError):
        return PRELOAD  # node says it cannot find the module: one clear line in the app's log


def _readable_by_all(path: str) -> bool:
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        folder = os.path.dirname(path)
        while True:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return False
            parent = os.path.dirname(folder)
            if parent == folder:
                return True
            folder = parent
    except OSError:
        return False


def on_message(sup: Supervisor, slot: Slot, child: Child, message: Any) -> None:
    """One message of an instance's channel (None: the channel is closed)."""
    channel = slot.ipc
    if message is None or channel is None:
        if channel is not None and channel.closed:
            slot.ipc = None
        return
    if slot.child is not child:
        return
    if message == "ready":
        sup.dispatch(slot, lc.Ready())
        return
    cmd = message.get("cmd") if isinstance(message, dict) else None
    if cmd == "NODE_CORRAL_LISTENING" and slot.app.node_cluster:
        sup.dispatch(slot, lc.Listening())
    elif cmd == "NODE_CORRAL_LISTEN" and slot.app.node_cluster:
        listen(sup, slot, channel, message)


def listen(sup: Supervisor, slot: Slot, channel: Channel, message: dict[str, Any]) -> None:
    """The preload asks for a socket on ``host``:``port`` (``host`` null: every address, as Node's
    ``listen(port)``): the slot's socket for it, or the errno its own bind would have got."""
    rid, port, host = message.get("id"), message.get("port"), message.get("host")
    if not isinstance(rid, int) or not isinstance(port, int) or not _port(port) or not (host is None or _ip(host)):
        channel.send(encode({"cmd": "NODE_CORRAL_SOCKET", "id": rid if isinstance(rid, int) else 0,
                             "errno": -errno.EINVAL}))
        return
    app = slot.app
    fd = _declared(sup, slot, port)
    address = None
    if fd is None:
        code = _refused(app, port)
        try:
            if code is not None:
                raise BindError("refused", code)
            address, fd = _bind(sup, slot, port, host)
        except BindError as exc:
            shown = host if host is not None else "::"
            channel.send(encode({"cmd": "NODE_CORRAL_SOCKET", "id": rid, "errno": -(exc.errno or errno.EINVAL),
                                 "address": shown}))
            return
    reply = {"cmd": "NODE_HANDLE", "type": "net.Native", "msg": {"cmd": "NODE_CORRAL_SOCKET", "id": rid}}
    if channel.send(encode(reply), fd) and address is not None:
        _record(sup, slot, address)


def _port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _ip(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
            return "%" not in value
        except (OSError, ValueError):
            continue
    return False


def _declared(sup: Supervisor, slot: Slot, port: int) -> int | None:
    """The slot's socket of a declared TCP address on PORT: a declared address wins, whatever host
    the app asks for."""
    app = slot.app
    if not app.spec.listen:
        return None
    for address, fd in zip(sup.sockets.resolved(app.name, app.spec.listen),
                           sup.sockets.fds(app.name, app.spec.listen, slot.index)):
        kind, _, where = parse_listen(address)
        if kind == "tcp" and int(where) == port:
            return fd
    return None


def _refused(app: App, port: int) -> int | None:
    """An errno for a port corral will not bind for this app: below the unprivileged ports for an
    app run as another user (it could not bind it itself), or one port too many."""
    if app.spec.user is not None and port < _unprivileged_start():
        return errno.EACCES
    if len(app.inferred) >= MAX_INFERRED and not any(parse_listen(a)[2] == port for a in app.inferred):
        return errno.EMFILE
    return None


def _unprivileged_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _bind(sup: Supervisor, slot: Slot, port: int, host: str | None) -> tuple[str, int]:
    """Node's listen(port) binds ``::`` (IPv4 too), or ``0.0.0.0`` where there is no IPv6."""
    hosts = [host] if host is not None else (["::", "0.0.0.0"] if socket.has_ipv6 else ["0.0.0.0"])
    for i, candidate in enumerate(hosts):
        try:
            return sup.sockets.claim(slot.app.name, candidate, port, slot.index)
        except BindError as exc:
            if i + 1 == len(hosts) or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise
    raise AssertionError("unreachable")


def _record(sup: Supervisor, slot: Slot, address: str) -> None:
    """ADDRESS is this slot's now: kept with the app (its replacements inherit the socket)."""
    app = slot.app
    slots = app.inferred.setdefault(address, [])
    if slot.index in slots:
        return
    slots.append(slot.index)
    slots.sort()
    sup.store.put_app(app.name, app.id, app.stored_spec(), app.desired)
    if len(slots) == 1:
        sup.publish(ev.Note(app=app.name, instance=slot.index, kind="listen",
                            message=f"listens on {address} (the port its code listens on, cluster mode)"))


def forget_slot(sup: Supervisor, app: App, index: int) -> None:
    """A slot gone for good (scale down): its inferred addresses are no longer its."""
    changed = False
    for address, slots in list(app.inferred.items()):
        if index in slots:
            slots.remove(index)
            changed = True
        if not slots:
            del app.inferred[address]
            sup.sockets.release_address(app.name, address)
    if changed:
        sup.store.put_app(app.name, app.id, app.stored_spec(), app.desired)


def forget_all(sup: Supervisor, app: App) -> None:
    """The app left cluster mode: corral binds nothing for it any more."""
    for address in app.inferred:
        sup.sockets.release_address(app.name, address)
    app.inferred.clear()


def checked_inferred(value: Any) -> dict[str, list[int]]:
    """A stored ``listen_inferred`` (address -> slots), or {} when it does not look like one."""
    if not isinstance(value, dict) or len(value) > MAX_INFERRED:
        return {}
    out: dict[str, list[int]] = {}
    for address, slots in value.items():
        try:
            kind, _, _ = parse_listen(address)
        except (ValueError, TypeError, AttributeError):
            return {}
        if kind != "tcp" or not isinstance(slots, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 100000 for i in slots):
            return {}
        out[address] = sorted(set(slots))
    return out
