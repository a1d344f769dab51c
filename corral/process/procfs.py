"""Reading /proc: process start times, process-group members, CPU and memory.

Linux only.  Cheaper than psutil for what the daemon needs (one pass over
/proc for every group at once), and it keeps the daemon's own memory small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str
    ppid: int
    pgid: int
    cpu_ticks: int
    start_ticks: int
    rss_bytes: int
    child_ticks: int = 0  # CPU of its children that exited and it reaped (cutime + cstime)
    threads: int = 1


def read_stat(pid: int) -> Stat | None:
    """One process's /proc/PID/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return _parse(pid, raw)


def _parse(pid: int, raw: bytes) -> Stat | None:
    # The command name may hold spaces and parentheses: split after the last ')'.
    end = raw.rfind(b")")
    if end < 0:
        return None
    fields = raw[end + 2 :].split()
    try:
        return Stat(
            pid=pid,
            state=fields[0].decode(),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            start_ticks=int(fields[19]),
            rss_bytes=int(fields[21]) * PAGE_SIZE,
            child_ticks=int(fields[13]) + int(fields[14]),
            threads=int(fields[17]),
        )
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None or stat.state == "Z" else stat.start_ticks


def is_same_process(pid: int, ticks: int | None) -> bool:
    """True if PID is alive and is the process that started at ``ticks`` (no pid reuse)."""
    current = start_ticks(pid)
    return current is not None and (ticks is None or current == ticks)


def all_stats() -> list[Stat]:
    stats = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                stats.append(stat)
    return stats


def children(pid: int) -> list[int]:
    """Direct children of PID, from every one of its threads."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def descendant_stats(root: int) -> list[Stat]:
    """Every live descendant of ROOT.  Cheaper than a /proc scan on a busy machine, and
    exact for a child subreaper: orphans of our apps are re-parented to us."""
    stats = []
    stack = children(root)
    while stack:
        pid = stack.pop()
        stat = read_stat(pid)
        if stat is not None:
            stats.append(stat)
            stack.extend(children(pid))
    return stats


def live_groups(pgids: set[int], within: int | None = None) -> dict[int, list[Stat]]:
    """Members (zombies excluded) of each of the given process groups, in one pass.

    With ``within``, only descendants of that pid are looked at.
    """
    found: dict[int, list[Stat]] = {}
    if not pgids:
        return found
    for stat in all_stats() if within is None else descendant_stats(within):
        if stat.pgid in pgids and stat.state != "Z":
            found.setdefault(stat.pgid, []).append(stat)
    return found


def group_alive(pgid: int) -> bool:
    """True if any non-zombie process is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(live_groups({pgid}))
