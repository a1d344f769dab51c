"""Every transition of the instance lifecycle, with an injected clock (no processes, no sleeps)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.lifecycle import instance as lc
from corral.lifecycle.instance import After, Status
from corral.config.policies import default_policy

P = default_policy(min_uptime=1.0, backoff_base=0.1, kill_timeout=5.0)


def kinds(effects: list[lc.Effect]) -> list[str]:
    out = []
    for e in effects:
        match e:
            case lc.Record(kind=kind):
                out.append(f"record:{kind}")
            case lc.ArmTimer(name=name, delay=delay):
                out.append(f"arm:{name}:{delay:g}")
            case lc.CancelTimer(name=name):
                out.append(f"cancel:{name}")
            case lc.Signal(signal=sig):
                out.append(f"signal:{sig}")
            case lc.Terminate(signal=sig, kill_timeout=timeout):
                out.append(f"terminate:{sig}:{timeout:g}")
            case _:
                out.append(type(e).__name__.lower())
    return out


def at(status: Status, **kw: object) -> lc.Instance:
    return replace(lc.Instance(status=status), **kw)  # type: ignore[arg-type]


RUNNING = at(Status.ONLINE, pid=10, started_at=100.0)


@pytest.mark.parametrize(
    "before, event, now, status, effects",
    [
        # STOPPED / ERRORED -> LAUNCHING
        (at(Status.STOPPED), lc.Start(), 0, Status.LAUNCHING, ["record:start", "spawn"]),
        (at(Status.ERRORED, fast_failures=7), lc.Start(), 0, Status.LAUNCHING, ["record:start", "spawn"]),
        # WAITING_RESTART -> LAUNCHING (a user's start skips the backoff)
        (at(Status.WAITING_RESTART), lc.Start(), 0, Status.LAUNCHING, ["cancel:restart", "cancel:respawn", "spawn"]),
        # LAUNCHING/ONLINE: start is a no-op
        (RUNNING, lc.Start(), 0, Status.ONLINE, []),
        # LAUNCHING -> ONLINE at once when nothing says when it is ready ("auto"): ready later
        (at(Status.LAUNCHING), lc.Spawned(42), 5, Status.ONLINE, ["record:spawn", "arm:ready:3", "watchlisten"]),
        # LAUNCHING -> ONLINE
        (at(Status.LAUNCHING, pid=42, started_at=4.0), lc.Ready(), 5, Status.ONLINE, ["cancel:ready", "record:ready"]),
        # LAUNCHING -> ERRORED (cannot exec)
        (at(Status.LAUNCHING), lc.SpawnFailed("no such file"), 0, Status.ERRORED, ["record:spawn_failed"]),
        # LAUNCHING -> WAITING_RESTART (the daemon put the spawn off: its state is not being saved)
        (at(Status.LAUNCHING), lc.SpawnFailed("state.db is full", retry=60), 0, Status.WAITING_RESTART,
         ["record:spawn_failed", "arm:respawn:60"]),
        # WAITING_RESTART -> LAUNCHING when the spawn put off is tried again
        (at(Status.WAITING_RESTART), lc.TimerFired(lc.RESPAWN_TIMER), 0, Status.LAUNCHING, ["spawn"]),
        (RUNNING, lc.TimerFired(lc.RESPAWN_TIMER), 0, Status.ONLINE, []),
        # ONLINE -> STOPPING
        (RUNNING, lc.Stop(), 0, Status.STOPPING,
         ["cancel:ready", "cancel:watchdog", "record:stop", "terminate:SIGTERM:5"]),
        # STOPPING -> STOPPED (main exited, group empty)
        (at(Status.STOPPING, pid=10, after=After.STOP), lc.Exited(0, None), 0, Status.STOPPED,
         ["record:stopped"]),
        # STOPPING stays while the group lives on
        (at(Status.STOPPING, pid=10, after=After.STOP), lc.Exited(0, None, group_alive=True), 0,
         Status.STOPPING, ["watchgroup"]),
        # STOPPING -> STOPPED once the group is gone
        (at(Status.STOPPING, pid=None, after=After.STOP), lc.GroupGone(), 0, Status.STOPPED,
         ["record:stopped"]),
        # STOPPING -> LAUNCHING (restart)
        (at(Status.STOPPING, pid=10, after=After.RESTART), lc.Exited(None, "SIGTERM"), 0, Status.LAUNCHING,
         ["spawn"]),
        # STOPPING -> removed (delete)
        (at(Status.STOPPING, pid=10, after=After.DELETE), lc.Exited(0, None), 0, Status.STOPPED,
         ["removed"]),
        # WAITING_RESTART -> STOPPED
        (at(Status.WAITING_RESTART), lc.Stop(), 0, Status.STOPPED,
         ["cancel:restart", "cancel:respawn", "record:stopped"]),
        # WAITING_RESTART -> LAUNCHING when the backoff timer fires
        (at(Status.WAITING_RESTART), lc.TimerFired(lc.RESTART_TIMER), 0, Status.LAUNCHING, ["spawn"]),
        # STOPPED: stop again is harmless; restart starts; delete removes
        (at(Status.STOPPED), lc.Stop(), 0, Status.STOPPED, ["record:stopped"]),
        (at(Status.STOPPED), lc.Stop(After.RESTART), 0, Status.LAUNCHING, ["spawn"]),
        (at(Status.ERRORED), lc.Stop(After.DELETE), 0, Status.STOPPED, ["removed"]),
        # a stale timer changes nothing
        (RUNNING, lc.TimerFired("kill"), 0, Status.ONLINE, []),
        (RUNNING, lc.TimerFired(lc.RESTART_TIMER), 0, Status.ONLINE, []),
        (at(Status.STOPPED), lc.Exited(1, None), 0, Status.STOPPED, []),
        (at(Status.STOPPED), lc.Ready(), 0, Status.STOPPED, []),
    ],
)
def test_transition(before: lc.Instance, event: lc.Event, now: float, status: Status, effects: list[str]) -> None:
    after, out = lc.step(before, event, now, P)
    assert after.status is status
    assert kinds(out) == effects


def test_a_spawn_put_off_is_neither_a_failure_nor_a_restart() -> None:
    """The store refused the spawn's record: not the app's fault, so no backoff and no restart counted."""
    inst = at(Status.LAUNCHING, restarts=3, fast_failures=2)
    inst, _ = lc.step(inst, lc.SpawnFailed("state.db: database or disk is full", retry=60), 0, P)
    inst, out = lc.step(inst, lc.TimerFired(lc.RESPAWN_TIMER), 60, P)
    assert (inst.status, inst.restarts, inst.fast_failures, kinds(out)) == (Status.LAUNCHING, 3, 2, ["spawn"])


def test_spawned_records_pid_and_start_time() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(42), 7.5, P)
    assert (inst.pid, inst.started_at) == (42, 7.5)


def test_stop_request_while_stopping_replaces_what_follows() -> None:
    inst = at(Status.STOPPING, pid=10, after=After.RESTART)
    inst, out = lc.step(inst, lc.Stop(After.STOP), 0, P)
    assert (inst.status, inst.after, out) == (Status.STOPPING, After.STOP, [])
    inst, _ = lc.step(inst, lc.Start(), 0, P)
    assert inst.after is After.RESTART


def test_first_crash_restarts_at_once_and_counts() -> None:
    inst, out = lc.step(RUNNING, lc.Exited(1, None), 100.2, P)
    assert inst.status is Status.LAUNCHING
    assert (inst.fast_failures, inst.restarts) == (1, 1)
    assert kinds(out) == ["cancel:ready", "cancel:watchdog", "record:exit", "record:restarting", "spawn"]
    assert [e.message for e in out if isinstance(e, lc.Record)][1] == "restarting after exit code 1 (autorestart)"


def records(effects: list[lc.Effect]) -> list[str]:
    return [f"{e.kind}: {e.message}" for e in effects if isinstance(e, lc.Record)]


def test_the_timeline_says_why_it_restarts_and_who_asked() -> None:
    """``corral events`` answers "why did this restart?": the backoff, and who asked for a start/stop."""
    inst = replace(RUNNING, fast_failures=2)
    _, out = lc.step(inst, lc.Exited(None, "SIGSEGV"), 100.1, P)
    assert records(out)[1] == "restarting: restarting in 0.2s after killed by SIGSEGV (autorestart; backoff " \
                              "after 3 fast failures)"
    _, out = lc.step(RUNNING, lc.Stop(After.RESTART, by="max_memory_restart"), 0, P)
    assert records(out) == ["restart: stopping (restart) by max_memory_restart"]
    _, out = lc.step(at(Status.STOPPED), lc.Start(by="corral start"), 0, P)
    assert records(out) == ["start: started by corral start"]
    _, out = lc.step(at(Status.STOPPED), lc.Start(), 0, P)
    assert records(out) == ["start: started"]
    stopping = at(Status.STOPPING, after=After.FAILED, pid=None, fast_failures=0)
    _, out = lc.step(stopping, lc.Exited(None, "SIGTERM"), 100.0, P)
    assert records(out) == ["restarting: restarting after a failed start (autorestart)"]


def test_consecutive_fast_failures_back_off_exponentially_to_the_cap() -> None:
    delays = []
    inst = RUNNING
    now = 100.0
    for _ in range(12):
        inst = replace(inst, status=Status.ONLINE, pid=1, started_at=now)
        now += 0.05
        inst, out = lc.step(inst, lc.Exited(1, None), now, P)
        arm = [e for e in out if isinstance(e, lc.ArmTimer)]
        delays.append(arm[0].delay if arm else 0.0)
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 15.0, 15.0, 15.0]


def test_a_stable_run_resets_the_backoff() -> None:
    inst = replace(RUNNING, fast_failures=6)
    inst, out = lc.step(inst, lc.Exited(1, None), 100.0 + 1.5, P)  # ran longer than min_uptime
    assert inst.fast_failures == 0
    assert inst.status is Status.LAUNCHING
    assert "arm:restart" not in " ".join(kinds(out))


def test_crash_loop_is_recorded_at_the_tenth_fast_failure_and_never_gives_up() -> None:
    inst = replace(RUNNING, fast_failures=9)
    inst, out = lc.step(inst, lc.Exited(1, None), 100.1, P)
    assert "record:crash_loop" in kinds(out)
    assert inst.status is Status.WAITING_RESTART
    inst = replace(inst, status=Status.ONLINE, started_at=200.0, fast_failures=40)
    inst, out = lc.step(inst, lc.Exited(1, None), 200.1, P)
    assert inst.status is Status.WAITING_RESTART
    assert "record:crash_loop" not in kinds(out)


def test_max_restarts_moves_to_errored() -> None:
    policy = replace(P, max_restarts=2)
    inst = RUNNING
    statuses = []
    for n in range(3):
        inst = replace(inst, status=Status.ONLINE, started_at=100.0 * n)
        inst, out = lc.step(inst, lc.Exited(1, None), 100.0 * n + 0.1, policy)
        statuses.append(inst.status)
    assert statuses == [Status.LAUNCHING, Status.WAITING_RESTART, Status.ERRORED]
    assert "record:errored" in kinds(out)


@pytest.mark.parametrize(
    "autorestart, codes, code, sig, status",
    [
        ("never", (), 0, None, Status.STOPPED),
        ("never", (), 1, None, Status.ERRORED),
        ("never", (), None, "SIGKILL", Status.ERRORED),
        ("on-failure", (), 0, None, Status.STOPPED),
        ("on-failure", (), 2, None, Status.LAUNCHING),
        ("on-failure", (), None, "SIGSEGV", Status.LAUNCHING),
        ("on-failure", (2,), 2, None, Status.STOPPED),
        ("always", (), 0, None, Status.LAUNCHING),
        ("always", (0,), 0, None, Status.STOPPED),
        ("always", (3,), 3, None, Status.STOPPED),
        ("always", (3,), 4, None, Status.LAUNCHING),
    ],
)
def test_restart_policy(autorestart: str, codes: tuple[int, ...], code: int | None, sig: str | None,
                        status: Status) -> None:
    policy = replace(P, autorestart=autorestart, stop_exit_codes=frozenset(codes))
    inst, _ = lc.step(RUNNING, lc.Exited(code, sig), 150.0, policy)
    assert inst.status is status


def test_leftovers_of_a_crashed_instance_are_ended() -> None:
    _, out = lc.step(RUNNING, lc.Exited(1, None, group_alive=True), 150.0, P)
    assert "killleftovers" in kinds(out)


def test_restart_delay_is_added_to_every_restart() -> None:
    policy = replace(P, restart_delay=2.0)
    inst, out = lc.step(RUNNING, lc.Exited(1, None), 150.0, policy)
    assert inst.status is Status.WAITING_RESTART
    assert "arm:restart:2" in kinds(out)


def test_user_restart_resets_backoff_and_counts() -> None:
    inst = at(Status.STOPPING, pid=3, after=After.RESTART, fast_failures=5, restarts=4)
    inst, _ = lc.step(inst, lc.Exited(0, None), 0, P)
    assert (inst.status, inst.fast_failures, inst.restarts) == (Status.LAUNCHING, 0, 5)


# -- readiness and watchdog ------------------------------------------------------------------
@pytest.mark.parametrize("mode, effects", [
    ("delay", ["record:spawn", "arm:ready:3"]),
    ("notify", ["record:spawn", "arm:ready:30"]),
    ("probe", ["record:spawn", "arm:ready:30", "startprobe"]),
])
def test_spawned_waits_for_readiness(mode: str, effects: list[str]) -> None:
    policy = replace(P, ready_mode=mode, ready_delay=3.0, ready_timeout=30.0)
    inst, out = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, policy)
    assert inst.status is Status.LAUNCHING
    assert kinds(out) == effects


def test_listen_timeout_passing_without_dying_means_ready() -> None:
    policy = replace(P, ready_mode="delay")
    inst, out = lc.step(at(Status.LAUNCHING, pid=9, started_at=1.0), lc.TimerFired(lc.READY_TIMER), 4.0, policy)
    assert inst.status is Status.ONLINE and kinds(out) == ["record:ready"]


def test_not_ready_in_time_is_a_failed_start_restarted_with_backoff() -> None:
    policy = replace(P, ready_mode="notify", ready_timeout=10.0)
    inst = at(Status.LAUNCHING, pid=9, started_at=1.0, fast_failures=2)
    inst, out = lc.step(inst, lc.TimerFired(lc.READY_TIMER), 11.0, policy)
    assert inst.status is Status.STOPPING and inst.after is After.FAILED
    assert kinds(out)[0] == "record:not_ready" and "terminate:SIGTERM:5" in kinds(out)
    inst, out = lc.step(inst, lc.Exited(None, "SIGTERM"), 11.5, policy)
    assert inst.status is Status.WAITING_RESTART and inst.fast_failures == 3
    assert "arm:restart:0.2" in kinds(out)


def test_auto_online_at_spawn_is_not_yet_ready() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, P)
    assert inst.status is Status.ONLINE and not inst.ready


def test_auto_listening_socket_makes_an_online_instance_ready() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, P)
    inst, out = lc.step(inst, lc.Ready(), 1.25, P)
    assert inst.ready and inst.status is Status.ONLINE
    assert kinds(out) == ["cancel:ready", "record:ready"]
    assert out[1].message == "listening after 0.250s"  # type: ignore[union-attr]


def test_auto_listen_timeout_passing_without_dying_makes_it_ready() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, P)
    inst, out = lc.step(inst, lc.TimerFired(lc.READY_TIMER), 4.0, P)
    assert inst.ready and kinds(out) == ["record:ready"]


def test_auto_second_ready_changes_nothing() -> None:
    inst = at(Status.ONLINE, pid=9, started_at=1.0, ready=True)
    assert lc.step(inst, lc.Ready(), 2.0, P) == (inst, [])
    assert lc.step(inst, lc.TimerFired(lc.READY_TIMER), 4.0, P) == (inst, [])


def test_auto_crash_before_ready_clears_ready_and_restart_waits_again() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, P)
    inst, out = lc.step(inst, lc.Exited(1, None), 1.5, P)
    assert not inst.ready and "cancel:ready" in kinds(out)


def test_stopping_instance_is_no_longer_ready() -> None:
    inst, _ = lc.step(at(Status.ONLINE, pid=9, started_at=1.0, ready=True), lc.Stop(), 2.0, P)
    assert inst.status is Status.STOPPING and not inst.ready


@pytest.mark.parametrize("mode", ["delay", "notify", "probe"])
def test_online_from_launching_is_ready(mode: str) -> None:
    policy = replace(P, ready_mode=mode)
    event: lc.Event = lc.TimerFired(lc.READY_TIMER) if mode == "delay" else lc.Ready()
    inst, _ = lc.step(at(Status.LAUNCHING, pid=9, started_at=1.0), event, 4.0, policy)
    assert inst.status is Status.ONLINE and inst.ready


def test_a_ready_probe_result_after_a_crash_changes_nothing() -> None:
    inst, out = lc.step(at(Status.WAITING_RESTART), lc.Ready(), 1.0, P)
    assert inst.status is Status.WAITING_RESTART and out == []


def test_watchdog_restarts_a_silent_instance_gracefully() -> None:
    policy = replace(P, watchdog=2.0)
    inst, out = lc.step(RUNNING, lc.WatchdogPing(), 101.0, policy)
    assert kinds(out) == ["arm:watchdog:2"]
    inst, out = lc.step(inst, lc.TimerFired(lc.WATCHDOG_TIMER), 103.0, policy)
    assert inst.status is Status.STOPPING and inst.after is After.RESTART
    assert kinds(out)[0] == "record:watchdog" and "terminate:SIGTERM:5" in kinds(out)


def test_watchdog_pings_are_ignored_without_a_watchdog() -> None:
    assert lc.step(RUNNING, lc.WatchdogPing(), 101.0, P)[1] == []


@pytest.mark.parametrize(
    "before, event, after, surprise",
    [
        (Status.ONLINE, lc.Exited(1, None), Status.LAUNCHING, True),  # crashed, restarted at once
        (Status.LAUNCHING, lc.SpawnFailed("nope"), Status.ERRORED, True),
        (Status.LAUNCHING, lc.TimerFired(lc.READY_TIMER), Status.STOPPING, True),  # not ready in time
        (Status.ONLINE, lc.TimerFired(lc.WATCHDOG_TIMER), Status.STOPPING, True),
        (Status.LAUNCHING, lc.TimerFired(lc.READY_TIMER), Status.ONLINE, False),  # listen_timeout passed
        (Status.STOPPING, lc.Exited(0, None), Status.STOPPED, False),  # stopped as asked
        (Status.ONLINE, lc.Stop(), Status.STOPPING, False),
        (Status.WAITING_RESTART, lc.TimerFired(lc.RESTART_TIMER), Status.LAUNCHING, False),
    ],
)
def test_a_change_is_unexpected_only_when_the_instance_did_it_on_its_own(
        before: Status, event: lc.Event, after: Status, surprise: bool) -> None:
    assert lc.unexpected(event, before, after) is surprise


# -- Listening: a Node instance in cluster mode says that a server of it listens ----------------
def test_listening_makes_a_launching_cluster_instance_ready_before_listen_timeout() -> None:
    policy = replace(P, ready_mode="delay", ready_delay=3.0)
    inst, out = lc.step(at(Status.LAUNCHING, pid=9, started_at=1.0), lc.Listening(), 1.5, policy)
    assert inst.status is Status.ONLINE and inst.ready
    assert kinds(out) == ["cancel:ready", "record:ready"]
    assert out[1].message == "listening after 0.500s"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["notify", "probe"])
def test_listening_is_not_ready_when_the_app_says_when_it_is(mode: str) -> None:
    """wait_ready waits for process.send('ready'); a probe waits for its answer."""
    inst = at(Status.LAUNCHING, pid=9, started_at=1.0)
    assert lc.step(inst, lc.Listening(), 1.5, replace(P, ready_mode=mode)) == (inst, [])


def test_listening_makes_an_auto_instance_ready_once() -> None:
    inst, _ = lc.step(at(Status.LAUNCHING), lc.Spawned(9), 1.0, P)
    inst, out = lc.step(inst, lc.Listening(), 1.25, P)
    assert inst.ready and kinds(out) == ["cancel:ready", "record:ready"]
    assert lc.step(inst, lc.Listening(), 2.0, P) == (inst, [])


def test_listening_after_a_crash_changes_nothing() -> None:
    inst = at(Status.WAITING_RESTART)
    assert lc.step(inst, lc.Listening(), 2.0, replace(P, ready_mode="delay")) == (inst, [])
