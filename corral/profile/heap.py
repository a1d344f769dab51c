"""Heap snapshots: Python through the app library (``corral.app`` answers ``SIGUSR2`` with a
tracemalloc snapshot and a top-allocations report) or ``memray attach`` when the app's
environment has memray; Node through the inspector (``HeapProfiler.takeHeapSnapshot``).

Runs in the profiling helper.  A Python app that catches no ``SIGUSR2`` is never sent one (the
default action would end it): the caller is told what to do instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from corral.profile.cdp import open_inspector
from corral.profile.cpu import last_line

HEAP_SIGNAL = signal.SIGUSR2


def catches(pid: int, signum: int) -> bool:
    """Whether PID has a handler for SIGNUM (``SigCgt`` in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def python_heap(pid: int, directory: str, stem: str, timeout: float) -> tuple[list[str], str]:
    """Ask the app library of PID for a snapshot named STEM in DIRECTORY: (files, why not)."""
    if not catches(pid, HEAP_SIGNAL):
        return [], "nohandler"
    request = os.path.join(directory, f".request-{pid}")
    with open(request + ".tmp", "w", encoding="utf-8") as f:
        f.write(stem)
    os.replace(request + ".tmp", request)  # the handler reads the name it must write
    wanted = [os.path.join(directory, stem + ext) for ext in (".txt", ".tracemalloc")]
    try:
        os.kill(pid, HEAP_SIGNAL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the app writes the report last: when it is there, both are
            if all(os.path.exists(p) for p in wanted):
                return wanted, ""
            time.sleep(0.05)
    finally:
        try:
            os.unlink(request)
        except OSError:
            pass
    return [p for p in wanted if os.path.exists(p)], f"the app wrote no snapshot within {timeout:g}s"


def memray_python(pid: int) -> str | None:
    """The interpreter of PID when it can import memray (then ``memray attach`` can work)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        done = subprocess.run([exe, "-c", "import memray"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if done.returncode == 0 else None


def memray_heap(python: str, pid: int, path: str, seconds: int) -> str | None:
    """``memray attach`` for SECONDS, written to PATH: None, or why it failed."""
    argv = [python, "-m", "memray", "attach", "--duration", str(seconds), "-o", path, str(pid)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=False)
    except subprocess.TimeoutExpired:
        return "memray attach did not finish"
    return None if done.returncode == 0 else (last_line(done.stderr) or "memray attach failed")


def node_heap(pid: int, path: str, timeout: float = 120.0) -> int:
    """A ``.heapsnapshot`` of PID (the chunks the inspector streams, written as they come): bytes."""
    size = 0
    with open(path + ".tmp", "w", encoding="utf-8") as out, open_inspector(pid) as session:
        def chunk(method: str, params: dict[str, Any]) -> None:
            nonlocal size
            if method == "HeapProfiler.addHeapSnapshotChunk":
                size += out.write(params.get("chunk", ""))

        session.settimeout(timeout)
        session.call("HeapProfiler.enable", on_event=chunk)
        session.call("HeapProfiler.takeHeapSnapshot", {"reportProgress": False}, on_event=chunk)
        session.call("HeapProfiler.disable", on_event=chunk)
    os.replace(path + ".tmp", path)
    return size
