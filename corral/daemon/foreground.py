"""``corral run``: an ecosystem in the foreground, without a daemon (for containers).

Apps' output goes to our stdout prefixed by app name; corral's own messages go
to stderr.  SIGTERM/SIGINT stop every app gracefully (a second one kills them).
As PID 1 (or as a child subreaper) we reap orphaned grandchildren, without ever
taking the exit status of an app we manage (see ``daemon.reaper``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from typing import Any

from corral.events import Event
from corral.lifecycle import instance as lc
from corral.process.cgroups import Cgroups
from corral.process.limits import prepare_daemon
from corral.process.tracking import Tracker, new_run_id
from corral.logs.sinks import StdoutLogs
from corral.process.reaper import become_subreaper
from corral.daemon.store import MemoryStore
from corral.daemon.supervisor import Supervisor
from corral.daemon import watchhook

FOREVER = 10 * 365 * 86400.0


def tell(event: Event) -> None:
    """A bus listener: every event the history would keep, on stderr as it happens."""
    if event.stored:
        print(f"corral: {event.app}[{event.instance}] {event.kind}: {event.message}", file=sys.stderr, flush=True)


def run_foreground(specs: list[dict[str, Any]], base_env: dict[str, str]) -> int:
    return asyncio.run(_run(specs, base_env))


async def _run(specs: list[dict[str, Any]], base_env: dict[str, str]) -> int:
    loop = asyncio.get_running_loop()
    if os.getpid() != 1:
        become_subreaper()
    prepare_daemon()  # core dumps off, as under the daemon
    cgroups, _ = Cgroups.detect(f"run-{os.getpid()}")
    sup = Supervisor(loop, MemoryStore(), StdoutLogs(), whole_env=True, tracker=Tracker(new_run_id(), cgroups))
    sup.bus.listen(tell)
    sup.install_signal_handlers()
    stop_watching = watchhook.install(sup)
    run_dir = tempfile.mkdtemp(prefix="corral-run-")
    sup.open_notify_socket(os.path.join(run_dir, "notify.sock"))
    signals_seen: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        signals_seen.append(sig.name)
        if len(signals_seen) == 1:
            print(f"corral: {sig.name}: stopping {len(sup.apps)} app(s)", file=sys.stderr, flush=True)
            stop_watching()  # a change now must not start anything again
            for app in sup.apps.values():
                for slot in app.slots:
                    sup.dispatch(slot, lc.Stop(lc.After.STOP))
        else:
            for app in sup.apps.values():
                for slot in app.slots:
                    if slot.tree is not None and slot.status is lc.Status.STOPPING:
                        sup.tracker.signal(slot.tree, "SIGKILL")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    from corral.config.spec import AppSpec

    for spec in specs:
        sup.start(sup.add_app(AppSpec.from_dict(spec), base_env))
    await sup.wait_for(
        lambda: all(s.status in lc.RESTING for a in sup.apps.values() for s in a.slots), FOREVER
    )
    stop_watching()
    sup.close()
    if cgroups is not None:
        cgroups.close()
    os.rmdir(run_dir)
    errored = [f"{a.name}[{s.index}]" for a in sup.apps.values() for s in a.slots if s.status is lc.Status.ERRORED]
    if errored:
        print(f"corral: ended errored: {', '.join(errored)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    """``python -m corral.daemon.foreground FD``: the specs (JSON) come in FD, from ``corral run``."""
    import json

    fd = int(argv[0])
    with os.fdopen(fd, "rb") as f:
        specs = json.load(f)
    return run_foreground(specs, dict(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
