"""The daemon's end of Node's IPC channel, on a real socket pair and a real event loop: framing,
what is parsed and what is skipped, descriptors in both directions, a peer that does not read."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.daemon.nodeapps import checked_inferred
from corral.process import nodeipc
from corral.process.listeners import BindError, SocketRegistry
from corral.process.nodeipc import Channel


class Peer:
    """The child's end, read and written by the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ours, self.sock = Channel.pair()
        self.got: list[Any] = []
        self.channel = Channel(self.loop, ours, self.got.append)

    def turn(self) -> None:
        """One pass of the loop: the channel reads what is there."""
        self.loop.run_until_complete(asyncio.sleep(0.01))

    def close(self) -> None:
        self.channel.close()
        self.sock.close()
        self.loop.close()


@pytest.fixture
def peer() -> Any:
    made = Peer()
    yield made
    made.close()


def fds_open() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_ready_and_internal_messages_are_parsed_the_rest_is_skipped(peer: Peer) -> None:
    peer.sock.sendall(b'"ready"\n{"type":"process:msg","data":{"x":1}}\n"hello"\n{"cmd":"NODE_CORRAL_LISTENING"}\n')
    peer.turn()
    assert peer.got == ["ready", {"cmd": "NODE_CORRAL_LISTENING"}]


def test_a_message_split_across_reads_is_one_message(peer: Peer) -> None:
    for piece in (b'{"cmd":"NODE_CORRAL_LIS', b'TEN","id":1,"port":3000,', b'"host":null}\n"rea', b'dy"\n'):
        peer.sock.sendall(piece)
        peer.turn()
    assert peer.got == [{"cmd": "NODE_CORRAL_LISTEN", "id": 1, "port": 3000, "host": None}, "ready"]


def test_a_line_longer_than_the_limit_is_skipped_whole_and_the_next_one_counts(peer: Peer) -> None:
    huge = b'{"cmd":"NODE_CORRAL_LISTENING","pad":"' + b"x" * (nodeipc.MAX_LINE * 3) + b'"}\n'
    for i in range(0, len(huge), 1000):
        peer.sock.sendall(huge[i:i + 1000])
        peer.turn()
    peer.sock.sendall(b'"ready"\n')
    peer.turn()
    assert peer.got == ["ready"]


def test_broken_json_is_ignored(peer: Peer) -> None:
    peer.sock.sendall(b'{"cmd":"NODE_CORRAL_LISTEN", oops\n"ready"\n')
    peer.turn()
    assert peer.got == ["ready"]


def test_descriptors_an_app_sends_are_closed_and_its_handle_is_acked(peer: Peer) -> None:
    before = fds_open()
    r, w = os.pipe()
    try:
        peer.sock.sendmsg([b'{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"x":1}}\n'],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, r.to_bytes(4, sys.byteorder))])
        peer.turn()
    finally:
        os.close(r)
        os.close(w)
    assert fds_open() == before  # the copy the channel received is closed too
    assert peer.got == []
    assert peer.sock.recv(100) == nodeipc.ACK


def test_a_socket_goes_to_the_child_with_its_message(peer: Peer) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert peer.channel.send(nodeipc.encode({"cmd": "NODE_HANDLE", "msg": {"id": 7}}), listener.fileno())
        data, ancillary, _, _ = peer.sock.recvmsg(1000, socket.CMSG_SPACE(4))
        got = int.from_bytes(ancillary[0][2][:4], sys.byteorder)
        with socket.socket(fileno=got) as received:
            assert received.getsockname() == listener.getsockname()
    assert json.loads(data) == {"cmd": "NODE_HANDLE", "msg": {"id": 7}}


def test_what_a_peer_does_not_read_waits_and_goes_out_in_order(peer: Peer) -> None:
    line = nodeipc.encode({"cmd": "NODE_CORRAL_SOCKET", "pad": "y" * 1000})
    sent = 0
    while sent < 50:  # the kernel's buffer fills: the rest waits in the channel's queue
        assert peer.channel.send(line)
        sent += 1
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        assert peer.channel.send(b'"last"\n', listener.fileno())
    received = b""
    fds: list[int] = []
    while received.count(b"\n") < sent + 1:
        peer.turn()
        data, ancillary, _, _ = peer.sock.recvmsg(65536, socket.CMSG_SPACE(4))
        received += data
        fds += [int.from_bytes(a[2][:4], sys.byteorder) for a in ancillary]
    assert received.split(b"\n")[:sent + 1] == [line.rstrip(b"\n")] * sent + [b'"last"']
    assert len(fds) == 1
    os.close(fds[0])


def test_a_peer_that_never_reads_loses_its_channel_not_the_daemons_memory(peer: Peer) -> None:
    line = nodeipc.encode({"pad": "z" * 4000})
    results = [peer.channel.send(line) for _ in range(400)]
    assert results[-1] is False and peer.channel.closed


def test_the_end_of_the_channel_is_reported_once(peer: Peer) -> None:
    peer.sock.close()
    peer.turn()
    assert peer.got == [None] and peer.channel.closed


# -- the registry: ports a Node app's code listens on -------------------------------------------
def test_a_claimed_port_is_one_socket_per_slot_and_another_apps_port_is_in_use() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = SocketRegistry()
    try:
        address, fd0 = registry.claim("web", "127.0.0.1", port, 0)
        again = registry.claim("web", "127.0.0.1", port, 0)
        _, fd1 = registry.claim("web", "127.0.0.1", port, 1)
        assert address == f"tcp://127.0.0.1:{port}" and again == (address, fd0) and fd1 != fd0
        with pytest.raises(BindError) as caught:
            registry.claim("api", "0.0.0.0", port, 0)
        assert caught.value.errno == errno.EADDRINUSE
        assert str(caught.value) == (f'cannot listen on tcp://0.0.0.0:{port} for app "api": '
                                     f"another app listens on port {port}")
        # the kernel would let a declared SO_REUSEPORT bind on another host share the port: refused
        with pytest.raises(BindError) as caught:
            registry.fds("api", [f"tcp://127.0.0.2:{port}"], 0)
        assert str(caught.value) == f'cannot listen on tcp://127.0.0.2:{port} for app "api": app "web" listens on port {port}'
        registry.release_address("web", address)
        assert not registry.holds("web", address, 0)
        registry.claim("api", "0.0.0.0", port, 0)  # free again
    finally:
        registry.close_all()


def test_a_port_held_outside_corral_is_the_kernels_errno() -> None:
    with socket.socket() as other:
        other.bind(("0.0.0.0", 0))
        other.listen()
        registry = SocketRegistry()
        with pytest.raises(BindError) as caught:
            registry.claim("web", "::", other.getsockname()[1], 0)
        assert caught.value.errno == errno.EADDRINUSE
        registry.close_all()


@pytest.mark.parametrize("stored, restored", [
    ({"tcp://[::]:3000": [1, 0, 1]}, {"tcp://[::]:3000": [0, 1]}),
    ({"tcp://[::]:3000": [0], "tcp://127.0.0.1:9100": [2]}, {"tcp://[::]:3000": [0], "tcp://127.0.0.1:9100": [2]}),
    ({"unix:/tmp/x.sock": [0]}, {}),
    ({"tcp://[::]:3000": ["0"]}, {}),
    ({"tcp://[::]:3000": [True]}, {}),
    ({"nonsense": [0]}, {}),
    ([["tcp://[::]:3000", [0]]], {}),
    ({f"tcp://[::]:{3000 + i}": [0] for i in range(17)}, {}),
])
def test_a_stored_inferred_address_list_is_checked(stored: Any, restored: dict[str, list[int]]) -> None:
    assert checked_inferred(stored) == restored


# -- the preload for an app run as another user ------------------------------------------------
def test_a_file_under_a_private_folder_is_not_readable_by_all(tmp_path: Path) -> None:
    from corral.daemon.nodeapps import PRELOAD, _readable_by_all

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "p.js").write_text("//")
    (private / "p.js").chmod(0o644)
    assert not _readable_by_all(str(private / "p.js"))
    private.chmod(0o711)
    assert _readable_by_all(str(private / "p.js")) is all(
        os.stat(p).st_mode & 0o001 for p in [*map(str, (private / "p.js").parents)])
    assert os.path.exists(PRELOAD)


@pytest.mark.skipif(os.geteuid() != 0, reason="/run/corral is root's")
def test_a_shared_copy_is_roots_readable_by_all_and_removed_with_the_daemon(tmp_path: Path) -> None:
    from corral.process.sdnotify import NotifySockets

    loop = asyncio.new_event_loop()
    source = tmp_path / "source.js"
    source.write_text("// the preload\n")
    sockets = NotifySockets(loop, str(tmp_path / "notify.sock"), lambda pid, fields: None)
    try:
        path = sockets.shared_file("cluster_preload.cjs", str(source))
        st = os.stat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o711
        assert Path(path).read_text() == "// the preload\n"
        assert sockets.shared_file("cluster_preload.cjs", str(source)) == path
    finally:
        sockets.close()
        loop.close()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
