"""Every process of an instance, wherever it goes: its process group, a marker, its cgroup.

Each spawn of an instance is a :class:`Tree`: the processes it starts, grandchildren included,
even those that leave its process group (``setsid``, ``setpgid``: daemonizing helpers, double
forks).  Three ways to find them, from strongest to weakest:

* its **cgroup** (:mod:`corral.process.cgroups`), where the daemon can create one: a process
  cannot leave it without privileges;
* the **marker** ``CORRAL_INSTANCE_ID=<run>-<slot>-<spawn>`` the daemon puts in its environment,
  which descendants inherit: found by reading ``/proc/PID/environ``.  An app can drop it (a child
  started with a clean environment, or one that rewrites its own), and other users' processes
  cannot be read, so it is the fallback;
* its **process group**, as before (``killpg`` reaches every member at once).

Scans are cheap and only run when something is stopping or gone: a live daemon looks only at
its own descendants (it is their child subreaper, so escaped orphans are re-parented to it) and
reads the environment only of those outside every known instance's group; recovery, after a
daemon that died, reads all of ``/proc`` once.

Which process belongs to which tree, given a snapshot, is decided by :func:`assign` (pure).
"""

from __future__ import annotations

import os
import signal as _signal
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from corral.process import procfs
from corral.process.procgroups import signal_group

if TYPE_CHECKING:
    from corral.process.cgroups import Cgroups, Mover

MARKER = "CORRAL_INSTANCE_ID"
_FIRST = MARKER.encode() + b"="
_NEEDLE = b"\0" + _FIRST


class Tree:
    """One spawn of an instance and everything it started.

    ``group_ok``: ``pgid`` is known to be this spawn's group (ours from the fork on; for a tree
    adopted from a previous daemon, only if its leader is the very process that daemon saved).
    ``moved``: its processes are in ``cgroup`` (set by the cgroup mover after the fork; until
    then the tree is found by group and marker); ``pending``/``released``: the mover's state.
    """

    __slots__ = ("marker", "cgroup", "pgid", "group_ok", "adopted", "killing", "moved", "pending", "released")

    def __init__(self, marker: str, cgroup: str | None = None, pgid: int | None = None,
                 group_ok: bool = False, adopted: bool = False) -> None:
        self.marker = marker
        self.cgroup = cgroup
        self.pgid = pgid
        self.group_ok = group_ok
        self.adopted = adopted
        self.killing = False  # SIGKILL sent: whatever still shows up gets SIGKILL too
        self.moved = False  # an adopted tree is found by marker and group too: see Tracker.members
        self.pending = False
        self.released = False

    def __repr__(self) -> str:
        return f"Tree({self.marker!r}, pgid={self.pgid}, cgroup={self.cgroup!r})"


@dataclass(frozen=True, slots=True)
class Proc:
    """A live process as a scan saw it; ``marker`` is None when its environment was not read,
    could not be read, or has none."""

    pid: int
    pgid: int
    marker: str | None = None


def marker_of(environ: bytes) -> str | None:
    """The marker in the raw contents of /proc/PID/environ (pure)."""
    if environ.startswith(_FIRST):
        start = len(_FIRST)
    else:
        at = environ.find(_NEEDLE)
        if at < 0:
            return None
        start = at + len(_NEEDLE)
    end = environ.find(b"\0", start)
    value = environ[start:] if end < 0 else environ[start:end]
    return value.decode("ascii", "replace") or None


def assign(procs: Iterable[Proc], trees: Iterable[Tree]) -> dict[str, list[int]]:
    """The live members of each tree (by marker), pure.

    A process belongs to the tree whose marker it carries; otherwise to the tree whose process
    group it is in, if that group is the tree's (``group_ok``), or proven to be by a member that
    carries the tree's marker (a group number is not reused while any member lives).
    """
    trees = list(trees)
    procs = list(procs)
    out: dict[str, list[int]] = {t.marker: [] for t in trees}
    by_marker = {t.marker: t for t in trees}
    by_group = {t.pgid: t for t in trees if t.pgid is not None}
    proven = {p.pgid for p in procs if p.marker in by_marker and by_marker[p.marker].pgid == p.pgid}
    for p in procs:
        if p.marker is not None and p.marker in by_marker:
            out[p.marker].append(p.pid)
            continue
        tree = by_group.get(p.pgid)
        if tree is not None and (tree.group_ok or p.pgid in proven):
            out[tree.marker].append(p.pid)
    return out


def read_marker(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker_of(f.read())
    except OSError:  # gone, or another user's process: unreadable
        return None


def scan(within: int | None, known_groups: set[int]) -> list[Proc]:
    """Live processes (descendants of ``within``, or all of /proc), ourselves excluded, with
    the marker of those outside ``known_groups`` (members of those need no environment read)."""
    me = os.getpid()
    stats = procfs.all_stats() if within is None else procfs.descendant_stats(within)
    return [Proc(st.pid, st.pgid, None if st.pgid in known_groups else read_marker(st.pid))
            for st in stats if st.state != "Z" and st.pid != me]


def new_run_id() -> str:
    """Unique to one daemon run: the first part of the markers of every spawn it makes."""
    return os.urandom(8).hex()


def signal_number(sig: str | int) -> int:
    return sig if isinstance(sig, int) else _signal.Signals[sig].value


class Tracker:
    """The trees of one daemon: markers, cgroups, scans and signals."""

    def __init__(self, run_id: str, cgroups: Cgroups | None = None) -> None:
        self.run_id = run_id
        self.cgroups = cgroups
        self._live: dict[str, Tree] = {}
        #: ``loop.call_soon``: a scan is then shared by everything asked in one turn of the event
        #: loop (a burst of exits, a stop of every app), instead of one scan per tree
        self.defer: Callable[[Callable[[], None]], object] | None = None
        self._looked: dict[int | None, list[Proc]] | None = None
        self._mover: Mover | None = None

    # -- one spawn ----------------------------------------------------------------------
    def new_tree(self, name: str) -> Tree:
        """A tree for a spawn about to happen (its marker and cgroup path; nothing created yet)."""
        marker = f"{self.run_id}-{name}"
        tree = Tree(marker, self.cgroups.path_for(marker) if self.cgroups else None)
        self._live[marker] = tree
        return tree

    @contextmanager
    def spawning(self, tree: Tree) -> Iterator[None]:
        """Around the fork: the tree's cgroup is created (the child is moved in by ``started``)."""
        cgroups = self.cgroups
        if cgroups is None or tree.cgroup is None or not cgroups.create(tree.cgroup):
            tree.cgroup = None
        yield

    def started(self, tree: Tree, pid: int) -> None:
        tree.pgid = pid
        tree.group_ok = True
        if tree.cgroup is not None:
            if self._mover is None:
                from corral.process.cgroups import Mover

                self._mover = Mover(_strays)
            self._mover.submit(tree, pid)
        self.forget()  # a scan from before this spawn would say the new tree is empty

    def adopt(self, marker: str, cgroup: str | None, pgid: int | None, group_ok: bool) -> Tree:
        """A tree a previous daemon left (recovery): found anywhere in /proc."""
        if cgroup is not None and not os.path.isdir(cgroup):
            cgroup = None
        tree = Tree(marker, cgroup, pgid, group_ok, adopted=True)
        self._live[marker] = tree
        return tree

    def release(self, tree: Tree) -> None:
        """The tree is empty: forget it and remove its cgroup."""
        self._live.pop(tree.marker, None)
        if tree.cgroup is not None and (self._mover is None or self._mover.release(tree)):
            from corral.process.cgroups import remove

            remove(tree.cgroup)
            scope = os.path.dirname(tree.cgroup)
            if tree.adopted and (self.cgroups is None or scope != self.cgroups.scope):
                remove(scope)  # a previous daemon's, in another cgroup: gone once empty

    # -- members ------------------------------------------------------------------------
    def members(self, trees: Iterable[Tree]) -> dict[str, list[Proc]]:
        """The live processes of each tree, in one pass: a cgroup's list where there is one
        (``pgid`` -1: not read), else a scan (our descendants; all of /proc for adopted trees)."""
        from corral.process.cgroups import procs as cgroup_procs

        me = os.getpid()
        out: dict[str, list[Proc]] = {}
        scanned: list[Tree] = []
        for tree in trees:
            if tree.cgroup is not None and tree.moved:
                out[tree.marker] = [Proc(p, -1) for p in cgroup_procs(tree.cgroup) if p != me]
            else:
                scanned.append(tree)
        if scanned:
            within = None if any(t.adopted for t in scanned) else me
            known = {t.pgid for t in self._live.values() if t.pgid is not None and t.group_ok and not t.adopted}
            procs = self._scan(within, known)
            by_pid = {p.pid: p for p in procs}
            for marker, pids in assign(procs, scanned).items():
                out[marker] = [by_pid[pid] for pid in pids]
            for tree in scanned:  # a previous daemon's tree: by marker and group, and its cgroup's members
                if tree.adopted and tree.cgroup is not None:  # (it may have died before moving them)
                    seen = {p.pid for p in out[tree.marker]}
                    out[tree.marker] += [Proc(p, -1) for p in cgroup_procs(tree.cgroup) if p != me and p not in seen]
        return out

    def _scan(self, within: int | None, known: set[int]) -> list[Proc]:
        if self.defer is None:
            return scan(within, known)
        if self._looked is None:
            self._looked = {}
            self.defer(self.forget)
        if within not in self._looked:
            self._looked[within] = scan(within, known)
        return self._looked[within]

    def forget(self) -> None:
        """Drop the shared scan: something changed (a spawn, exits to reap, the turn is over).
        A tree a scan found empty after it started stays empty: nobody is left to fork."""
        self._looked = None

    def alive(self, tree: Tree) -> bool:
        return bool(self.members([tree])[tree.marker])

    def signal(self, tree: Tree, sig: str | int, members: list[Proc] | None = None) -> bool:
        """SIG to every process of the tree, once each: its group at once (``killpg``), then
        every member outside the group.  False if nothing was left to signal."""
        number = signal_number(sig)
        group = tree.pgid if tree.pgid is not None and tree.group_ok and not tree.adopted else None
        sent = group is not None and signal_group(group, number)
        if members is None:
            members = self.members([tree])[tree.marker]
        if number == _signal.SIGKILL and tree.cgroup is not None and (tree.moved or tree.adopted) and members:
            sent = _kill_cgroup(tree.cgroup) or sent  # then every member outside it, below
        for proc in members:
            if group is not None and _pgid(proc) == group:
                continue  # the group's signal reached it
            try:
                os.kill(proc.pid, number)
                sent = True
            except ProcessLookupError:
                pass
            except PermissionError:
                sent = True
        return sent


def _strays(tree: Tree) -> list[int]:
    """The daemon's children that carry ``tree``'s marker besides its leader: orphans of a
    double fork, re-parented to the daemon (its subreaper) before the cgroup mover ran."""
    return [pid for pid in procfs.children(os.getpid()) if pid != tree.pgid and read_marker(pid) == tree.marker]


def _pgid(proc: Proc) -> int:
    if proc.pgid >= 0:
        return proc.pgid
    stat = procfs.read_stat(proc.pid)
    return stat.pgid if stat is not None else -1


def _kill_cgroup(path: str) -> bool:
    """``cgroup.kill``, unless the daemon itself is in that cgroup (it never should be)."""
    from corral.process.cgroups import kill, procs

    return os.getpid() not in procs(path) and kill(path)
