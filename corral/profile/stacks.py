"""What an instance is doing now: every thread's stack (``py-spy dump`` for Python; the
inspector's paused call stack for Node), or, for other programs, the last lines of its logs.

Runs in the profiling helper; each capture has a deadline, so a stuck tracer never holds up the
replacement that asked for it.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from corral.profile.cdp import open_inspector
from corral.profile.cpu import last_line

LOG_LINES = 50
MAX_TEXT = 16000  # characters of a stack or log tail kept in an event


def python_stack(pyspy: str, pid: int, timeout: float) -> tuple[str | None, str]:
    """(every thread's stack as py-spy prints it, None) or (None, why not)."""
    try:
        done = subprocess.run([pyspy, "dump", "--pid", str(pid)], capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"py-spy dump gave no answer within {timeout:g}s"
    except OSError as exc:
        return None, f"cannot run py-spy: {exc.strerror}"
    if done.returncode != 0:
        return None, last_line(done.stderr) or last_line(done.stdout) or f"py-spy exited with {done.returncode}"
    return done.stdout.decode(errors="replace")[:MAX_TEXT], ""


def node_stack(pid: int, timeout: float) -> str:
    """The main thread's JavaScript stack: paused for a moment through the inspector, resumed."""
    frames: list[dict[str, Any]] = []
    scripts: dict[str, str] = {}

    def paused(method: str, params: dict[str, Any]) -> None:
        if method == "Debugger.paused":
            frames.extend(params.get("callFrames", []))
        elif method == "Debugger.scriptParsed":
            scripts[str(params.get("scriptId"))] = str(params.get("url", ""))

    with open_inspector(pid, timeout) as session:
        session.call("Debugger.enable", on_event=paused)
        session.call("Debugger.pause", on_event=paused)
        if not frames:  # the event comes when the main thread next runs JavaScript
            found = session.wait_event("Debugger.paused", min(timeout, 3.0), on_event=paused)
            frames.extend((found or {}).get("callFrames", []))
        session.settimeout(timeout)
        session.call("Debugger.resume")
        session.call("Debugger.disable")
    if not frames:
        return f"Thread main (pid {pid}): idle in the event loop (no JavaScript ran within {min(timeout, 3.0):g}s)"
    lines = [f"Thread main (pid {pid}):"]
    for frame in frames:
        where = frame.get("location", {})
        url = frame.get("url") or scripts.get(str(where.get("scriptId")), "")
        lines.append(f"    {frame.get('functionName') or '(anonymous)'} ({url}:{where.get('lineNumber', -1) + 1})")
    return "\n".join(lines)[:MAX_TEXT]


def log_tail(paths: list[str], lines: int = LOG_LINES) -> str:
    """The last LINES lines of each of PATHS (read from the end: a huge log costs nothing)."""
    out = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                tail = f.read().decode(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            out.append(f"== {path}: {exc.strerror}")
            continue
        out.append(f"== {path} (last {len(tail)} lines)")
        out.extend(tail)
    return "\n".join(out)[-MAX_TEXT:]
