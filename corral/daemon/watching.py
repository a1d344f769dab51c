"""Watch and restart (``watch``, ``ignore_watch``, ``watch_delay``): the daemon's side.

Loaded by :mod:`corral.daemon.watchhook` at the first app that has ``watch``: a daemon whose
apps do not watch never imports this.  The file changes are read by a helper process
(:mod:`corral.process.watcher`, with ``watchfiles``) that this module starts, feeds with the
watch set (every app with ``watch``, its paths, its ``ignore_watch`` and its own log files, which
are never a reason to restart) and stops when no app watches any more.

A line from the helper names an app whose files changed.  The restart waits ``watch_delay``
after the first change; changes that come while a restart is waiting or under way are part of it
(PM2 does the same), so a burst is one restart.  A stopped app is not restarted by a change.
Each restart is recorded as a ``watch`` event naming what changed (``corral events``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from functools import partial
from typing import TYPE_CHECKING, Any

from corral import events as ev
from corral.exceptions import OperationFailed, UserMistake

if TYPE_CHECKING:
    from corral.daemon.supervisor import App, Supervisor
    from corral.daemon.timers import Handle

log = logging.getLogger("corral.daemon")
MAX_LINE = 64 * 1024


class Watching:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.proc: subprocess.Popen[bytes] | None = None
        self.sent: dict[str, Any] | None = None
        self.pending: dict[str, Handle] = {}
        self.busy: set[str] = set()
        self.restarts = 0
        self.failures = 0  # helpers that ended unasked, in a row
        self.announced: dict[str, list[str]] = {}  # app -> the paths last said to be watched
        self._buffer = b""
        self._scheduled = False

    # -- the watch set -------------------------------------------------------------------
    def poke(self) -> None:
        """Something changed in the apps: look again at the next turn of the loop (once)."""
        if not self._scheduled:
            self._scheduled = True
            self.sup.loop.call_soon(self.sync)

    def rules(self, app: App) -> dict[str, Any]:
        spec = app.spec
        logs = self.sup.logs
        skip: set[str] = set()
        for index in range(max(spec.instances, 1)):
            skip.update(logs.paths(spec, index))
            combined = getattr(logs, "combined_path", None)
            if combined is not None and combined(spec, index):
                skip.add(combined(spec, index))
        return {"paths": list(spec.watch), "cwd": spec.cwd, "ignore": spec.ignore_watch, "skip": sorted(skip)}

    def wanted(self) -> dict[str, Any]:
        return {app.name: self.rules(app) for app in self.sup.apps.values() if app.spec.watch and not app.deleting}

    def sync(self) -> None:
        self._scheduled = False
        wanted = self.wanted()
        for name in [n for n in self.pending if n not in wanted]:
            self.pending.pop(name).cancel()
        if wanted == self.sent:
            return
        if not wanted:
            self.close()
            return
        if self.proc is None and not self._spawn():
            return
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"apps": wanted}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            log.warning("watch: cannot reach the watch helper: %s", exc)
            return
        self.sent = wanted

    def _spawn(self) -> bool:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "corral.process.watcher"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                cwd="/", close_fds=True,
            )
        except OSError as exc:
            log.warning("watch: cannot start the watch helper: %s", exc)
            return False
        assert proc.stdout is not None
        self.proc = proc
        os.set_blocking(proc.stdout.fileno(), False)
        self.sup.loop.add_reader(proc.stdout.fileno(), partial(self._readable, proc))
        self.sup.reaper.watch(proc.pid, partial(self._exited, proc))
        log.info("watch: helper %d started", proc.pid)
        return True

    def _exited(self, proc: subprocess.Popen[bytes], pid: int, code: int | None, sig: str | None) -> None:
        proc.returncode = code if code is not None else -1
        self._forget(proc)
        if self.proc is None and self.sent is None and self.wanted():
            self.failures += 1
            delay = min(60.0, 2.0 ** self.failures)
            log.warning("watch: helper %d ended (%s); another in %gs", pid, sig or f"exit code {code}", delay)
            self.sup.timers.after(delay, self.poke)

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        if self.proc is not proc:
            return
        self.proc = None
        self.sent = None
        self.announced.clear()  # a new helper says again what it watches
        self._buffer = b""
        assert proc.stdout is not None
        try:
            self.sup.loop.remove_reader(proc.stdout.fileno())
        except (ValueError, OSError):
            pass
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self) -> None:
        """Stop the helper (no app watches, or the daemon exits)."""
        for handle in self.pending.values():
            handle.cancel()
        self.pending.clear()
        proc = self.proc
        if proc is None:
            self.sent = {}
            return
        self._forget(proc)
        self.sent = {}
        try:
            proc.terminate()
        except OSError:
            pass

    # -- changes -------------------------------------------------------------------------
    def _readable(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            data = os.read(proc.stdout.fileno(), MAX_LINE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._forget(proc)
            return
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()[-MAX_LINE:]
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("app"), str):
                self.failures = 0
                self.on_change(message)

    def on_change(self, message: dict[str, Any]) -> None:
        name = message["app"]
        app = self.sup.apps.get(name)
        if app is None or not app.spec.watch:
            return
        if "error" in message:
            self.sup.publish(ev.Note(app=name, kind="watch", message=str(message["error"])))
            return
        if "watching" in message:
            paths = [os.path.relpath(p, app.spec.cwd) if p.startswith(app.spec.cwd) else p
                     for p in message["watching"] if isinstance(p, str)]
            if self.announced.get(name) != paths:
                self.announced[name] = paths
                self.sup.publish(ev.Note(app=name, kind="watch", message=f"watching {', '.join(paths)}"))
            return
        if name in self.pending or name in self.busy or app.desired != "online":
            return  # part of the restart on its way; a stopped app stays stopped
        self.pending[name] = self.sup.timers.after(app.spec.watch_delay, partial(self._fire, name, message))

    def _fire(self, name: str, message: dict[str, Any]) -> None:
        self.pending.pop(name, None)
        self.busy.add(name)
        self.sup.loop.create_task(self._restart(name, message))

    async def _restart(self, name: str, message: dict[str, Any]) -> None:
        paths = [str(p) for p in message.get("paths", [])]
        count = int(message.get("count") or len(paths))
        more = f" and {count - len(paths)} more" if count > len(paths) else ""
        what = ", ".join(paths) + more
        self.sup.publish(ev.Note(app=name, kind="watch", message=f"changed: {what}; restarting",
                                 data={"paths": paths, "count": count}))
        self.restarts += 1
        try:
            if self.sup.core.context is not None:
                await self.sup.core.call("restart", target=name, by="watch")
            else:  # corral run: no control socket, the same restart
                from corral.lifecycle import instance as lc

                app = self.sup.apps.get(name)
                if app is not None:
                    self.sup.set_desired(app, "online")
                    self.sup.stop(app, lc.After.RESTART, by="watch")
        except (UserMistake, OperationFailed) as exc:
            log.warning("watch: %s: restart after a change failed: %s", name, exc)
        finally:
            self.busy.discard(name)
