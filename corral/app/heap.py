"""Heap snapshots on request (standard library only): ``corral profile heap`` sends ``SIGUSR2``,
and a program that imported :mod:`corral.app` answers with a tracemalloc snapshot
(``<stem>.tracemalloc``, readable with ``tracemalloc.Snapshot.load``) and a report of the lines
that hold the most memory (``<stem>.txt``), in the folder corral names in ``CORRAL_PROFILE_DIR``.

Installed by ``import corral.app`` only when corral started the program (the variable is set)
and the program has no ``SIGUSR2`` handler of its own.  ``heap_profile = true`` starts
tracemalloc with the program (``PYTHONTRACEMALLOC``); otherwise the first request starts it and
its report says so (it sees only what is allocated from then on).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import tracemalloc

DIR_VAR = "CORRAL_PROFILE_DIR"
TOP = 10
_lock = threading.Lock()


def install() -> bool:
    """Answer SIGUSR2 with a snapshot, when corral asks for it and nobody else uses the signal."""
    if not os.environ.get(DIR_VAR) or threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGUSR2) not in (signal.SIG_DFL, None):
            return False
        signal.signal(signal.SIGUSR2, _on_signal)
    except (ValueError, OSError):
        return False
    return True


def _on_signal(signum: int, frame: object) -> None:
    threading.Thread(target=write_snapshot, name="corral-heap", daemon=True).start()


def write_snapshot(directory: str | None = None) -> list[str]:
    """Write the snapshot and its report; the paths (the report last: it marks the end)."""
    directory = directory or os.environ.get(DIR_VAR, ".")
    pid = os.getpid()
    stem = f"heap-x-{pid}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    try:
        with open(os.path.join(directory, f".request-{pid}"), encoding="utf-8") as f:
            stem = f.read().strip() or stem
    except OSError:
        pass
    with _lock:
        started_now = not tracemalloc.is_tracing()
        if started_now:
            tracemalloc.start(1)
        snapshot = tracemalloc.take_snapshot().filter_traces((
            tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, __file__)))
        base = os.path.join(directory, stem)
        snapshot.dump(base + ".tracemalloc.tmp")
        os.replace(base + ".tracemalloc.tmp", base + ".tracemalloc")
        with open(base + ".txt.tmp", "w", encoding="utf-8") as out:
            out.write(report(snapshot, started_now))
        os.replace(base + ".txt.tmp", base + ".txt")
    return [base + ".tracemalloc", base + ".txt"]


def report(snapshot: tracemalloc.Snapshot, started_now: bool) -> str:
    """The lines holding the most memory, biggest first: ``size  count  file:line  source``."""
    import linecache

    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    lines = [f"top {min(TOP, len(stats))} lines by memory held (tracemalloc; total {total / 1024:.1f} KiB "
             f"in {sum(s.count for s in stats)} blocks)"]
    if started_now:
        lines.append("tracemalloc was off: started now, so this shows only what was allocated since "
                     "(heap_profile = true traces from the start)")
    for stat in stats[:TOP]:
        where = stat.traceback[0]
        source = linecache.getline(where.filename, where.lineno).strip()
        lines.append(f"{stat.size / 1024:10.1f} KiB {stat.count:8d}  {where.filename}:{where.lineno}  {source}")
    return "\n".join(lines) + "\n"
