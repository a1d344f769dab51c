"""One-off runs for features (a job, a maintenance task): the same argv, environment, identity,
limits and log files as an app's instance, without an instance's lifecycle.

The argv comes from ``config.command.resolve_argv`` (interpreter, venv, shell), the environment
from ``process.spawner.build_env`` (base environment, ``env_file`` read at each run, ``env``), the
output goes through the app log sinks (timestamps, redaction, rotation) and, redacted too, to
``on_output`` (the job's tail and ``jobs run``'s stream).  Each run is recorded in the store before
its fork and its process group is ended with the daemon (``stop_all``), so a run is never left
behind: the next daemon finds a record of any run a killed daemon left and ends it.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import TYPE_CHECKING, Callable

from corral.config.spec import AppSpec
from corral.daemon import spawns
from corral.exceptions import OperationFailed
from corral.logs.pipe import PipeReader, link

if TYPE_CHECKING:
    from corral.daemon.supervisor import Supervisor
    from corral.process.spawner import Child
    from corral.process.tracking import Tree

#: (code, signal) when the run's processes are gone and its output read to the end
OnExit = Callable[[int | None, str | None], None]
OnOutput = Callable[[str, bytes], None]  # (stream "out" | "err", redacted lines)
_serial = itertools.count(1)


class OneShot:
    """A running one-off process; ``stop()`` ends its whole group (stop signal, then SIGKILL)."""

    def __init__(self, sup: Supervisor, spec: AppSpec, child: Child, tree: Tree) -> None:
        self.sup = sup
        self.spec = spec
        self.child = child
        self.tree = tree
        self.pid = child.pid
        self.ended = False
        self._kill: object = None

    def stop(self, sig: str | None = None) -> None:
        if self.ended or self._kill is not None:
            return
        self._kill = self.sup.terminate(self.tree, sig or self.spec.stop_signal, self.spec.kill_timeout,
                                        self.spec.name, None, until_gone=True)


def _tee(redact: Callable[[bytes, float], tuple[bytes, int]] | None, on_output: OnOutput, stream: str,
         sink: Callable[[bytes], None], chunk: bytes) -> None:
    """A chunk of a run's output: to its log file, and (redacted) to ``on_output``."""
    sink(chunk)
    shown = chunk
    if redact is not None:
        try:
            shown = redact(chunk, 1.0)[0]
        except Exception:  # noqa: BLE001 - never the raw text when redaction fails
            shown = b"[output withheld: redaction failed]\n"
    on_output(stream, shown)


def run(sup: Supervisor, spec: AppSpec, base_env: dict[str, str], on_output: OnOutput, on_exit: OnExit,
        extra_env: dict[str, str] | None = None) -> OneShot:
    """Start ``spec``'s program once; OperationFailed (one line) when it cannot start."""
    from corral.config.command import resolve_argv
    from corral.logs.lines import LogLoss, redactor_of
    from corral.process.identity import resolve as resolve_identity
    from corral.process.limits import for_spawn
    from corral.process.spawner import build_env, spawn
    from corral.process.tracking import MARKER

    who = resolve_identity(spec)
    env = build_env(spec, 0, base_env, who)
    env.update(extra_env or {})
    argv = resolve_argv(spec, sup.python)
    shim = for_spawn(spec.limits)
    if shim:
        argv = [sup.python, "-I", "-S", spawns.EXEC_SHIM, *shim, "--", *argv]
    logs = sup.logs.open(spec, 0, who.owner if who is not None else None, LogLoss(spec.name, sup.publish))
    tree = sup.tracker.new_tree(f"run-{spec.name}-{next(_serial)}")
    env[MARKER] = tree.marker
    try:
        sup.store.intend(tree.marker, f"run:{spec.name}", 0, tree.cgroup)
        with sup.tracker.spawning(tree):
            child = spawn(argv, env, spec, who=who)
    except BaseException:
        logs.close()
        spawns.over(sup, tree)
        raise
    sup.tracker.started(tree, child.pid)
    sup.store.tree_started(tree.marker, child.pid, None, tree.cgroup)
    shot = OneShot(sup, spec, child, tree)
    _RUNNING[child.pid] = shot
    tee = partial(_tee, redactor_of(spec), on_output)
    pending = [3]  # two pipes and the exit
    result: list[int | None | str] = [None, None]

    def one_done() -> None:
        pending[0] -= 1
        if pending[0] == 0:
            logs.close()
            shot.ended = True
            _RUNNING.pop(shot.pid, None)
            on_exit(result[0], result[1])  # type: ignore[arg-type]

    out = PipeReader(sup.loop, child.stdout, partial(tee, "out", logs.out), max_line=logs.max_line, on_eof=one_done)
    err = PipeReader(sup.loop, child.stderr, partial(tee, "err", logs.err), max_line=logs.max_line, on_eof=one_done)
    link(out, err)
    child.readers = (out, err)

    def exited(pid: int, code: int | None, sig: str | None) -> None:
        result[0], result[1] = code, sig
        if sup.tracker.alive(tree):  # what it left behind in its group ends with it
            sup.tracker.signal(tree, "SIGKILL")
        sup.groups.watch(tree, partial(spawns.over, sup, tree))
        for reader in (out, err):
            reader.drain()
        one_done()

    sup.reaper.watch(child.pid, exited)
    return shot


_RUNNING: dict[int, OneShot] = {}


def stop_all() -> None:
    """The daemon stops: every one-off run ends now (SIGKILL to its group)."""
    for shot in list(_RUNNING.values()):
        shot.sup.tracker.signal(shot.tree, "SIGKILL")


__all__ = ["OneShot", "run", "stop_all", "OperationFailed"]
