"""Reading an instance's stdout/stderr pipes into line-framed chunks for a sink.

Only complete lines reach the sink, so lines of two instances that share a
file never mix; a partial line waits for its newline and is flushed when the
pipe closes; a line longer than ``max_line`` is split, never dropped.  The
reader is driven by the event loop (no thread): when the daemon falls behind,
the pipe fills and the writer is slowed by the kernel, and nothing is lost.  A
busy pipe is read once a millisecond, not at each of its writer's writes
(:data:`GATHER`).
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
#: One read.  Below the daemon's mmap threshold (256 KiB, ``corral.control.client.DAEMON_MALLOC``),
#: so a chunk and its copies (a partial line joined, redaction, stamps) reuse the heap's blocks; a
#: block above it is a fresh mapping each time, a page fault per 4 KiB touched: 0.65 ms per MiB
#: and per copy.  Larger than the 32 KiB it was: each chunk costs some microseconds of Python
#: whatever its size (the sink, the redactor's calls, a write), 0.4-0.6 ns a byte less at 128 KiB.
READ_SIZE = 128 * 1024
BURST = 1 << 20  # at most this much is read per wake-up (a whole pipe) ...
SLICE = 0.02  # ... and reads stop once this many seconds of work were done (other apps' turn)
#: A pipe that woke the loop less than BUSY_GAP seconds after its last wake-up and had less than
#: SMALL_READ bytes is left to fill for GATHER seconds before it is read again (its reader is
#: taken off the loop meanwhile).  A busy app writes 4-8 KiB at a time; the loop woke for each
#: write, and a wake-up costs the daemon tens of microseconds on a VM (measured: a reader that
#: only counted the lines of an app writing 300 MB/s used 0.9 of a core, 0.4 with this).  The
#: 1 MiB pipe holds 2-3 ms of such an app, so its writes do not wait; a quiet app's lines are
#: read at once, a busy one's at most GATHER seconds later.
GATHER = 0.001
BUSY_GAP = 0.01
SMALL_READ = 64 * 1024
MAX_LINE = 64 * 1024
TAIL_BYTES = 16 * 1024


def should_gather(since_last_wakeup: float, read: int) -> bool:
    """Whether a pipe that woke the loop ``since_last_wakeup`` seconds after its previous wake-up
    and gave ``read`` bytes is left to fill for :data:`GATHER` seconds."""
    return since_last_wakeup < BUSY_GAP and read < SMALL_READ


def link(*readers: PipeReader) -> None:
    """Readers of one process's pipes (stdout, stderr): before one reads, a sibling left to fill
    (:data:`GATHER`) is read first, so lines keep the order they were written in across the two
    streams as well as without a gather (a job's ``print()`` then its error: that order)."""
    for reader in readers:
        reader.siblings = tuple(r for r in readers if r is not reader)


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
        self._woke = 0.0  # time.monotonic() of the last wake-up
        self._resume: asyncio.TimerHandle | None = None  # set while the pipe is left to fill (GATHER)
        self.siblings: tuple[PipeReader, ...] = ()  # the same process's other pipes: see link()
        loop.add_reader(fd, self._on_readable)

    @property
    def open(self) -> bool:
        return self._fd is not None

    def _on_readable(self) -> None:
        """Reads until the pipe is empty (a read shorter than asked), :data:`BURST` bytes were read
        or :data:`SLICE` seconds of work were done, whichever comes first; then leaves a busy pipe
        to fill (:data:`GATHER`)."""
        for other in self.siblings:  # what it wrote there before this is read first
            if other._resume is not None:
                other._wake()
        now = time.monotonic()
        since, self._woke = now - self._woke, now
        deadline = now + SLICE
        got = 0
        while got < BURST:
            size = self._read_once()
            got += size
            if size < READ_SIZE or time.monotonic() > deadline:  # a short read: the pipe is empty
                break
        if should_gather(since, got) and self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._resume = self._loop.call_later(GATHER, self._gathered)

    def _gathered(self) -> None:
        self._resume = None
        if self._fd is not None:
            self._loop.add_reader(self._fd, self._on_readable)

    def _wake(self) -> None:
        """End a gather now and read what the pipe holds."""
        assert self._resume is not None
        self._resume.cancel()
        self._gathered()
        self._on_readable()

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
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
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
