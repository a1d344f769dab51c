"""Typed events: frozen, and each shown as the row `corral events` has always printed."""

from __future__ import annotations

import dataclasses

import pytest

from corral import events as ev
from corral import feature_events as fev
from corral.config.plan import changed_keys


def test_events_are_frozen() -> None:
    event = ev.InstanceSpawned(app="api", instance=0, pid=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.pid = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kind, message, data, cls",
    [
        ("spawn", "pid 42", {"pid": 42}, ev.InstanceSpawned),
        ("exit", "exit code 1 after 0.500s", {"code": 1, "signal": None}, ev.InstanceExited),
        ("exit", "killed by SIGKILL after 2.000s", {"code": None, "signal": "SIGKILL"}, ev.InstanceExited),
        ("ready", "ready after 0.120s", {}, ev.InstanceReady),
        ("crash_loop", "crash loop: 10 consecutive runs shorter than 1s", {}, ev.Note),
        ("stopped", "stopped", {}, ev.Note),
    ],
)
def test_a_lifecycle_record_becomes_a_typed_event_with_the_same_row(
        kind: str, message: str, data: dict[str, object], cls: type[ev.Event]) -> None:
    event = ev.from_record("api", 2, kind, message, data)
    assert type(event) is cls and event.stored
    assert event.row() == {"ts": 0.0, "app": "api", "instance": 2, "kind": kind, "message": message, "data": data}


def test_state_changes_probe_results_and_requested_exits_are_live_only() -> None:
    change = ev.StateChanged(app="api", instance=0, old="online", new="waiting_restart", expected=False,
                             cause="Exited")
    assert not change.stored and change.kind == "state"
    assert change.message == "online -> waiting_restart (unexpected)"
    assert change.data == {"from": "online", "to": "waiting_restart", "expected": False, "cause": "Exited"}
    probe = fev.ProbeResult(app="api", instance=0, probe="http", ok=False, detail="refused")
    assert not probe.stored and probe.message == "ready http probe failed: refused"
    asked = ev.InstanceExited(app="api", instance=0, code=0, signal=None, expected=True, message="m")
    assert not asked.stored


def test_a_crash_carries_its_report_as_data() -> None:
    report = {"code": 1, "exc_type": "KeyError", "classification": "code_bug"}
    crash = ev.InstanceCrashed(app="api", instance=0, report=report, message="KeyError: 'user' (code_bug; exit code 1)")
    assert crash.row()["kind"] == "crash" and crash.row()["data"] == report


def test_app_events_name_what_changed_but_never_the_values() -> None:
    keys = tuple(sorted(changed_keys({"env": {"TOKEN": "a"}, "instances": 1}, {"env": {"TOKEN": "b"}, "instances": 1, "x": 2})))
    assert keys == ("env", "x")
    changed = ev.AppChanged(app="api", keys=keys)
    assert changed.message == "configuration changed: env, x" and "b" not in str(changed.row())
    assert ev.AppAdded(app="api", app_id=3).message == "added as id 3"
    assert ev.AppRemoved(app="api").row()["kind"] == "app_removed"
    assert ev.ScaleProgress(app="api", step="done", before=2, after=4).message == "scaled from 2 to 4 instance(s)"
