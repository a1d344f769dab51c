"""The pure deploy decisions (corral.deploy.releases, corral.deploy.config): release names, what
to prune, where a rollback goes, the bake verdict, the deploy's steps, the [deploy] table."""

from __future__ import annotations

import calendar
from typing import Any

import pytest

from corral.deploy import releases as rl
from corral.deploy.config import DeployConfigError, parse
from corral.monitor.alerts import alert_for

T0 = calendar.timegm((2026, 11, 30, 7, 2, 15, 0, 0, 0))
R = [f"2026113007{m:02d}00-abc{m:04d}" for m in range(10)]  # oldest first


def test_release_names_are_utc_time_and_short_revision_unique_within_a_second() -> None:
    name = rl.release_name(T0, "1a2b3c4d5e6f")
    assert name == "20261130070215-1a2b3c4"
    assert rl.release_name(T0, "1a2b3c4d5e6f", [name]) == name + ".2"
    assert rl.release_name(T0, "1a2b3c4d5e6f", [name, name + ".2"]) == name + ".3"
    assert rl.release_name(T0, "dir") == "20261130070215-dir"
    assert rl.is_release(name) and rl.is_release(name + ".2")
    assert not rl.is_release(".incoming-123") and not rl.is_release("current") and not rl.is_release("2026-abc")


def test_ordered_by_time_then_number_and_foreign_directories_ignored() -> None:
    names = ["20261130070215-aaa.10", "20261130070215-aaa", "notes", "20261130070215-aaa.2", "20261129000000-zzz"]
    assert rl.ordered(names) == ["20261129000000-zzz", "20261130070215-aaa", "20261130070215-aaa.2",
                                 "20261130070215-aaa.10"]


def test_previous_is_the_newest_older_release_not_marked_bad() -> None:
    assert rl.previous(R[:4], R[3]) == R[2]
    assert rl.previous(R[:4], R[3], bad=[R[2]]) == R[1]
    assert rl.previous(R[:4], R[0]) is None
    assert rl.previous(R[:4], None) is None
    assert rl.previous(R[:4], R[1], bad=[R[0]]) is None


def test_prune_keeps_the_newest_and_never_the_live_or_previous_one() -> None:
    assert rl.to_prune(R[:7], R[6], keep=5) == R[:2]
    assert rl.to_prune(R[:5], R[4], keep=5) == []
    # after a rollback the live release is an old one: it and the one before it stay
    assert rl.to_prune(R[:7], R[1], keep=3) == [R[2], R[3], R[4], R[5]]
    assert R[0] not in rl.to_prune(R[:7], R[1], keep=3)
    # keep is at least 2: the live one and the previous one
    assert rl.to_prune(R[:3], R[2], keep=1) == [R[0]]


def ev(kind: str, ts: float, instance: int | None = 0, app: str = "web", message: str = "m", **data: Any) -> dict:
    return {"ts": ts, "app": app, "instance": instance, "kind": kind, "message": message, "data": data}


def test_bake_verdict_names_the_first_failure_of_the_new_release() -> None:
    since = 100.0
    crash = ev("crash", 101, 0, message="TypeError: bad", is_code_bug=True)
    assert rl.bake_verdict([crash], since, ["web"]) == "web[0] crashed on a code bug: TypeError: bad"
    assert rl.bake_verdict([ev("crash", 99, 0, is_code_bug=True)], since, ["web"]) is None  # before the switch
    assert rl.bake_verdict([ev("crash", 101, 0, is_code_bug=False, classification="external")], since, ["web"]) is None
    assert rl.bake_verdict([crash], since, ["api"]) is None  # another app
    live = ev("liveness_failed", 102, 1, message="liveness http probe failed (2/2)", replacing=True)
    assert rl.bake_verdict([ev("liveness_failed", 101, 1, replacing=False)], since, ["web"]) is None
    assert rl.bake_verdict([live, crash], since, ["web"]) == "web[0] crashed on a code bug: TypeError: bad"
    assert rl.bake_verdict([live], since, ["web"]) == "web[1] failed its liveness probe: liveness http probe failed (2/2)"
    assert rl.bake_verdict([ev("crash_loop", 101, 0, message="crash loop (5 in 60s)")], since, ["web"]) == \
        "web[0] is in a crash loop (5 in 60s)"
    assert rl.bake_verdict([ev("errored", 101, 0, message="gave up")], since, ["web"]) == "web[0] is errored: gave up"


def test_repeated_crashes_of_any_class_fail_the_release() -> None:
    crashes = [ev("crash", 101 + n, 0, message=f"exit {n}", classification="external") for n in range(3)]
    assert rl.bake_verdict(crashes[:2], 100.0, ["web"]) is None
    assert rl.bake_verdict(crashes, 100.0, ["web"]) == "web[0] crashed 3 times in the bake window (last: exit 2)"
    spread = [ev("crash", 101, 0), ev("crash", 102, 1), ev("crash", 103, 0)]
    assert rl.bake_verdict(spread, 100.0, ["web"]) is None  # counted per instance


def test_a_canary_bake_watches_only_the_canary_instances() -> None:
    crash_peer = ev("crash", 101, 1, is_code_bug=True)
    assert rl.bake_verdict([crash_peer], 100.0, ["web"], range(0, 1)) is None
    assert rl.bake_verdict([crash_peer], 100.0, ["web"], range(0, 2)) is not None


def run(plan: rl.Deploy, *outcomes: rl.Outcome) -> tuple[rl.Deploy, list[rl.Action]]:
    trail: list[rl.Action] = []
    for outcome in outcomes:
        plan, actions = rl.step(plan, outcome)
        trail += actions
    return plan, trail


OK = rl.Outcome(True)


def test_a_deploy_switches_rolls_everything_bakes_then_finishes() -> None:
    plan, actions = rl.start("new", "old", instances=4, canary=0, bake=60)
    assert actions == [rl.Switch("new"), rl.Roll(0, None)]
    plan, trail = run(plan, OK, OK)
    assert trail == [rl.Bake(60, 0, None), rl.Finish()] and plan.phase is rl.Phase.DONE


def test_a_canary_rolls_n_bakes_them_then_rolls_the_rest() -> None:
    plan, actions = rl.start("new", "old", instances=4, canary=1, bake=300)
    assert actions == [rl.Switch("new"), rl.Roll(0, 1)]
    plan, trail = run(plan, OK, OK, OK)
    assert trail == [rl.Bake(300, 0, 1), rl.Roll(1, None), rl.Finish()]
    _, actions = rl.start("new", "old", instances=2, canary=2)  # a canary of every instance: a plain deploy
    assert actions[1] == rl.Roll(0, None)


@pytest.mark.parametrize("outcomes", [[], [OK], [OK, OK]])
def test_a_failure_at_any_step_switches_back_and_rolls_back_then_fails_with_the_reason(outcomes: list) -> None:
    plan, _ = rl.start("new", "old", instances=4, canary=1)
    plan, _ = run(plan, *outcomes)
    plan, actions = rl.step(plan, rl.Outcome(False, "web[0] crashed on a code bug: TypeError"))
    assert actions == [rl.Revert("old")] and plan.phase is rl.Phase.ROLLBACK
    plan, actions = rl.step(plan, OK)
    assert actions == [rl.Fail("web[0] crashed on a code bug: TypeError; rolled back to old")]
    assert plan.phase is rl.Phase.FAILED


def test_a_failed_rollback_and_a_first_deploy_say_so() -> None:
    plan, _ = rl.start("new", "old", instances=2)
    plan, _ = run(plan, rl.Outcome(False, "web[1] was not ready"))
    _, actions = rl.step(plan, rl.Outcome(False, "web: a scale is in progress"))
    assert actions == [rl.Fail("web[1] was not ready; rolled back to old, but the rollback failed: "
                               "web: a scale is in progress")]
    plan, _ = rl.start("new", None, instances=2)
    _, actions = rl.step(plan, rl.Outcome(False, "web did not start"))
    assert actions == [rl.Fail("web did not start; there is no previous release to go back to")]


def test_a_failed_deploy_alerts_critically() -> None:
    alert = alert_for("deploy_failed", "web", None, "deploy of r2 failed: why; rolled back to r1",
                      {"step": "rolled_back", "release": "r2"})
    assert alert is not None and not isinstance(alert, str)
    assert (alert.kind, alert.severity, alert.title) == ("deploy", "critical",
                                                         "web: deploy of r2 failed: why; rolled back to r1")
    assert alert_for("deploy", "web", None, "deployed r2", {"step": "done"}) is None


# -- the [deploy] table -----------------------------------------------------------------
def test_corrals_table_with_defaults() -> None:
    config = parse({"repo": "git@host:app.git", "path": "/srv/app"}, "corral.toml")
    assert (config.ref, config.keep_releases, config.bake, config.build, config.environment) == \
        ("HEAD", 5, 60.0, (), "")
    config = parse({"repo": "r", "path": "p", "ref": "v2", "build": "make", "post-deploy": ["a", "b"],
                    "shared": [".env", "logs/"], "bake": "5m", "build_timeout": "30s", "keep_releases": 3},
                   "corral.toml")
    assert (config.ref, config.build, config.post_deploy, config.shared, config.bake, config.build_timeout,
            config.keep_releases) == ("v2", ("make",), ("a", "b"), (".env", "logs/"), 300.0, 30.0, 3)


def test_pm2s_environments_are_picked_by_name() -> None:
    raw = {"production": {"repo": "r", "path": "/p", "ref": "origin/main", "post-deploy": "npm i"},
           "staging": {"repo": "r", "path": "/s"}}
    assert parse(raw, "eco.js", "staging").path == "/s"
    assert parse(raw, "eco.js", "production").environment == "production"
    with pytest.raises(DeployConfigError, match=r"^eco.js: deploy: pick an environment: production, staging"):
        parse(raw, "eco.js")
    with pytest.raises(DeployConfigError, match=r'^eco.js: deploy: no environment "prod" \(there are: '):
        parse(raw, "eco.js", "prod")
    assert parse({"production": {"repo": "r", "path": "/p"}}, "eco.js").environment == "production"


@pytest.mark.parametrize("raw, message", [
    (None, "f: no [deploy] table (add repo, ref and path; see README \"Deploy\")"),
    ({"repo": "r"}, "f: deploy: path is required (a string)"),
    ({"repo": "r", "path": "p", "host": "h1", "user": "u"},
     "f: deploy: remote deploys (host/user) go through `corral export ansible`: its playbook runs "
     "`corral deploy` on each host"),
    ({"repo": "r", "path": "p", "shared": ["../etc"]},
     "f: deploy: shared: '../etc' is not a path inside the release (relative, no \"..\": \"logs/\", \".env\")"),
    ({"repo": "r", "path": "p", "keep_releases": 1}, "f: deploy: keep_releases: 1 is not a number from 2 to 1000"),
    ({"repo": "r", "path": "p", "bake": "soon"},
     "f: deploy: bake: 'soon' is not a duration (write it like \"60s\" or \"5m\")"),
    ({"repo": "r", "path": "p", "build": [3]}, "f: deploy: build: [3] is not a shell command or a list of them"),
    ({"repo": "r", "path": "p", "bild": "make"}, "f: deploy: bild: unknown key (deploy takes repo, ref, path, "
     "pre-setup, pre-deploy-local, post-deploy, build, build_timeout, keep_releases, shared, bake)"),
])
def test_mistakes_are_one_line(raw: Any, message: str) -> None:
    with pytest.raises(DeployConfigError) as caught:
        parse(raw, "f")
    assert str(caught.value) == message
