"""The daemon's entry point: one per CORRAL_HOME, held by a lock file; signal wiring."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import _sqlite3 as sqlite3
import os
import signal
import sys
from typing import Any

from corral.config.limits import ceiling_problem
from corral.daemon import daemonlog
from corral.daemon.logthrottle import install as install_throttle
from corral.lifecycle import instance as lc
from corral.daemon.ops.apps import Context
from corral.logs.sinks import FileLogs
from corral.process.cgroups import Cgroups
from corral.process.limits import prepare_daemon
from corral.process.reaper import become_subreaper
from corral.process.tracking import Tracker, new_run_id
from corral.daemon.recovery import recover
from corral.daemon.server import ControlServer
from corral.process.listeners import enable_request_migration
from corral.daemon.store import Store, private_db
from corral.daemon.supervisor import App, Supervisor
from corral.daemon.core import DaemonCore
from corral.exceptions import OperationFailed
from corral.daemon import watchhook
from corral.monitor import start as start_monitor, start_sweep
from corral.jobs import on_demand as jobs_on_demand
from corral.paths import Home, HomeError

log = logging.getLogger("corral.daemon")


def main() -> int:
    home = Home.from_env()
    try:
        home.ensure()
    except HomeError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    lock_fd = os.open(home.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"corral: a daemon already runs for {home.root}", file=sys.stderr)
        if os.environ.get("NOTIFY_SOCKET"):  # systemd's unit: it must not look started
            print("corral: started outside systemd: `corral save && corral kill`, then start the unit again",
                  file=sys.stderr)
            return 1
        return 0
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    rotation = daemonlog.settings()  # (max size, files kept), or what is wrong with them
    if isinstance(rotation, str) or (problem := ceiling_problem()) is not None:
        print(f"corral: {rotation if isinstance(rotation, str) else problem}", file=sys.stderr)
        return 2
    for handler in logging.getLogger().handlers:
        install_throttle(handler)  # repeated messages and tracebacks never flood daemon.log
        daemonlog.install(home.root, handler, *rotation)  # and it rotates (when it is our stderr)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):  # the client's, for us only
        os.environ.pop(name, None)
    if os.environ.pop("CORRAL_SUBREAPER", None) != "1":
        become_subreaper()
    try:
        os.ftruncate(lock_fd, 0)  # a shorter pid must not leave the end of a longer one behind
        os.write(lock_fd, f"{os.getpid()}\n".encode())
    except OSError as exc:  # a full disk: the lock holds all the same
        log.warning("cannot write the pid to %s: %s", home.lock, exc.strerror)
    try:
        store = open_store(home.database)
    except OperationFailed as exc:  # storefile.StoreUnusable
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    manager = None
    if os.environ.get("NOTIFY_SOCKET"):  # run by systemd (`corral startup`): loaded only then
        from corral.daemon.sdservice import take

        manager = take(os.environ)
    asyncio.run(serve(home, store, boot="--resurrect" in sys.argv[1:], systemd=manager))
    return 0


def open_store(path: str) -> Store:
    """``state.db``, checked first in a forked child (``storefile.damage``: neither the check's
    memory nor its module stays in the daemon); a damaged file, or one that cannot be opened, is
    handled by ``storefile.reopen`` (moved aside, or one line), loaded only then."""
    problem: str | BaseException
    try:
        private_db(path)
        found = _checked_apart(path)
        if found is None:
            return Store(path)
        problem = found
    except (OSError, sqlite3.Error) as exc:
        problem = exc
    from corral.daemon.storefile import reopen

    return reopen(path, problem)


def _checked_apart(path: str) -> str | None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, say, and go without running anything of the parent's
        try:
            os.close(read_end)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # nothing of it in daemon.log
            from corral.daemon.storefile import damage

            os.write(write_end, (damage(path) or "").encode(errors="replace")[:4000])
        finally:
            os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as f:
        found = f.read()
    os.waitpid(pid, 0)
    return found.decode(errors="replace") or None


async def serve(home: Home, store: Store, boot: bool = False, systemd: dict[str, str] | None = None) -> None:
    """Run the daemon until SIGTERM/SIGINT or ``kill``.  BOOT (``--resurrect``, the systemd unit's):
    start the apps of ``dump.json`` too; SYSTEMD: the service manager's variables (``sdservice``)."""
    loop = asyncio.get_running_loop()
    found = prepare_daemon()
    log.info("limits: nofile %s -> %s, core %s -> 0 (apps inherit them; their own: limits)",
             found["nofile"][0], found["nofile"][1], found["core"][0])
    cgroups, how = Cgroups.detect(home.root)
    log.info("instances tracked by process group and CORRAL_INSTANCE_ID; cgroups: %s", how)
    sup = Supervisor(loop, store, FileLogs(home.logs), tracker=Tracker(new_run_id(), cgroups))
    sup.install_signal_handlers()
    stop_watching = watchhook.install(sup)
    sup.open_notify_socket(os.path.join(home.root, "notify.sock"))
    if os.geteuid() == 0:
        enable_request_migration()
    done = asyncio.Event()
    terminated: list[str] = []

    def on_signal(name: str) -> None:
        terminated.append(name)
        done.set()

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    if store.settings():  # daemon-wide settings a file gave an earlier daemon
        from corral.daemon.settings import restore

        restore(sup.core, store)
    restored = await recover(sup)
    ctx = Context(sup, home.dump)
    sup.core.context = ctx  # the core's call() runs the same operations as the socket
    sup.core.state_dir = home.root
    start_features(sup, home.root)
    server = ControlServer(home.socket, ctx, done.set)
    await server.start()
    if boot:
        restored += await resurrect_saved(ctx)
    log.info("corral daemon %s ready on %s (%d apps restored)", os.getpid(), home.socket, len(restored))
    manager = None
    if systemd is not None:
        from corral.daemon.sdservice import Manager

        manager = Manager(loop, systemd)
        manager.ready(len(restored))
    await done.wait()
    if manager is not None:
        manager.stopping(stop_budget(sup) if terminated else 30.0)
    for name in FEATURES:
        if sup.core.features.get(name) is not None:
            sup.core.features[name].close()
    await server.close()
    if terminated:
        log.info("%s: stopping every app", terminated[0])
        await stop_everything(sup)
    if "corral.daemon.oneshot" in sys.modules:  # a job ran
        from corral.daemon.oneshot import stop_all

        stop_all()  # a job's run ends with the daemon (the next one finds its record otherwise)
    stop_watching()
    sup.close()
    store.close()
    if cgroups is not None:
        cgroups.close()
    if manager is not None:
        manager.close()
    log.info("corral daemon %s exits", os.getpid())


#: the features a daemon may have loaded (``core.features``), closed in this order at exit
FEATURES = ("monitor", "liveness", "sweep", "jobs", "maintenance", "profile")


def start_features(sup: Supervisor, root: str) -> None:
    """The sampler and the sweep at once; the other features when first needed."""
    sup.core.features["monitor"] = start_monitor(sup.core, root)
    alerts_on_demand(sup.core)
    liveness_on_demand(sup)
    profile_on_demand(sup.core)
    start_sweep(sup.core)
    jobs_on_demand(sup.core)
    cron_restart_on_demand(sup)


async def resurrect_saved(ctx: Context) -> list[Any]:
    """At boot (``--resurrect``): start the apps of ``dump.json`` that are not here already."""
    from corral.daemon.ops.apps import UserError
    from corral.daemon.ops.dump import resurrect

    try:
        result = await resurrect(ctx, {})
    except (UserError, OperationFailed) as exc:  # nothing saved yet: the daemon runs all the same
        log.info("resurrect at boot: %s", exc)
        return []
    return list(result["restored"])


def stop_budget(sup: Supervisor) -> float:
    from corral.lifecycle.order import stop_budget as budget

    return budget([(a.name, a.policy.kill_timeout, list(a.spec.depends_on)) for a in sup.apps.values()])


#: event kinds that may raise an alert (``corral.monitor.alerts.KINDS``, repeated here so that a
#: daemon whose apps never fail never loads the monitor)
ALERT_KINDS = frozenset(("crash", "crash_loop", "errored", "threshold", "log_dropped", "sweep", "liveness_failed",
                         "deploy_failed", "job_failed"))


def alerts_on_demand(core: DaemonCore) -> None:
    """Load the alert service (``corral.monitor.alertservice``) with the first event that may alert;
    it subscribes then, in time to get that very event (the bus hands an event to its listeners
    before its subscriptions)."""
    from corral.events import Event, StateChanged

    loaded = False
    configured: list[Any] = [None]  # the sinks the service has

    def load() -> None:
        nonlocal loaded
        loaded = True
        from corral.monitor.alertservice import configure

        configured[0] = core.settings().get("sinks")
        configure(core, list(configured[0] or []))

    def first(event: Event) -> None:
        if not loaded and (event.kind in ALERT_KINDS or getattr(event, "new", None) == "errored"):
            load()

    def settings_changed() -> None:  # the file's [[sinks]] (corral.config.host), now or restored
        if core.settings().get("sinks") != configured[0]:
            load()

    core.on_settings(settings_changed)
    if core.settings().get("sinks"):
        load()

    import corral.events

    core.bus.listen(first, Event, stored_only=True)
    core.bus.listen(first, StateChanged, *[cls for cls in (getattr(corral.events, "Threshold", None),)
                                           if isinstance(cls, type)])  # live-only kinds that may alert


def liveness_on_demand(sup: Supervisor) -> None:
    """Load the liveness probes (``corral.health.liveservice``) when an instance of an app with
    ``health`` comes online; once loaded, each instance coming online is looked at (a scan)."""
    from corral.events import Event, StateChanged

    core = sup.core

    def online(event: Event) -> None:
        if getattr(event, "new", None) != "online":
            return
        service = core.features.get("liveness")
        if service is None:
            app = sup.apps.get(event.app)  # not core.view(): a daemon without probes never loads it
            if app is None or not app.spec.health:
                return
            from corral.health.liveservice import service_of

            service = service_of(core)
        core.timers.after(0, service.scan)

    core.bus.listen(online, StateChanged)


def cron_restart_on_demand(sup: Supervisor) -> None:
    """Load the jobs service when an app with ``cron_restart`` is added or changed; once loaded, any
    app added, changed or removed is looked at again (its ``restart:NAME`` jobs)."""
    from corral.events import AppAdded, AppChanged, AppRemoved, Event

    core = sup.core

    def changed(event: Event) -> None:
        service = core.features.get("jobs")
        if service is None:
            app = sup.apps.get(event.app)
            if app is None or not app.spec.cron_restart:
                return
            from corral.jobs.service import service_of

            service = service_of(core)
        core.timers.after(0, service.configure)

    core.bus.listen(changed, AppAdded, AppChanged, AppRemoved)


def profile_on_demand(core: DaemonCore) -> None:
    """Automatic snapshots (P3): the first instance over its ``process_memory`` line loads the
    profile service (``corral.profile.service``), which takes a heap snapshot and a CPU profile."""
    from corral.events import Threshold

    def crossed(event: Threshold) -> None:
        if event.metric == "process_memory" and not event.cleared and event.instance is not None:
            from corral.profile.service import service_of

            service_of(core).on_threshold(event)

    core.bus.listen(crossed, Threshold)  # type: ignore[arg-type]


async def stop_everything(sup: Supervisor) -> None:
    """Stop every instance without changing what should run: the next daemon brings them back."""
    from corral.daemon.ops.ordering import stop_ordered

    def stop_slots(app: App) -> None:
        for slot in app.slots:
            sup.dispatch(slot, lc.Stop(lc.After.STOP))

    await stop_ordered(sup, list(sup.apps.values()), stop_slots)
