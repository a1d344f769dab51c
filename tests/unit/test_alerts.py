"""The alert engine, pure, transition by transition on a ManualClock: what alerts, for whom, how often,
and what happens to a delivery that fails."""

from __future__ import annotations

from typing import Any

from corral.clock import ManualClock
from corral.monitor.alerts import BACKOFF, REPEAT, AlertEngine, Delivery

WEBHOOK = {"name": "webhook:hooks.example.com", "min_severity": "warning"}
PAGER = {"name": "command:page-me", "min_severity": "critical"}
CHATTY = {"name": "email:ops@example.com", "min_severity": "info"}

CODE_BUG = {"code": 1, "signal": None, "pid": 42, "language": "python", "exc_type": "KeyError",
            "message": "'user'", "classification": "code_bug", "is_code_bug": True,
            "frames": ['  File "api.py", line 3, in handler'], "tail": ["Traceback ...", "KeyError: 'user'"]}


def engine(*sinks: dict[str, str]) -> AlertEngine:
    return AlertEngine([dict(s) for s in sinks])


def crash(e: AlertEngine, clock: ManualClock, report: dict[str, Any], app: str = "api",
          message: str = "KeyError: 'user' (code_bug; exit code 1)") -> tuple[Any, list[Delivery]]:
    return e.on_event("crash", app, 0, message, report, clock.now(), clock.monotonic())


def sinks_of(deliveries: list[Delivery]) -> list[str]:
    return [d.sink for d in deliveries]


def test_a_code_bug_pages_and_user_errors_and_external_failures_are_counted_only() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK, PAGER)
    alert, deliveries = crash(e, clock, CODE_BUG)
    assert (alert.kind, alert.severity, alert.app, alert.instance) == ("code_bug", "warning", "api", 0)
    assert alert.title == "api[0] crashed on a code bug: KeyError: 'user' (code_bug; exit code 1)"
    assert alert.details["exc_type"] == "KeyError" and alert.details["tail"][-1] == "KeyError: 'user'"
    assert sinks_of(deliveries) == ["webhook:hooks.example.com"]  # the pager takes critical only
    for classification in ("user_error", "external", "external"):
        report = {**CODE_BUG, "classification": classification, "is_code_bug": False}
        assert crash(e, clock, report) == (None, [])
    assert e.counted == {("api", "user_error"): 1, ("api", "external"): 2}


def test_crash_loops_and_errored_are_critical() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK, PAGER)
    loop, deliveries = e.on_event("crash_loop", "api", 1, "crash loop: 10 consecutive runs shorter than 1s", {},
                                  clock.now(), clock.monotonic())
    assert (loop.kind, loop.severity, loop.title) == (
        "crash_loop", "critical", "api[1] is in a crash loop: 10 consecutive runs shorter than 1s")
    assert sinks_of(deliveries) == ["webhook:hooks.example.com", "command:page-me"]
    # the note says why; the state change that follows raises the one alert
    why = "3 consecutive runs shorter than min_uptime; max_restarts is 3"
    assert e.on_event("errored", "api", 1, why, {}, clock.now(), clock.monotonic()) == (None, [])
    errored, deliveries = e.on_event("state", "api", 1, "waiting -> errored", {"from": "waiting", "to": "errored"},
                                     clock.now(), clock.monotonic())
    assert errored.title == f"api[1] is errored: corral will not restart it ({why})"
    assert len(deliveries) == 2
    # an instance with autorestart off has the state change only
    bare, _ = e.on_event("state", "job", 0, "", {"to": "errored"}, clock.now(), clock.monotonic())
    assert bare.title == "job[0] is errored: corral will not restart it"
    assert e.on_event("state", "api", 1, "", {"to": "online"}, clock.now(), clock.monotonic()) == (None, [])


def test_identical_alerts_collapse_to_one_per_hour_per_sink_and_the_next_says_how_many() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK, CHATTY)
    first = crash(e, clock, CODE_BUG)[1]
    assert [d.suppressed for d in first] == [0, 0]
    for _ in range(3):
        clock.advance(600)
        alert, deliveries = crash(e, clock, CODE_BUG)
        assert alert is not None and deliveries == []  # raised (in the history), sent to nobody
    other_app = crash(e, clock, CODE_BUG, app="web")[1]
    assert len(other_app) == 2  # another app is another alert
    clock.advance(REPEAT - 1800 - 1)
    assert crash(e, clock, CODE_BUG)[1] == []  # 59:59 after the first: still held back
    clock.advance(1)
    again = crash(e, clock, CODE_BUG)[1]
    assert [(d.sink, d.suppressed) for d in again] == [("webhook:hooks.example.com", 4), ("email:ops@example.com", 4)]
    clock.advance(60)
    assert crash(e, clock, CODE_BUG)[1] == []  # the hour starts again from that one


def test_thresholds_are_per_mount_and_the_resolve_goes_where_the_alert_went() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK, PAGER)

    def threshold(mount: str, cleared: bool, value: float) -> tuple[Any, list[Delivery]]:
        data = {"metric": "disk", "value": value, "limit": 75.0, "cleared": cleared, "mount": mount, "samples": 2}
        return e.on_event("threshold", "", None, "", data, clock.now(), clock.monotonic())

    root, deliveries = threshold("/", False, 81.25)
    assert (root.kind, root.title) == ("threshold", "disk over the threshold on host /: 81.2 (limit 75.0)")
    assert sinks_of(deliveries) == ["webhook:hooks.example.com"]
    data, deliveries = threshold("/data", False, 90.0)
    assert sinks_of(deliveries) == ["webhook:hooks.example.com"]  # another mount: not collapsed
    clock.advance(30)
    cleared, deliveries = threshold("/", True, 60.0)
    assert (cleared.kind, cleared.status) == ("threshold_cleared", "resolved")
    assert cleared.title == "disk back within the threshold on host /: 60.0 (limit 75.0)"
    assert sinks_of(deliveries) == ["webhook:hooks.example.com"]  # the pager never had it: no resolve
    assert threshold("/", True, 59.0)[1] == []  # nothing firing there any more


def test_a_failed_delivery_is_retried_with_backoff_then_recorded_undelivered() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK)
    (delivery,) = crash(e, clock, CODE_BUG)[1]
    waits = []
    while True:
        e.result(delivery, False, "cannot reach hooks.example.com: Connection refused", clock.monotonic())
        if delivery.retry_at is None:
            break
        waits.append(delivery.retry_at - clock.monotonic())
        clock.advance(delivery.retry_at - clock.monotonic())
    assert waits == list(BACKOFF)
    assert (delivery.outcome, delivery.attempts) == ("undelivered", len(BACKOFF) + 1)
    assert delivery.reason == "cannot reach hooks.example.com: Connection refused"
    # nobody got it: the next identical alert is not held back by the hourly collapse
    assert len(crash(e, clock, CODE_BUG)[1]) == 1


def test_a_refused_request_is_not_retried_and_a_late_success_is_delivered() -> None:
    clock = ManualClock()
    e = engine(WEBHOOK)
    (delivery,) = crash(e, clock, CODE_BUG)[1]
    e.result(delivery, False, "HTTP 404 Not Found", clock.monotonic(), retry=False)
    assert (delivery.outcome, delivery.attempts, delivery.retry_at) == ("undelivered", 1, None)
    clock.advance(10)
    (delivery,) = crash(e, clock, CODE_BUG, app="web")[1]
    e.result(delivery, False, "HTTP 503 Service Unavailable", clock.monotonic())
    assert delivery.retry_at == clock.monotonic() + BACKOFF[0]
    clock.advance(BACKOFF[0])
    e.result(delivery, True, "", clock.monotonic())
    assert (delivery.outcome, delivery.attempts, delivery.retry_at) == ("delivered", 2, None)


def test_the_test_alert_goes_to_every_sink_whatever_its_min_severity_and_is_never_collapsed() -> None:
    from corral.monitor.alerts import Alert

    e = engine(WEBHOOK, PAGER)
    for _ in range(2):
        deliveries = e.test(Alert("test", "", "test alert", "info"))
        assert sinks_of(deliveries) == ["webhook:hooks.example.com", "command:page-me"]
    ids = {d.alert.id for d in deliveries}
    assert ids == {"a2"}


def test_unrelated_events_raise_nothing() -> None:
    e = engine(WEBHOOK)
    for kind in ("spawn", "ready", "reload", "stop"):
        assert e.on_event(kind, "api", 0, "", {}, 0.0, 0.0) == (None, [])
    log_alert, deliveries = e.on_event("log_dropped", "api", 0, "3 line(s) (120 bytes) of stdout not written", {},
                                       0.0, 0.0)
    assert (log_alert.kind, len(deliveries)) == ("log_dropped", 1)
