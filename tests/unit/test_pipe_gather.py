"""A busy pipe is read once a millisecond, not at each write (corral.logs.pipe.GATHER): fewer,
larger chunks, every line once and in order; a quiet pipe is read at once; closing or the end of
the pipe during a gather loses nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from corral.logs import pipe
from tests.conftest import PYTHON


@pytest.mark.parametrize(("since", "read", "gather"), [
    (0.0005, 100, True),  # woke again right away with one small write: let it fill
    (pipe.BUSY_GAP - 1e-6, pipe.SMALL_READ - 1, True),
    (pipe.BUSY_GAP, 100, False),  # a quiet pipe: its next line is read at once
    (5.0, 100, False),
    (0.0005, pipe.SMALL_READ, False),  # behind already (a large read): read again as soon as it has more
    (0.0005, pipe.BURST, False),
])
def test_should_gather(since: float, read: int, gather: bool) -> None:
    assert pipe.should_gather(since, read) is gather


WRITER = """
import os, sys
count = int(sys.argv[1])
for i in range(count):
    os.write(1, b"line %06d of a busy writer, one write each\\n" % i)
"""


def test_a_busy_pipe_is_read_in_fewer_larger_chunks() -> None:
    """A writer that makes one write per line, as fast as it can: the reader's chunks hold many
    writes each (it woke for each write before), and every line arrives once, in order."""
    count = 20000
    loop = asyncio.new_event_loop()
    read_fd, write_fd = pipe.make_pipe()
    chunks: list[bytes] = []
    done = loop.create_future()
    app = subprocess.Popen([PYTHON, "-c", WRITER, str(count)], stdout=write_fd)
    os.close(write_fd)
    pipe.PipeReader(loop, read_fd, chunks.append, on_eof=lambda: done.set_result(None))
    start = loop.time()
    loop.run_until_complete(asyncio.wait_for(done, 60))
    took = loop.time() - start
    loop.close()
    assert app.wait(10) == 0
    assert b"".join(chunks).split(b"\n")[:-1] == [b"line %06d of a busy writer, one write each" % i for i in range(count)]
    # one chunk per wake-up, and a busy pipe wakes the loop once per GATHER at most (without it:
    # ~3,000 chunks in 35 ms here, a read each time the reader caught up with the writer)
    assert len(chunks) <= 2 * took / pipe.GATHER + 10, f"{len(chunks)} chunks in {took:.3f} s"


def test_a_quiet_pipe_is_read_at_once_and_a_close_during_a_gather_loses_nothing() -> None:
    """The first line after a quiet time is read at its wake-up (no gather); two wake-ups in a row
    with little each: the second leaves the pipe to fill (the reader off the loop, a timer set);
    closing then cancels the timer, flushes the partial line, and the loop goes on without it."""
    loop = asyncio.new_event_loop()
    read_fd, write_fd = pipe.make_pipe()
    got: list[bytes] = []
    eof: list[bool] = []
    reader = pipe.PipeReader(loop, read_fd, got.append, on_eof=lambda: eof.append(True))

    async def until(what: object, check: object) -> None:
        deadline = loop.time() + 10
        while not check():  # type: ignore[operator]
            assert loop.time() < deadline, f"no {what} within 10 s"
            await asyncio.sleep(0.001)

    async def scenario() -> None:
        os.write(write_fd, b"first\n")
        await until("first line", lambda: got == [b"first\n"])
        assert reader._resume is None  # read at once, nothing held back
        os.write(write_fd, b"second\nhalf a li")
        reader._woke = time.monotonic()  # as if it had just woken: this is a second wake-up in a row
        reader._on_readable()  # ... with little: gather
        assert got == [b"first\n", b"second\n"] and reader._resume is not None
        timer = reader._resume
        reader.close()
        assert reader._resume is None and not reader.open
        assert timer.cancelled()  # it would put the closed fd back on the loop
        assert got[-1] == b"half a li\n" and eof == [True]

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
        os.close(write_fd)


def test_the_end_of_a_pipe_during_a_gather_is_seen_after_it() -> None:
    """The writer exits while its pipe is left to fill: its last lines and the end are read once
    the gather is over (a few milliseconds), nothing is lost."""
    loop = asyncio.new_event_loop()
    read_fd, write_fd = pipe.make_pipe()
    got: list[bytes] = []
    done = loop.create_future()
    reader = pipe.PipeReader(loop, read_fd, got.append, on_eof=lambda: done.set_result(None))

    async def scenario() -> None:
        os.write(write_fd, b"a\n")
        reader._on_readable()
        os.write(write_fd, b"b\n")
        reader._woke = time.monotonic()
        reader._on_readable()  # the second one in a row: gathers
        assert reader._resume is not None
        os.write(write_fd, b"c\nno newline")
        os.close(write_fd)
        await asyncio.wait_for(done, 10)

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert b"".join(got) == b"a\nb\nc\nno newline\n"


def test_a_stream_left_to_fill_is_read_before_its_sibling() -> None:
    """stdout gathers with half a line; the process ends that line, then writes to stderr: when
    stderr is read, stdout is read first, so its line comes first (as written), not a
    millisecond later after stderr's (a job's tail and `jobs run` showed them swapped)."""
    loop = asyncio.new_event_loop()
    out_r, out_w = pipe.make_pipe()
    err_r, err_w = pipe.make_pipe()
    got: list[tuple[str, bytes]] = []
    out = pipe.PipeReader(loop, out_r, lambda chunk: got.append(("out", chunk)))
    err = pipe.PipeReader(loop, err_r, lambda chunk: got.append(("err", chunk)))
    pipe.link(out, err)
    assert out.siblings == (err,) and err.siblings == (out,)
    try:
        os.write(out_w, b"shared")
        out._woke = time.monotonic()
        out._on_readable()  # a second wake-up in a row, with half a line: gathers
        assert out._resume is not None and got == []
        os.write(out_w, b" from-api yes\n")
        os.write(err_w, b"token=REDACTED\n")
        err._on_readable()
        assert got == [("out", b"shared from-api yes\n"), ("err", b"token=REDACTED\n")]
        assert err._resume is None
    finally:
        for reader in (out, err):
            reader.close()
        loop.close()
        os.close(out_w)
        os.close(err_w)
