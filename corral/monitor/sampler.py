"""One reading of the machine per tick: every instance's process tree and the host, from /proc.

* **Instances**: one walk of the daemon's descendants (``procfs.descendant_stats``: the daemon is
  the subreaper of its apps, so their orphans are its children) gives every process with its
  parent and group; an instance's tree is its main process, everything below it, and whatever
  is still in its process group (orphans re-parented to the daemon).  CPU % is over the interval
  since the last reading, of one core (100 % = one core busy, as ``ps`` and PM2 show it), from
  the tree's total ticks, its own plus those of the children its members reaped (``cutime`` and
  ``cstime``): a child that ran and exited between two readings is counted.  RSS, threads and
  open fds are summed over the tree.
* **Host**: CPU over the interval (``/proc/stat``, all cores), available memory
  (``/proc/meminfo``), load averages, and every real mounted filesystem (``/proc/self/mountinfo``
  and ``os.statvfs``, no ``df``): pseudo filesystems (proc, tmpfs, cgroup ...) and read-only image
  layers (squashfs) are left out, and a filesystem mounted at several paths counts once, at its
  shortest path.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import corral.process.procfs as procfs

#: filesystem types that hold no user data on a disk
PSEUDO = frozenset((
    "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs",
    "pstore", "bpf", "mqueue", "hugetlbfs", "fusectl", "configfs", "autofs", "binfmt_misc", "rpc_pipefs",
    "nsfs", "ramfs", "efivarfs", "selinuxfs", "squashfs", "fuse.lxcfs", "nfsd", "fuse.gvfsd-fuse",
    "fuse.portal", "iso9660", "devfs", "overlay.lower", "sockfs", "pipefs", "anon_inodefs", "cpuset",
))


class Target(NamedTuple):
    """An instance to read (from ``Core.view()``)."""

    app: str
    instance: int
    pid: int
    pgid: int | None
    restarts: int
    started_at: float | None


class Sampler:
    """Keeps what CPU % needs (the last tick totals); :meth:`read` does one reading."""

    def __init__(self, root: int | None = None) -> None:
        self.root = root or os.getpid()
        self._ticks: dict[int, tuple[int, float]] = {}  # main pid -> (tree ticks, monotonic)
        self._spent: dict[int, int] = {}  # main pid -> ticks its tree used since the first reading (never less)
        self._host_cpu: tuple[int, int] | None = None  # (busy, total) jiffies
        self.last_host: dict[str, Any] = {}
        self.last_mounts: dict[str, dict[str, Any]] = {}

    def read(self, targets: list[Target], mono: float, wall: float) -> dict[str, Any]:
        self.last_host, self.last_mounts = self.host(), mounts()
        return {"ts": wall, "host": self.last_host, "mounts": self.last_mounts,
                "instances": self.instances(targets, mono, wall)}

    # -- instances -------------------------------------------------------------------------
    def instances(self, targets: list[Target], mono: float, wall: float) -> list[dict[str, Any]]:
        if not targets:
            self._ticks.clear()
            return []
        stats = {s.pid: s for s in procfs.descendant_stats(self.root) if s.state != "Z"}
        below: dict[int, list[int]] = {}
        by_group: dict[int, list[int]] = {}
        for s in stats.values():
            below.setdefault(s.ppid, []).append(s.pid)
            by_group.setdefault(s.pgid, []).append(s.pid)
        out = []
        seen: set[int] = set()
        for t in targets:
            if t.pid not in stats:
                continue
            tree = _tree(t.pid, below, by_group.get(t.pgid, []) if t.pgid else [])
            members = [stats[p] for p in tree if p in stats]
            ticks = sum(m.cpu_ticks + m.child_ticks for m in members)
            seen.add(t.pid)
            out.append({
                "app": t.app, "instance": t.instance, "pid": t.pid, "cpu_seconds": self._seconds(t.pid, ticks),
                "cpu": self._cpu(t.pid, ticks, mono, stats[t.pid]),
                "rss": sum(m.rss_bytes for m in members), "threads": sum(m.threads for m in members),
                "fds": sum(_fds(m.pid) for m in members), "procs": len(members),
                "uptime": round(max(0.0, wall - t.started_at), 1) if t.started_at else 0.0, "restarts": t.restarts,
            })
        for gone in set(self._ticks) - seen:
            del self._ticks[gone]
        for gone in set(self._spent) - seen:
            del self._spent[gone]
        return out

    def _seconds(self, pid: int, ticks: int) -> float:
        """CPU seconds the tree used, as a counter: it only grows (a member that exits unreaped by
        the tree takes its ticks with it; the next readings count from there)."""
        prev = self._ticks.get(pid)
        spent = self._spent.get(pid, ticks) + (max(0, ticks - prev[0]) if prev is not None else 0)
        self._spent[pid] = spent
        return round(spent / procfs.CLOCK_TICKS, 2)

    def _cpu(self, pid: int, ticks: int, mono: float, main: procfs.Stat) -> float:
        prev = self._ticks.get(pid)
        self._ticks[pid] = (ticks, mono)
        if prev is not None and mono > prev[1]:
            seconds = (ticks - prev[0]) / procfs.CLOCK_TICKS
            return round(max(0.0, seconds / (mono - prev[1]) * 100), 1)
        up = _uptime() - main.start_ticks / procfs.CLOCK_TICKS  # first reading: since it started
        return round(max(0.0, ticks / procfs.CLOCK_TICKS / up * 100), 1) if up > 0.5 else 0.0

    # -- host ------------------------------------------------------------------------------
    def host(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpu": self._host_cpu_percent()}
        info = _meminfo()
        total, available = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
        out["memory_total"], out["memory_available_bytes"] = total, available
        out["memory_available"] = round(available / total * 100, 2) if total else 100.0
        try:
            with open("/proc/loadavg", "rb") as f:
                out["load"] = [float(x) for x in f.read().split()[:3]]
        except (OSError, ValueError):
            out["load"] = [0.0, 0.0, 0.0]
        return out

    def _host_cpu_percent(self) -> float:
        try:
            with open("/proc/stat", "rb") as f:
                fields = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields)
        prev, self._host_cpu = self._host_cpu, (total - idle, total)
        busy, whole = (total - idle, total) if prev is None else (total - idle - prev[0], total - prev[1])
        return round(busy / whole * 100, 1) if whole > 0 else 0.0


def _tree(root: int, below: dict[int, list[int]], group: list[int]) -> set[int]:
    found = {root}
    stack = [root, *group]
    found.update(group)
    while stack:
        for child in below.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _uptime() -> float:
    try:
        with open("/proc/uptime", "rb") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", "rb") as f:
            for raw in f:
                key, _, rest = raw.partition(b":")
                if key in (b"MemTotal", b"MemAvailable", b"MemFree"):
                    out[key.decode()] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    if "\\" not in path:
        return path
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def real_mounts(text: str) -> list[tuple[str, str]]:
    """(mount path, device) of every real filesystem in a mountinfo text, one path per device."""
    chosen: dict[str, str] = {}
    for raw in text.splitlines():
        left, sep, right = raw.partition(" - ")
        parts, rest = left.split(), right.split()
        if not sep or len(parts) < 5 or not rest or rest[0] in PSEUDO:
            continue
        device, path = parts[2], _unescape(parts[4])
        if not os.path.isdir(path):  # a file bind-mounted (a container's /etc/hosts)
            continue
        if device not in chosen or len(path) < len(chosen[device]):
            chosen[device] = path
    return sorted((path, device) for device, path in chosen.items())


def mounts() -> dict[str, dict[str, Any]]:
    """``{mount path: {used (%), free (bytes for users), size}}``, as ``df`` counts them."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            found = real_mounts(f.read())
    except OSError:
        return {}
    out = {}
    for path, _ in found:
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        if st.f_blocks == 0:
            continue
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize
        out[path] = {"used": round(used / (used + free) * 100, 2) if used + free else 0.0, "free": free,
                     "size": st.f_blocks * st.f_frsize}
    return out
