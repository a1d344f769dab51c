"""Reading an instance's stdout/stderr pipes into line-framed chunks for a sink.

Only complete lines reach the sink, so lines of two instances that share a
file never mix; a partial line waits for its newline and is flushed when the
pipe closes; a line longer than ``max_line`` is split, never dropped.  The
reader is driven by the event loop (no thread): when the daemon falls behind,
the pipe fills and the writer is slowed by the kernel, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from typing import Callable

Sink = Callable[[bytes], None]
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
#: One read: below the daemon's mmap threshold (64 KiB, ``corral.control.client.DAEMON_MALLOC``), so
#: a chunk and its copies (a partial line joined, redaction, stamps) reuse the heap's blocks; a
#: block above it is a fresh mapping each time, a page fault per 4 KiB touched: 0.65 ms per MiB
#: and per copy, most of the cost of a flood when reads were a whole pipe (1 MiB).
READ_SIZE = 32 * 1024
BURST = 1 << 20  # at most this much is read per wake-up (a whole pipe) ...
SLICE = 0.02  # ... and reads stop once this many seconds of work were done (other apps' turn)
MAX_LINE = 64 * 1024
TAIL_BYTES = 16 * 1024


def make_pipe() -> tuple[int, int]:
    """A pipe whose read end is non-blocking and large (fewer wake-ups under load)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        fcntl.fcntl(read_fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass
    return read_fd, write_fd


class PipeReader:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        sink: Sink,
        *,
        max_line: int = MAX_LINE,
        keep_tail: bool = False,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._sink = sink
        self._max_line = max_line
        self._partial = b""
        self._on_eof = on_eof
        self.tail = bytearray() if keep_tail else None
        loop.add_reader(fd, self._on_readable)

    @property
    def open(self) -> bool:
        return self._fd is not None

    def _on_readable(self) -> None:
        """Reads until the pipe is empty, :data:`BURST` bytes were read or :data:`SLICE` seconds of
        work were done, whichever comes first."""
        deadline = time.monotonic() + SLICE
        got = 0
        while got < BURST:
            size = self._read_once()
            if not size:
                return
            got += size
            if time.monotonic() > deadline:
                return

    def _read_once(self) -> int:
        """Read one chunk; how many bytes (0 when nothing more is available right now)."""
        if self._fd is None:
            return 0
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError:
            data = b""
        if not data:
            self.close()
            return 0
        self._feed(data)
        return len(data)

    def drain(self) -> None:
        """Read everything already in the pipe (called when the writer has exited)."""
        while self._read_once():
            pass

    def _feed(self, data: bytes) -> None:
        cut = data.rfind(b"\n")
        if cut < 0:
            complete, rest = b"", self._partial + data
        elif self._partial or cut + 1 < len(data):  # one copy: the partial line and the whole lines
            complete, rest = b"".join((self._partial, memoryview(data)[: cut + 1])), data[cut + 1 :]
        else:
            complete, rest = data, b""
        limit = self._max_line
        if len(complete) > limit and _has_long_line(complete, limit):
            complete = _split_long_lines(complete, limit)
        while len(rest) > limit:  # longer than a line may be (exactly limit: wait for its end)
            at = _cut_at(rest, limit)
            complete += rest[:at] + b"\n"
            rest = rest[at:]
        self._partial = rest
        if complete:
            self._emit(complete)

    def _emit(self, chunk: bytes) -> None:
        if self.tail is not None:
            self.tail += chunk
            if len(self.tail) > 2 * TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]
        self._sink(chunk)

    def close(self) -> None:
        """Stop reading; a pending partial line is flushed with a newline."""
        if self._fd is None:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None
        if self._partial:
            partial, self._partial = self._partial, b""
            self._emit(partial + b"\n")
        if self._on_eof is not None:
            self._on_eof()

    def tail_lines(self, count: int = 50) -> list[str]:
        if not self.tail:
            return []
        text = bytes(self.tail[-TAIL_BYTES:]).decode("utf-8", "replace")
        return text.splitlines()[-count:]


def _has_long_line(chunk: bytes, limit: int) -> bool:
    """Whether a line of ``chunk`` (complete lines) is longer than ``limit``, in a few ``rfind``s."""
    pos, end = 0, len(chunk)
    while end - pos > limit:
        nl = chunk.rfind(b"\n", pos, pos + limit + 1)
        if nl < 0:
            return True
        pos = nl + 1
    return False


def _cut_at(line: bytes, limit: int) -> int:
    """Where to split a line longer than ``limit``: at ``limit``, moved back (at most 3 bytes) so
    a UTF-8 character is not cut in two."""
    at = limit
    while at > limit - 3 and 0x80 <= line[at] <= 0xBF:
        at -= 1
    return limit if 0x80 <= line[at] <= 0xBF else at  # not UTF-8: cut anywhere


def _split_long_lines(chunk: bytes, limit: int) -> bytes:
    out = []
    for line in chunk.split(b"\n")[:-1]:
        while len(line) > limit:
            at = _cut_at(line, limit)
            out.append(line[:at])
            line = line[at:]
        out.append(line)
    return b"\n".join(out) + b"\n"


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (a pipe or a slow terminal may take it in pieces)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
