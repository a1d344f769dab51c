"""What ``corral monit`` reads from the daemon, without textual: one ``subscribe`` stream in a
thread (every event of every app, as it happens), single calls (``ls``, ``metrics``, ``events``,
the actions), and the selected app's log files followed as ``corral logs -f`` follows them.

Cheap by construction: nothing polls an app.  The table is asked for again (one ``ls``) only
after the stream said something changed, the metrics history once per sampling interval (one
``metrics`` call for every app), and the log files of the selected app alone are read for new
bytes.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from corral.cli.logs import Source, labels, line_time
from corral.cli.tui.model import LOG_LINES, log_line
from corral.control.client import Client
from corral.exceptions import OperationFailed


class Stream:
    """The ``subscribe`` stream in a daemon thread; ``on_message`` runs in that thread for every
    message (events, ``dropped``).  ``close`` hangs up: the daemon drops the subscription."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None],
                 on_end: Callable[[str], None]) -> None:
        self.client = Client()
        self.on_message, self.on_end = on_message, on_end
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="corral-monit-stream", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.client.call("subscribe", {"all": True}, on_progress=self.on_message)
            reason = "the daemon ended the event stream"
        except (OperationFailed, OSError) as exc:
            reason = str(exc)
        except Exception as exc:  # a remote error: still one line on the screen
            reason = getattr(exc, "message", None) or str(exc)
        finally:
            self.client.close()
        if not self.closed:
            self.on_end(reason)

    def close(self) -> None:
        self.closed = True
        sock = self.client._sock
        if sock is not None:
            import socket

            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv
            except OSError:
                pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)


def call(op: str, args: dict[str, Any] | None = None) -> Any:
    """One request on a connection of its own (the stream's is busy streaming)."""
    client = Client()
    try:
        return client.call(op, args)
    finally:
        client.close()


class Logs:
    """The log files of one app, followed: the last lines first, then what is written."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.sources: list[Source] = []
        self.lines: list[str] = []

    def open(self, last: int = 200) -> list[str]:
        entries = call("log_paths", {"target": self.app})
        self.sources = [Source(e, label) for e, label in zip(entries, labels(entries))]
        found: list[tuple[float, int, int, str]] = []
        for n, src in enumerate(self.sources):
            ts = 0.0  # a line without a timestamp goes with the line before it
            for i, line in enumerate(src.last(last, lambda _line: True, None)):
                ts = line_time(line, src.json_type) or ts
                found.append((ts, n, i, log_line(src.label, line.decode("utf-8", "replace"))))
        # stdout and stderr interleaved by their timestamps, each file's lines in their order
        self.lines = [text for *_, text in sorted(found)][-LOG_LINES:]
        return list(self.lines)

    def poll(self) -> list[str]:
        """Lines written since the last poll (rotations and flushes followed)."""
        found: list[tuple[float, int, int, str]] = []
        for n, src in enumerate(self.sources):
            ts = 0.0
            for i, line in enumerate(src.new_lines()):
                ts = line_time(line, src.json_type) or ts
                found.append((ts, n, i, log_line(src.label, line.decode("utf-8", "replace"))))
        new = [text for *_, text in sorted(found)]  # the files' new lines interleaved by time
        if new:
            self.lines = (self.lines + new)[-LOG_LINES:]
        return new

    def close(self) -> None:
        for src in self.sources:
            src.close()
        self.sources = []
