"""How a changed app is applied: one decision for start FILE, restart and reload."""

from __future__ import annotations

from typing import Any

from corral.config.plan import Change, for_reload, plan

BASE: dict[str, Any] = {"name": "web", "script": "/srv/app.py", "env": {"V": "1"}, "instances": 2,
                        "listen": [], "reload": "rolling", "kill_timeout": 5.0}


def test_a_new_app_starts() -> None:
    assert plan(None, BASE, running=False) is Change.START


def test_a_stopped_app_starts_with_its_new_spec() -> None:
    assert plan(BASE, {**BASE, "env": {"V": "2"}}, running=False) is Change.START


def test_the_same_spec_while_running_is_unchanged() -> None:
    assert plan(BASE, dict(BASE), running=True) is Change.UNCHANGED


def test_a_changed_environment_restarts_a_plain_app() -> None:
    assert plan(BASE, {**BASE, "env": {"V": "2"}}, running=True) is Change.RESTART


def test_a_changed_app_with_a_shared_socket_is_reloaded_rolling() -> None:
    old = {**BASE, "listen": ["tcp://127.0.0.1:8000"]}
    assert plan(old, {**old, "env": {"V": "2"}}, running=True) is Change.ROLLING_RELOAD


def test_a_changed_node_app_in_cluster_mode_is_reloaded_rolling() -> None:
    old = {**BASE, "script": "/srv/app.js", "exec_mode": "cluster"}
    assert plan(old, {**old, "env": {"V": "2"}}, running=True) is Change.ROLLING_RELOAD
    assert plan(old, {**old, "instances": 4}, running=True) is Change.HOT_UPDATE


def test_a_node_app_entering_or_leaving_cluster_mode_restarts() -> None:
    """Its instances in fork mode hold the port by themselves: none in cluster mode could share it."""
    fork = {**BASE, "script": "/srv/app.js", "instances": 1}
    assert plan(fork, {**fork, "instances": 2}, running=True) is Change.RESTART
    assert plan(fork, {**fork, "exec_mode": "cluster"}, running=True) is Change.RESTART
    cluster = {**fork, "exec_mode": "cluster"}
    assert plan(cluster, {**cluster, "exec_mode": "fork"}, running=True) is Change.RESTART
    python = {**BASE, "instances": 1}  # not Node: instances stay a hot key
    assert plan(python, {**python, "instances": 2}, running=True) is Change.HOT_UPDATE


def test_reload_restart_mode_restarts_a_socket_app() -> None:
    old = {**BASE, "listen": ["tcp://127.0.0.1:8000"], "reload": "restart"}
    assert plan(old, {**old, "env": {"V": "2"}}, running=True) is Change.RESTART


def test_only_policy_keys_changed_is_a_hot_update() -> None:
    assert plan(BASE, {**BASE, "kill_timeout": 9.0, "instances": 4}, running=True) is Change.HOT_UPDATE


def test_a_hot_key_and_a_cold_key_together_restart() -> None:
    assert plan(BASE, {**BASE, "kill_timeout": 9.0, "script": "/srv/other.py"}, running=True) is Change.RESTART


def test_reload_is_rolling_unless_asked_or_stopped() -> None:
    assert for_reload(BASE, running=True) is Change.ROLLING_RELOAD
    assert for_reload({**BASE, "reload": "restart"}, running=True) is Change.RESTART
    assert for_reload(BASE, running=False) is Change.RESTART


def test_every_hot_key_is_a_setting() -> None:
    """HOT_KEYS lives beside plan() so the daemon need not import the converters: keep it true."""
    from corral.config.fields import FIELDS
    from corral.config.plan import HOT_KEYS
    from corral.config.spec import AppSpec

    names = {f.name for f in FIELDS} | set(AppSpec(name="a", cwd="/").to_dict())
    assert HOT_KEYS <= names
