"""Reading the files a config names, without hanging or swallowing the machine.

* :func:`read_capped` opens without blocking (a FIFO never waits for a writer), refuses anything
  but a regular file (FIFOs, devices such as ``/dev/zero``, sockets, directories), reads at most
  a size cap, and with a ``timeout`` gives up on a file system that does not answer.
* ``corral.control.protocol.too_deep`` and :func:`yaml_document` bound what a parsed document may hold: nesting
  depth, and for YAML the size once aliases are expanded ("billion laughs") and aliases that
  refer to themselves.

Errors are :class:`Unreadable` with a ``reason`` that completes a sentence about the file.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from corral.exceptions import UserMistake

MAX_CONFIG = 4 * 1024 * 1024  # bytes of an ecosystem file
MAX_ENV_FILE = 1024 * 1024  # bytes of an env_file
READ_TIMEOUT = 10.0  # seconds
MAX_DEPTH = 32  # levels of lists and tables in a document (an ecosystem needs about 5)
MAX_NODES = 200_000  # values in a YAML document once its aliases are expanded

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class Unreadable(UserMistake):
    """A file that cannot or must not be read: ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_capped(path: str, limit: int, timeout: float | None = None) -> bytes:
    """The bytes of the regular file at PATH, at most LIMIT of them (Unreadable otherwise)."""
    if timeout is None:
        return _read(path, limit)
    import threading

    box: list[Any] = []

    def work() -> None:
        try:
            box.append(_read(path, limit))
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    worker = threading.Thread(target=work, name="corral-read", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        raise Unreadable(f"could not be read within {timeout:g}s (a file system that does not answer?)")
    if isinstance(box[0], BaseException):
        raise box[0]
    data: bytes = box[0]
    return data


def _read(path: str, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except (ValueError, UnicodeEncodeError):  # a NUL or a lone surrogate in the path
        raise Unreadable("is not a valid path") from None
    except OSError as exc:
        raise Unreadable(f"cannot read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("is a directory")
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise Unreadable(f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise Unreadable(f"is {info.st_size} bytes (at most {limit})")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Unreadable(f"is more than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise Unreadable(f"cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def yaml_document(text: str) -> Any:
    """The YAML document in TEXT (a safe loader), refused (ValueError) when it nests deeper than
    :data:`MAX_DEPTH`, expands past :data:`MAX_NODES` values or holds an alias to itself."""
    import yaml  # slow to import: only for YAML files

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(root: Any) -> None:
    """Expanded size and depth of a composed YAML node graph (aliases are shared nodes)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        children = _children(node)
        if done:
            on_path.discard(id(node))
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in on_path:
            raise ValueError("an alias refers to the value that holds it (a document without end)")
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        on_path.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
    if sizes[id(root)] > MAX_NODES:
        raise ValueError(f"holds more than {MAX_NODES} values once its aliases are expanded "
                         "(an alias bomb?)")


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
            return [part for pair in value for part in pair]
        return list(value)
    return []
