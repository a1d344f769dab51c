"""The lifecycle of one instance, as a pure state machine.

``step(instance, event, now, policy) -> (instance, effects)``: events in, the new
state and a list of effects out.  No IO, no clock (``now`` is a monotonic time
passed in), no logging: the supervisor feeds events and carries out effects.

States (the ``status`` users see):

    STOPPED ──Start──▶ LAUNCHING ──Ready──▶ ONLINE
       ▲                  │  │                 │
       │   Exited(clean,  │  └──Exited────┐    │ Exited (unexpected)
       │   no restart)    │               ▼    ▼
       ├──────────────────┘         WAITING_RESTART ──timer──▶ LAUNCHING
       │                                  (or ERRORED when max_restarts is passed)
    STOPPING ◀──Stop── LAUNCHING/ONLINE
       └─ main exited and group empty ─▶ STOPPED | LAUNCHING (restart) | removed (delete)

A spawn that fails is ERRORED (the program cannot be run), or WAITING_RESTART when the daemon
put it off (``SpawnFailed.retry``: its state could not be saved); then the ``respawn`` timer, or
the daemon as soon as it can, launches it again, not counted as a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from corral.lifecycle.exits import describe_exit
from corral.structs import Struct
from corral.lifecycle.policy import Policy


class Status(StrEnum):
    LAUNCHING = "launching"
    ONLINE = "online"
    STOPPING = "stopping"
    STOPPED = "stopped"
    WAITING_RESTART = "waiting_restart"
    ERRORED = "errored"


RUNNING = frozenset({Status.LAUNCHING, Status.ONLINE})
RESTING = frozenset({Status.STOPPED, Status.ERRORED})


class After(StrEnum):
    """What a stop turns into once every process of the instance is gone."""

    STOP = "stop"
    RESTART = "restart"
    DELETE = "delete"
    FAILED = "failed"  # a start that failed (not ready in time): restart with backoff


RESTART_TIMER = "restart"
READY_TIMER = "ready"
WATCHDOG_TIMER = "watchdog"
RESPAWN_TIMER = "respawn"  # a spawn the daemon put off (SpawnFailed with retry)
WAITING_TIMERS = [RESTART_TIMER, RESPAWN_TIMER]


@dataclass(frozen=True)
class Instance:
    status: Status = Status.STOPPED
    pid: int | None = None
    started_at: float | None = None
    fast_failures: int = 0
    restarts: int = 0
    after: After | None = None
    last_exit: Exited | None = None
    ready: bool = False  # proven ready (a reload may retire the instance it replaces)


# -- events ------------------------------------------------------------------------------
# Events and effects are compared by type (``match``), never by value: structs (``corral.structs``),
# not dataclasses (each generated method costs the daemon memory: about 200 KB of RSS for these 20).
class Start(Struct):
    by: str = ""  # who or what asked ("corral start", "watch" ...), for the timeline


class Stop(Struct):
    after: After = After.STOP
    by: str = ""


class Spawned(Struct):
    pid: int


class SpawnFailed(Struct):
    reason: str
    retry: float | None = None  # seconds: the daemon could not start it *now* (its state is not
    # being saved): try again then, or sooner when told (TimerFired(RESPAWN_TIMER)); None: never


class Ready(Struct):
    pass


class Listening(Struct):
    """A server of the instance started listening, as the instance itself reports it (the Node
    preload of cluster mode: a server's 'listening' event)."""


class Exited(Struct):
    code: int | None
    signal: str | None
    group_alive: bool = False

    def describe(self) -> str:
        return describe_exit(self.code, self.signal)


class GroupGone(Struct):
    pass


class WatchdogPing(Struct):
    """The instance sent WATCHDOG=1."""


class TimerFired(Struct):
    name: str


Event = Start | Stop | Spawned | SpawnFailed | Ready | Listening | Exited | GroupGone | TimerFired | WatchdogPing


# -- effects -----------------------------------------------------------------------------
class Spawn(Struct):
    pass


class Signal(Struct):
    """Send a signal to the instance's whole process group."""

    signal: str


class Terminate(Struct):
    """End the instance's whole process group: ``signal`` now, SIGKILL to whatever is left
    after ``kill_timeout`` (the daemon's one kill escalation, recorded as ``kill``)."""

    signal: str
    kill_timeout: float


class ArmTimer(Struct):
    name: str
    delay: float


class CancelTimer(Struct):
    name: str


class KillLeftovers(Struct):
    """The main process died on its own: end what is left of its group (as ``Terminate``
    does, with the app's stop signal and kill_timeout)."""


class WatchGroup(Struct):
    """The main process is gone but its group is not: report GroupGone when it is."""


class Removed(Struct):
    pass


class StartProbe(Struct):
    """Probe the launching instance until it is ready (readiness by http/tcp/cmd probe)."""


class WatchListen(Struct):
    """Tell Ready when a process of the instance listens on a TCP socket (readiness "auto")."""


class Record(Struct):
    kind: str
    message: str
    data: dict[str, object] = field(default_factory=dict)


Effect = (Spawn | Signal | Terminate | ArmTimer | CancelTimer | KillLeftovers | WatchGroup | Removed | Record
          | StartProbe | WatchListen)
Result = tuple[Instance, list[Effect]]


def step(inst: Instance, event: Event, now: float, policy: Policy) -> Result:
    """Apply one event.  Events that do not apply to the current state change nothing."""
    match event:
        case Start(by=by):
            return _start(inst, by)
        case Stop(after=after, by=by):
            return _stop(inst, after, policy, by)
        case Spawned(pid=pid) if inst.status is Status.LAUNCHING:
            return _spawned(replace(inst, pid=pid, started_at=now), policy)
        case SpawnFailed(reason=reason, retry=None) if inst.status is Status.LAUNCHING:
            # LAUNCHING -> ERRORED: a program that cannot be executed is not retried.
            return replace(inst, status=Status.ERRORED, pid=None), [Record("spawn_failed", reason)]
        case SpawnFailed(reason=reason, retry=retry) if inst.status is Status.LAUNCHING:
            # LAUNCHING -> WAITING_RESTART: not started for now (not the app's failure: no backoff)
            return replace(inst, status=Status.WAITING_RESTART, pid=None), [
                Record("spawn_failed", reason), ArmTimer(RESPAWN_TIMER, retry or 0.0)]
        case Ready() if inst.status is Status.LAUNCHING:
            # LAUNCHING -> ONLINE
            took = now - inst.started_at if inst.started_at is not None else 0.0
            return replace(inst, status=Status.ONLINE, ready=True), [
                CancelTimer(READY_TIMER), Record("ready", f"ready after {took:.3f}s")]
        case Ready() if inst.status is Status.ONLINE and not inst.ready:
            # ONLINE, not yet ready -> ready: a process of the instance listens (readiness "auto")
            took = now - inst.started_at if inst.started_at is not None else 0.0
            return replace(inst, ready=True), [CancelTimer(READY_TIMER), Record("ready", f"listening after {took:.3f}s")]
        case Listening() if inst.status is Status.LAUNCHING and policy.ready_mode == "delay":
            # LAUNCHING -> ONLINE: it listens (rather than waiting out listen_timeout)
            took = now - inst.started_at if inst.started_at is not None else 0.0
            return replace(inst, status=Status.ONLINE, ready=True), [
                CancelTimer(READY_TIMER), Record("ready", f"listening after {took:.3f}s")]
        case Listening() if inst.status is Status.ONLINE and not inst.ready and policy.ready_mode == "auto":
            took = now - inst.started_at if inst.started_at is not None else 0.0
            return replace(inst, ready=True), [CancelTimer(READY_TIMER), Record("ready", f"listening after {took:.3f}s")]
        case WatchdogPing() if inst.status in RUNNING and policy.watchdog:
            return inst, [ArmTimer(WATCHDOG_TIMER, policy.watchdog)]
        case Exited() if inst.status is Status.STOPPING:
            return _exited_while_stopping(inst, event, policy)
        case Exited() if inst.status in RUNNING:
            return _crashed(inst, event, now, policy)
        case GroupGone() if inst.status is Status.STOPPING and inst.pid is None:
            return _finish(inst, [], policy)
        case TimerFired(name=name):
            return _timer(inst, name, policy)
    return inst, []


LEAVE_RUNNING: list[Effect] = [CancelTimer(READY_TIMER), CancelTimer(WATCHDOG_TIMER)]


def _spawned(inst: Instance, policy: Policy) -> Result:
    effects: list[Effect] = [Record("spawn", f"pid {inst.pid}", {"pid": inst.pid}),
                             ArmTimer(READY_TIMER, policy.ready_wait())]
    if policy.ready_mode == "auto":
        # LAUNCHING -> ONLINE at once; ready when it listens on TCP or after listen_timeout
        return replace(inst, status=Status.ONLINE), [*effects, WatchListen()]
    if policy.ready_mode == "probe":
        effects.append(StartProbe())
    return inst, effects


def _by(by: str) -> str:
    return f" by {by}" if by else ""


def _start(inst: Instance, by: str = "") -> Result:
    if inst.status in RESTING:
        # STOPPED/ERRORED -> LAUNCHING
        return _launch(replace(inst, fast_failures=0), [Record("start", "started" + _by(by))])
    if inst.status is Status.WAITING_RESTART:
        # WAITING_RESTART -> LAUNCHING: a user's start skips the backoff.
        return _launch(replace(inst, fast_failures=0), [CancelTimer(t) for t in WAITING_TIMERS])
    if inst.status is Status.STOPPING:
        return replace(inst, after=After.RESTART), []
    return inst, []


def _stop(inst: Instance, after: After, policy: Policy, by: str = "") -> Result:
    if inst.status in RUNNING:
        # LAUNCHING/ONLINE -> STOPPING
        effects: list[Effect] = [
            *LEAVE_RUNNING,
            Record(after.value if after is not After.DELETE else "stop", f"stopping ({after.value}){_by(by)}"),
            Terminate(policy.stop_signal, policy.kill_timeout),
        ]
        return replace(inst, status=Status.STOPPING, after=after, ready=False), effects
    if inst.status is Status.STOPPING:
        return replace(inst, after=after), []
    waiting = inst.status is Status.WAITING_RESTART
    return _finish(replace(inst, after=after), [CancelTimer(t) for t in WAITING_TIMERS] if waiting else [])


def _finish(inst: Instance, effects: list[Effect], policy: Policy | None = None) -> Result:
    """Every process of the instance is gone: do what the stop asked for."""
    after = inst.after or After.STOP
    inst = replace(inst, after=None, pid=None)
    if after is After.FAILED and policy is not None:
        return _after_failure(replace(inst, fast_failures=inst.fast_failures + 1), effects, policy,
                              "after a failed start")
    if after is After.RESTART:
        # STOPPING -> LAUNCHING
        return _launch(replace(inst, fast_failures=0, restarts=inst.restarts + 1), effects)
    if after is After.DELETE:
        return replace(inst, status=Status.STOPPED), [*effects, Removed()]
    # STOPPING -> STOPPED
    return replace(inst, status=Status.STOPPED), [*effects, Record("stopped", "stopped")]


def _launch(inst: Instance, effects: list[Effect]) -> Result:
    return replace(inst, status=Status.LAUNCHING, pid=None, started_at=None, ready=False), [*effects, Spawn()]


def _exited_while_stopping(inst: Instance, event: Exited, policy: Policy) -> Result:
    inst = replace(inst, pid=None, last_exit=event)
    if event.group_alive:
        return inst, [WatchGroup()]
    return _finish(inst, [], policy)


def _crashed(inst: Instance, event: Exited, now: float, policy: Policy) -> Result:
    uptime = now - inst.started_at if inst.started_at is not None else 0.0
    fast = uptime < policy.min_uptime
    failures = inst.fast_failures + 1 if fast else 0
    inst = replace(inst, pid=None, started_at=None, last_exit=event, fast_failures=failures, ready=False)
    effects: list[Effect] = [
        *LEAVE_RUNNING,
        Record("exit", f"{event.describe()} after {uptime:.3f}s", {"code": event.code, "signal": event.signal}),
    ]
    if event.group_alive:
        effects.append(KillLeftovers())
    if not policy.wants_restart(event.code, event.signal):
        status = Status.STOPPED if policy.is_clean(event.code, event.signal) else Status.ERRORED
        return replace(inst, status=status), effects
    return _after_failure(inst, effects, policy, f"after {event.describe()}")


def _after_failure(inst: Instance, effects: list[Effect], policy: Policy, why: str) -> Result:
    """Restart after a failure: at once, after a backoff, or never again (errored)."""
    failures = inst.fast_failures
    if policy.gives_up(failures):
        message = f"{failures} consecutive runs shorter than min_uptime; max_restarts is {policy.max_restarts}"
        return replace(inst, status=Status.ERRORED), [*effects, Record("errored", message)]
    if failures == policy.crash_loop_threshold:
        message = f"crash loop: {failures} consecutive runs shorter than {policy.min_uptime:g}s"
        effects.append(Record("crash_loop", message))
    delay = policy.delay(failures)
    if delay <= 0:
        # ONLINE -> LAUNCHING (immediate restart)
        effects.append(Record("restarting", f"restarting {why} (autorestart)"))
        return _launch(replace(inst, restarts=inst.restarts + 1), effects)
    # ONLINE -> WAITING_RESTART
    effects.append(Record("restarting", f"restarting in {delay:.3g}s {why} (autorestart; backoff after "
                                        f"{failures} fast failure{'s' if failures != 1 else ''})"))
    return replace(inst, status=Status.WAITING_RESTART), [*effects, ArmTimer(RESTART_TIMER, delay)]


def _timer(inst: Instance, name: str, policy: Policy) -> Result:
    if name == READY_TIMER and inst.status is Status.ONLINE and not inst.ready and policy.ready_mode == "auto":
        # ONLINE, not yet ready -> ready: up for listen_timeout without dying (it never listened)
        return replace(inst, ready=True), [Record("ready", f"up for {policy.ready_delay:g}s")]
    if name == READY_TIMER and inst.status is Status.LAUNCHING:
        if policy.ready_mode == "delay":
            # LAUNCHING -> ONLINE: up for listen_timeout without dying
            return replace(inst, status=Status.ONLINE, ready=True), [Record("ready", f"up for {policy.ready_delay:g}s")]
        # LAUNCHING -> STOPPING: not ready in time is a failed start
        message = f"not ready within {policy.ready_timeout:g}s ({policy.ready_mode})"
        stopped, effects = _stop(inst, After.FAILED, policy)
        return stopped, [Record("not_ready", message), *effects]
    if name == WATCHDOG_TIMER and inst.status is Status.ONLINE:
        # ONLINE -> STOPPING (then LAUNCHING): silent longer than the watchdog allows
        stopped, effects = _stop(inst, After.RESTART, policy)
        return stopped, [Record("watchdog", f"no WATCHDOG=1 for {policy.watchdog:g}s: restarting"), *effects]
    if name == RESTART_TIMER and inst.status is Status.WAITING_RESTART:
        return _launch(replace(inst, restarts=inst.restarts + 1), [])
    if name == RESPAWN_TIMER and inst.status is Status.WAITING_RESTART:
        # WAITING_RESTART -> LAUNCHING: the spawn put off, tried again (not a restart: not counted)
        return _launch(inst, [])
    return inst, []


def unexpected(event: Event, before: Status, after: Status) -> bool:
    """Whether a change of status was the instance's own doing (it exited while running,
    could not be executed, was not ready in time, went silent) rather than what was asked."""
    match event:
        case Exited():
            return before in RUNNING
        case SpawnFailed():
            return True
        case TimerFired(name=name) if name in (READY_TIMER, WATCHDOG_TIMER):
            return after is Status.STOPPING
    return False
