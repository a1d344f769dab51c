"""The fast path for ``corral ls`` (``list``, ``status``, PM2's ``ps``, ``l`` and ``jlist``, ``--json``).

These run in scripts and prompts many times a minute, so they skip argparse,
the ``socket`` module and the ``json`` package (which pull in ``re`` and
``enum``): the C modules ``_socket`` and ``_json`` are enough.  When the daemon
is not running, or replies with an error, they return None and the ordinary
path takes over (it starts the daemon and reports errors).
"""

from __future__ import annotations

import sys

LIST_COMMANDS = {"ls", "list", "status", "ps", "l"}
REPLY_PREFIX = b'{"v":1,"id":1,"result":'


def try_fast(argv: list[str]) -> int | None:
    import os  # loaded by the interpreter already

    if "CORRAL_REMOTE" in os.environ:  # another host's API: the ordinary path
        return None
    if argv == ["jlist"]:  # PM2's: the list as JSON, one line
        argv = ["ls", "--json"]
    if not argv or argv[0] not in LIST_COMMANDS or any(a not in ("--json",) for a in argv[1:]):
        return None
    reply = _call(b'{"v":1,"id":1,"op":"ls","args":{}}\n')
    if isinstance(reply, str):  # the daemon did not answer in time
        print(reply, file=sys.stderr)
        return 1
    if reply is None:
        return None
    if "--json" in argv:
        sys.stdout.buffer.write(reply + b"\n")
        sys.stdout.flush()
        return 0
    from corral.cli import render

    print(render.table(_loads(reply.decode())))  # type: ignore[arg-type]  # a list of rows
    return 0


def _timeout() -> float:
    """``control.ops.timeout_for`` without importing it: CORRAL_TIMEOUT seconds (at least 2),
    else 30 (a test checks that both agree)."""
    import os  # loaded by the interpreter already

    try:
        value = float(os.environ.get("CORRAL_TIMEOUT") or 30.0)
    except ValueError:
        value = 30.0
    return max(2.0, value) if 0 < value <= 86400 else 30.0


def _call(request: bytes) -> bytes | str | None:
    """One request over the control socket; the raw JSON result, None to fall back, or the
    message saying that the daemon did not answer within the timeout."""
    import _socket

    from corral.paths import Home

    home = Home.from_env()
    try:
        home.check()
    except Exception:  # noqa: BLE001 - not corral's own home: the ordinary path says so
        return None
    path = home.socket
    timeout = _timeout()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                return None
            data += chunk
    except TimeoutError:
        return f'corral: the daemon did not answer "ls" within {timeout:g}s'
    except OSError:
        return None
    finally:
        sock.close()
    line = data.rstrip(b"\n")
    if not line.startswith(REPLY_PREFIX) or not line.endswith(b"}"):
        return None  # an error reply: the ordinary path reports it
    return line[len(REPLY_PREFIX) : -1]


class _Context:
    """What ``_json``'s C scanner reads from ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


def _loads(text: str) -> object:
    import _json

    value, end = _json.make_scanner(_Context())(text, 0)  # type: ignore[arg-type]  # duck-typed decoder
    return value
