"""The control protocol: newline-delimited JSON over the daemon's Unix socket.

A request is ``{"v": 1, "id": N, "op": "ls", "args": {...}}``.  A reply carries
the same ``id`` and either ``"result"`` or ``"error": {"code", "message"}``.
Long operations may send several ``"progress"`` messages before the final one.

Shared by the CLI and the daemon, so it imports only ``json`` (and the exception roots).
"""

from __future__ import annotations

import json

from corral.exceptions import CorralError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time on the CLI's fast path
    from typing import Any

VERSION = 1
MAX_MESSAGE = 8 * 1024 * 1024  # bytes in one request line (the daemon refuses longer ones)
MAX_DEPTH = 32  # nesting of a request (a start's deepest value, a probe's cmd list, is at 6)

# Error codes.  USER errors are the caller's mistake (exit status 2 in the CLI);
# FAILED means the operation was valid but did not succeed (exit status 1).
USER = "user_error"
FAILED = "failed"
INTERNAL = "internal"
BAD_REQUEST = "bad_request"


class ProtocolError(CorralError):
    """A message that is not valid JSON or not a valid envelope."""


class RemoteError(CorralError):
    """An error reply from the daemon."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes, max_depth: int | None = None) -> dict[str, Any]:
    """One message; with ``max_depth``, one nested deeper than that is refused too."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise ProtocolError(f"nested too deeply (at most {max_depth or MAX_DEPTH} levels)") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    if max_depth is not None and too_deep(message, max_depth):
        raise ProtocolError(f"nested too deeply (at most {max_depth} levels)")
    return message


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when VALUE nests lists and tables more than LIMIT levels deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return False


def request(msg_id: int, op: str, args: dict[str, Any] | None = None) -> bytes:
    return encode({"v": VERSION, "id": msg_id, "op": op, "args": args or {}})


class Encoded(str):
    """A result its handler already encoded as JSON text (a long history, encoded one event at a
    time): :func:`reply` puts it in as it is."""


def reply(msg_id: Any, result: Any) -> bytes:
    if isinstance(result, Encoded):  # the bytes encode() would write for the decoded result
        return b"".join((encode({"v": VERSION, "id": msg_id})[:-2], b',"result":', result.encode(), b"}\n"))
    return encode({"v": VERSION, "id": msg_id, "result": result})


def progress(msg_id: Any, data: Any) -> bytes:
    return encode({"v": VERSION, "id": msg_id, "progress": data})


def error(msg_id: Any, code: str, message: str) -> bytes:
    return encode({"v": VERSION, "id": msg_id, "error": {"code": code, "message": message}})
