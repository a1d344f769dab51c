"""Lines a sink could not write are counted, never hidden (corral.logs.lines, corral.logs.files).

Real files and real errors: ``/dev/full`` put in place of a log file's descriptor (``dup2``) fails
every write with ENOSPC, the file's own descriptor put back is space returning; ``RLIMIT_FSIZE``
(in a child process) makes a write stop in the middle of a chunk.  The daemon's end-to-end run
on a full tmpfs is ``tests/integration/test_full_disk.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from corral.cli import render
from corral.config.spec import AppSpec
from corral.events import Event, LogDropped
from corral.logs import files, lines
from corral.logs.files import LogWriters, RotatingFile
from corral.logs.lines import LogLoss, make_sink, unkept
from corral.logs.rotation import RotationPolicy
from tests.conftest import PYTHON, ROOT
from tests.logfiles import STAMP, unstamped

WITHHELD = "[line withheld: redaction failed]"


def open_file(path: Path, spec: AppSpec) -> RotatingFile:
    return LogWriters().acquire(str(path), RotationPolicy.from_spec(spec))


class DiskFull:
    """``/dev/full`` in place of the file's descriptor while inside; the file again after."""

    def __init__(self, f: RotatingFile) -> None:
        self.f = f

    def __enter__(self) -> None:
        self.saved = os.dup(self.f.fd)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, self.f.fd)
        os.close(full)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, self.f.fd)
        os.close(self.saved)


@pytest.mark.parametrize("kind", ["stamped", "plain", "json"])
def test_a_full_disk_drops_and_counts_its_lines_and_reports_them_when_writes_resume(
        tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = AppSpec(name="api", cwd="/", time=kind != "plain", log_type="json" if kind == "json" else "raw")
    f = open_file(tmp_path / "api.log", spec)
    published: list[Event] = []
    loss = LogLoss("api", published.append)
    sink = make_sink(spec, 1, "out", f, loss)
    caplog.set_level(logging.INFO, "corral.daemon")
    sink(b"a\nb\n")
    with DiskFull(f):
        before = time.time()
        sink(b"c\nd\ne\n")
        sink(b"ff\n")  # within a second of the failure: not tried, dropped and counted
    sink(b"gg\n")  # the file works again, but its retry is not due: still dropped
    assert (loss.out_lines, loss.out_bytes, loss.err_lines, loss.withheld) == (5, 12, 0, 0)
    assert loss.summary() == {"dropped_lines": 5, "dropped_bytes": 12, "withheld_lines": 0}
    [going_on] = loss.details()["dropping"]
    assert going_on["error"] == "No space left on device" and going_on["lines"] == 5
    assert going_on["since"] >= before and (going_on["instance"], going_on["stream"]) == (1, "out")
    assert published == []
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"api[1]: cannot write its stdout log {tmp_path / 'api.log'} (No space left on device): "
                        "its lines are dropped and counted until a write succeeds (tried again every second)"]

    monkeypatch.setattr(files, "RETRY_AFTER", 0.0)
    f.retry_at = time.monotonic()  # what a failure with RETRY_AFTER = 0 would have left
    sink(b"h\n")
    [event] = published
    assert isinstance(event, LogDropped)
    assert (event.app, event.instance, event.stream, event.lines, event.size) == ("api", 1, "out", 5, 12)
    assert event.since == going_on["since"] and event.error == "No space left on device"
    assert event.row()["kind"] == "log_dropped" and event.stored
    assert event.row()["data"] == {"stream": "out", "path": str(tmp_path / "api.log"), "lines": 5, "bytes": 12,
                                   "since": event.since, "error": "No space left on device"}
    assert event.message.startswith(f"5 line(s) (12 bytes) of stdout not written to {tmp_path / 'api.log'} since ")
    assert loss.outages is None and loss.details()["dropping"] == []
    assert loss.lines == 5  # the totals stay
    assert caplog.records[-1].getMessage() == "api[1]: writing its stdout log again; 5 line(s) (12 bytes) were dropped"
    text = (tmp_path / "api.log").read_text()
    if kind == "json":
        assert [json.loads(line)["message"] for line in text.splitlines()] == ["a", "b", "h"]
    else:
        assert (unstamped(text) if kind == "stamped" else text.splitlines()) == ["a", "b", "h"]


def test_a_new_process_of_the_instance_continues_the_outage(tmp_path: Path) -> None:
    spec = AppSpec(name="api", cwd="/")
    f = open_file(tmp_path / "api.log", spec)
    published: list[Event] = []
    loss = LogLoss("api", published.append)
    with DiskFull(f):
        make_sink(spec, 0, "err", f, loss)(b"first\n")
        f.retry_at = 0.0  # its retry is due (a second later)
        make_sink(spec, 0, "err", f, loss)(b"second\n")  # the next process of instance 0
    f.retry_at = 0.0  # its retry is due
    make_sink(spec, 0, "err", f, loss)(b"third\n")
    [event] = published
    assert (event.lines, event.stream) == (2, "err")  # type: ignore[attr-defined]
    assert (loss.err_lines, loss.err_bytes, loss.out_lines) == (2, 13, 0)


def test_an_instance_gone_while_its_stream_drops_reports_what_it_lost() -> None:
    published: list[Event] = []
    loss = LogLoss("api", published.append)
    loss.drop(0, "out", "/d/api-out-0.log", b"x\n", 1.0, OSError(28, "No space left on device"))
    loss.drop(1, "err", "/d/api-error-1.log", b"y\nz\n", 2.0, OSError(5, "Input/output error"))
    loss.end(1)  # scaled down: instance 1 is gone
    assert [(e.instance, e.lines, e.error) for e in published] == [(1, 2, "Input/output error")]  # type: ignore[attr-defined]
    assert list(loss.outages or {}) == [(0, "out")]
    loss.end()  # the app is deleted
    assert [e.instance for e in published] == [1, 0] and loss.outages is None
    assert loss.summary() == {"dropped_lines": 3, "dropped_bytes": 6, "withheld_lines": 0}


def test_a_failed_write_keeps_the_whole_lines_that_got_in_and_counts_the_rest(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stops a write in the middle of a chunk (EFBIG): the file keeps the lines
    before the cut, whole, and the sink counts exactly the others."""
    script = f"""
import json, resource, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from corral.config.spec import AppSpec
from corral.logs.files import LogWriters
from corral.logs.lines import LogLoss, make_sink
from corral.logs.rotation import RotationPolicy
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
spec = AppSpec(name="api", cwd="/", time={{kind}})
f = LogWriters().acquire({str(tmp_path / 'api.log')!r}, RotationPolicy.from_spec(spec))
loss = LogLoss("api")
sink = make_sink(spec, 0, "out", f, loss)
sink(b"".join(b"line %02d %s\\n" % (i, b"x" * 40) for i in range(40)))
print(json.dumps(loss.summary()))
"""
    for kind in ("True", "False"):
        (tmp_path / "api.log").unlink(missing_ok=True)
        out = subprocess.run([PYTHON, "-c", script.replace("{kind}", kind)], capture_output=True, text=True,
                             check=True).stdout
        summary = json.loads(out)
        text = (tmp_path / "api.log").read_text()
        assert text.endswith("\n") and os.path.getsize(tmp_path / "api.log") <= 1000
        got = unstamped(text) if kind == "True" else text.splitlines()
        assert got == [f"line {i:02d} {'x' * 40}" for i in range(len(got))] and 0 < len(got) < 40
        assert summary == {"dropped_lines": 40 - len(got), "dropped_bytes": (40 - len(got)) * 49,
                           "withheld_lines": 0}


def test_unkept_is_what_follows_the_lines_that_got_in() -> None:
    assert unkept(b"a\nb\nc\n", 0) == b"a\nb\nc\n"
    assert unkept(b"a\nb\nc\n", 2) == b"c\n"
    assert unkept(b"a\nb\nc\n", 3) == b""


def test_lines_the_redactor_could_not_redact_are_withheld_with_their_timestamp_and_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines, "REDACT_MIN", -1.0)  # out of time before the first line
    spec = AppSpec(name="api", cwd="/")
    f = open_file(tmp_path / "api.log", spec)
    loss = LogLoss("api")
    make_sink(spec, 0, "out", f, loss)(b"clean one\npassword=hunter2\nclean two\nBearer abcdefgh12345678\n")
    text = (tmp_path / "api.log").read_text()
    assert all(STAMP.match(line) for line in text.splitlines())
    assert unstamped(text) == ["clean one", WITHHELD, "clean two", WITHHELD]
    assert loss.summary() == {"dropped_lines": 0, "dropped_bytes": 0, "withheld_lines": 2}
    assert "hunter2" not in text and "abcdefgh12345678" not in text


def test_an_apps_own_pattern_is_interrupted_when_the_budget_runs_out(tmp_path: Path) -> None:
    r"""``(\w+)=secret`` takes ~30 s on a 64 KiB line of letters: the sink's timer interrupts it
    after its budget; the chunk's lines are withheld and counted, the next chunk is redacted."""
    spec = AppSpec(name="api", cwd="/", redact_patterns=[r"(\w+)=secret"])
    f = open_file(tmp_path / "api.log", spec)
    loss = LogLoss("api")
    sink = make_sink(spec, 0, "out", f, loss)
    start = time.monotonic()
    sink(b"before\n" + b"a" * 65536 + b"\nafter\n")
    took = time.monotonic() - start
    sink(b"k=secret\n")
    assert took < lines.budget(65550) + 1.0
    assert unstamped((tmp_path / "api.log").read_text()) == [WITHHELD] * 3 + ["REDACTED=secret"]
    assert loss.withheld == 3


def test_a_bug_in_a_sink_drops_the_chunk_counted_with_one_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = AppSpec(name="api", cwd="/")
    f = open_file(tmp_path / "api.log", spec)
    loss = LogLoss("api")
    sink = make_sink(spec, 0, "out", f, loss)
    f.policy = None  # type: ignore[assignment]  # what a bug could leave: the sink must not raise
    sink(b"x\ny\n")
    assert loss.summary()["dropped_lines"] == 2
    assert [r.exc_info is not None for r in caplog.records if "lines dropped" in r.getMessage()] == [True]


def test_ls_marks_an_app_with_lost_lines_and_describe_says_what_and_since_when() -> None:
    row: dict[str, Any] = {"id": 0, "name": "api", "namespace": "default", "instance": 0, "pid": 12,
                           "status": "online", "restarts": 0, "started_at": None, "cpu_percent": 0.0,
                           "memory_bytes": 0,
                           "log_loss": {"dropped_lines": 0, "dropped_bytes": 0, "withheld_lines": 0}}
    assert "logs" not in render.table([row], colour=False)  # nothing lost: the table as before
    lost = {**row, "log_loss": {"dropped_lines": 12345, "dropped_bytes": 1_500_000, "withheld_lines": 3}}
    header, line = render.table([lost], colour=False).splitlines()
    assert header.split()[-1] == "logs" and line.endswith("12.3k dropped, 3 withheld")
    info = {"name": "api", "id": 0, "namespace": "default", "desired": "online", "argv": ["x"], "config": {},
            "instances": [], "log_loss": {**lost["log_loss"], "streams": {"out": {"lines": 12000, "bytes": 1},
                                                                          "err": {"lines": 345, "bytes": 1}},
                                          "dropping": [{"instance": 0, "stream": "out", "path": "/d/api.log",
                                                        "since": 0.0, "lines": 12000, "bytes": 1,
                                                        "error": "No space left on device"}]}}
    text = render.describe(info)
    assert "  log lines not written: 12345 (1.4 MB; stderr 345, stdout 12000) since the daemon started" in text
    assert "    instance 0 stdout: dropping since " in text and "(No space left on device), 12000 so far" in text
    assert "  log lines withheld (redaction failed): 3" in text


def test_a_reader_gives_the_loop_back_after_a_slice_of_costly_lines_or_a_whole_pipe_of_cheap_ones() -> None:
    """A flood of lines that cost the sink 0.1 s a MiB is read in chunks of at most READ_SIZE
    (below the daemon's mmap threshold), and the event loop gets its turn after about SLICE of
    work; cheap lines are read a whole pipe (BURST) per turn.  Every byte arrives, in order."""
    from corral.logs import pipe

    loop = asyncio.new_event_loop()
    read_fd, write_fd = pipe.make_pipe()
    line = b"token=x" + b"0" * 120 + b"\n"
    costly, cheap = line * ((4 << 20) // len(line)), line * ((16 << 20) // len(line))
    sizes: list[int] = []
    got = bytearray()
    phase = {"costly": True}
    turns: list[tuple[bool, int]] = []  # per turn of the loop: costly?, bytes the sink got in it
    ticks = {"bytes": 0}

    def sink(chunk: bytes) -> None:
        sizes.append(len(chunk))
        got.extend(chunk)
        ticks["bytes"] += len(chunk)
        if phase["costly"]:
            time.sleep(len(chunk) / (10 << 20))  # the cost of redacting a flood of secrets, at 10 MiB/s
            phase["costly"] = len(got) < len(costly)

    def tick() -> None:  # runs once per turn of the loop
        if ticks["bytes"]:
            turns.append((phase["costly"], ticks["bytes"]))
            ticks["bytes"] = 0
        loop.call_soon(tick)

    def writer() -> None:
        pipe.write_all(write_fd, costly + cheap)
        os.close(write_fd)

    done = loop.create_future()
    pipe.PipeReader(loop, read_fd, sink, on_eof=lambda: done.set_result(None))
    loop.call_soon(tick)
    thread = threading.Thread(target=writer)
    thread.start()
    loop.run_until_complete(asyncio.wait_for(done, 60))
    thread.join()
    loop.close()
    assert bytes(got) == costly + cheap
    assert max(sizes) <= pipe.READ_SIZE
    during = [size for costly_turn, size in turns if costly_turn]
    # about SLICE of work per turn (0.02 s at 10 MiB/s: 210 KB), one chunk more at most
    assert during and max(during) <= pipe.SLICE * (10 << 20) + pipe.READ_SIZE
    assert max(size for costly_turn, size in turns if not costly_turn) <= pipe.BURST + pipe.READ_SIZE


@pytest.mark.parametrize("length", [MAX_LINE_ := 64 * 1024, MAX_LINE_ - 1, MAX_LINE_ + 1, 3 * MAX_LINE_])
def test_a_line_read_in_pieces_is_cut_only_when_longer_than_the_limit(length: int) -> None:
    """A line arrives in reads of READ_SIZE: one of exactly the limit is kept whole (its end is not
    known yet when the partial line reaches the limit: no cut, no crash), a longer one is cut at it."""
    from corral.logs import pipe

    assert pipe.MAX_LINE == MAX_LINE_
    loop = asyncio.new_event_loop()
    read_fd, write_fd = pipe.make_pipe()
    got: list[bytes] = []
    done = loop.create_future()
    pipe.PipeReader(loop, read_fd, got.append, on_eof=lambda: done.set_result(None))
    thread = threading.Thread(target=lambda: (pipe.write_all(write_fd, b"A" * length + b"\nnext\n"), os.close(write_fd)))
    thread.start()
    loop.run_until_complete(asyncio.wait_for(done, 30))
    thread.join()
    loop.close()
    lines = b"".join(got).split(b"\n")
    assert lines[-2:] == [b"next", b""]
    assert b"".join(lines[:-2]) == b"A" * length and max(len(x) for x in lines) == min(length, MAX_LINE_)
