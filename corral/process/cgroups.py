"""A cgroup v2 per instance, when corral may create one: every process of an instance, wherever it goes.

A process can leave its process group (``setsid``, ``setpgid``) and change its environment, but
it cannot leave its cgroup without privileges.  So where the daemon can create cgroups (root with
a writable cgroup2 hierarchy, or a subtree delegated by systemd: ``Delegate=yes``) every spawn
gets its own, below the daemon's own cgroup: ``<daemon's cgroup>/corral-<home>/<marker>``.
``cgroup.procs`` lists its members, ``cgroup.kill`` (Linux 5.14) ends them all at once.

The child is moved into its cgroup right after the fork by one background thread
(:class:`Mover`), never on the event loop: a write to ``cgroup.procs`` waits for an RCU grace
period (7-20 ms when no migration happened lately), which made every crash-restart that much
slower when the daemon moved itself in and out around each fork.  The processes the program
started before the move (its descendants then) are moved with it; until the move is done the
tree is tracked by its process group and marker, as without cgroups (``Tree.moved``).  No
controller is enabled, so no limit applies and the "no internal processes" rule of cgroup v2
never bites.

``CORRAL_CGROUPS=0`` in the daemon's environment turns this off (tracking falls back to the
process group and the ``CORRAL_INSTANCE_ID`` marker).
"""

from __future__ import annotations

import os
import threading
from functools import partial
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from corral.process import procfs

if TYPE_CHECKING:
    from corral.process.tracking import Tree


def cgroup2_mount(mountinfo: str) -> str | None:
    """The mount point of the cgroup v2 hierarchy in a /proc/self/mountinfo text (pure)."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            fields = left.split(" ")
            if len(fields) > 4:
                return fields[4].replace("\\040", " ")
    return None


def own_cgroup(proc_cgroup: str) -> str | None:
    """The cgroup v2 path in a /proc/self/cgroup text (the ``0::`` line), pure."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def scope_name(key: str) -> str:
    """The directory of one daemon's cgroups: stable for a CORRAL_HOME, distinct between homes."""
    return f"corral-{_fnv1a(key.encode()):08x}"  # not hashlib (OpenSSL) nor binascii (libz): a tiny stable hash


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def procs(path: str) -> list[int]:
    """Live members of a cgroup and of the cgroups an app made inside it (zombies are not
    listed); [] if it is gone."""
    found: list[int] = []
    for where, _, _ in os.walk(path):
        try:
            found += [int(p) for p in _read(os.path.join(where, "cgroup.procs")).split()]
        except (OSError, ValueError):
            continue
    return found


def kill(path: str) -> bool:
    """SIGKILL every member at once (``cgroup.kill``); False where the kernel lacks it."""
    try:
        _write(os.path.join(path, "cgroup.kill"), "1")
    except OSError:
        return False
    return True


def remove(path: str) -> bool:
    """Remove an empty cgroup (and empty ones an app made inside it); False if it still has members."""
    for where, dirs, _ in os.walk(path, topdown=False):
        for name in dirs:
            try:
                os.rmdir(os.path.join(where, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


class Cgroups:
    """The daemon's cgroup subtree: ``base`` is its own cgroup, ``scope`` holds one cgroup per spawn."""

    def __init__(self, base: str, scope: str) -> None:
        self.base = base
        self.scope = scope

    @classmethod
    def detect(cls, key: str) -> tuple[Cgroups | None, str]:
        """The subtree for this daemon (``key``: its home), or None and the reason in a few words."""
        if os.environ.get("CORRAL_CGROUPS", "1") in ("0", "no", "off", "false"):
            return None, "turned off (CORRAL_CGROUPS=0)"
        try:
            mount = cgroup2_mount(_read("/proc/self/mountinfo"))
            own = own_cgroup(_read("/proc/self/cgroup"))
        except OSError as exc:
            return None, f"cannot read /proc ({exc.strerror})"
        if mount is None or own is None:
            return None, "no cgroup v2 hierarchy"
        base = os.path.normpath(mount + own)
        found = cls(base, os.path.join(base, scope_name(key)))
        reason = found._probe()
        return (found, f"one cgroup per instance in {found.scope}") if reason is None else (None, reason)

    def _probe(self) -> str | None:
        """Create the scope, enter a cgroup in it and come back: None if all of that works."""
        probe = os.path.join(self.scope, f"probe-{os.getpid()}")
        try:
            os.makedirs(probe, exist_ok=True)
            with self.entered(probe):
                pass
        except OSError as exc:
            remove(probe)
            return f"{self.base} is not writable here ({exc.strerror or exc})"
        remove(probe)
        return None

    def path_for(self, name: str) -> str:
        return os.path.join(self.scope, name)

    def create(self, path: str) -> bool:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            return False
        return True

    def enter(self, path: str) -> None:
        """Move the daemon itself into ``path``: a process it forks now is born there."""
        _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))

    def leave(self) -> None:
        """Back to the daemon's own cgroup (tried twice: it must never stay in an instance's)."""
        me = str(os.getpid())
        try:
            _write(os.path.join(self.base, "cgroup.procs"), me)
        except OSError:
            _write(os.path.join(self.base, "cgroup.procs"), me)

    @contextmanager
    def entered(self, path: str) -> Iterator[None]:
        self.enter(path)
        try:
            yield
        finally:
            self.leave()

    def children(self) -> list[str]:
        """The cgroups in the scope (one per spawn not yet removed)."""
        try:
            return [os.path.join(self.scope, name) for name in os.listdir(self.scope)
                    if os.path.isdir(os.path.join(self.scope, name))]
        except OSError:
            return []

    def close(self) -> None:
        """Remove the scope if nothing is left in it (a daemon that exits cleanly)."""
        try:
            for name in os.listdir(self.scope):
                remove(os.path.join(self.scope, name))
        except OSError:
            pass
        remove(self.scope)


class Mover:
    """Moves each new spawn into its cgroup on one background thread (started at the first).

    ``Tree.moved`` turns true once the spawn's first process (and what it started by then) is in
    its cgroup; a tree released meanwhile has its cgroup removed by the thread after the move."""

    def __init__(self, strays: Callable[[Tree], list[int]] = lambda tree: []) -> None:
        #: the tree's processes the daemon adopted as orphans (a double fork before the move)
        self._strays = strays
        self._lock = threading.Lock()
        self._jobs: list[tuple[Tree, int]] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, tree: Tree, pid: int) -> None:
        with self._lock:
            tree.pending = True
            self._jobs.append((tree, pid))
        self._wake.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="corral-cgroups", daemon=True)
            self._thread.start()

    def release(self, tree: Tree) -> bool:
        """False while a move of ``tree`` is pending (the thread removes its cgroup after it)."""
        with self._lock:
            if tree.pending:
                tree.released = True
                return False
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                jobs, self._jobs = self._jobs, []
                self._wake.clear()
            for tree, pid in jobs:
                moved = tree.cgroup is not None and move(tree.cgroup, pid, partial(self._strays, tree))
                with self._lock:
                    tree.moved, tree.pending = moved, False
                    doomed = tree.released
                if doomed and tree.cgroup is not None:
                    remove(tree.cgroup)


def move(path: str, pid: int, strays: Callable[[], list[int]] = list) -> bool:
    """Put ``pid``, its descendants and ``strays()`` (with theirs) in the cgroup ``path``; False
    if ``pid`` could not be moved (it is gone already, or the cgroup is): the tree is then
    tracked without its cgroup."""
    target = os.path.join(path, "cgroup.procs")
    try:
        _write(target, str(pid))
    except OSError:
        return False
    # what it started before the move: its descendants, and orphans of a double fork (now ours)
    for other in [pid, *strays()]:
        for each in [other] + [stat.pid for stat in procfs.descendant_stats(other)]:
            if each != pid:
                try:
                    _write(target, str(each))
                except OSError:
                    pass
    return True


def _fnv1a(data: bytes) -> int:
    """32-bit FNV-1a: stable across runs and versions (a home always names the same folder)."""
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h
