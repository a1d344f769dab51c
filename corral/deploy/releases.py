"""Deploy decisions, PURE (no IO, no clock reads): release names, which releases to prune, the
previous release, whether the bake window saw the new release fail, and the deploy's steps.

The layout is Capistrano's: ``<path>/releases/<YYYYMMDDHHMMSS>-<sha>``, ``<path>/shared``, and
``<path>/current``, a symlink to the live release.

A deploy (:func:`start`, :func:`step`) is: switch ``current`` to the new release and roll the apps
onto it (every instance, or the first ``canary`` ones), watch them for ``bake`` seconds, roll the
rest (a canary), done.  If a roll or the bake fails, it switches ``current`` back to the previous
release and rolls back the instances that run the new one (a canary's peers were never
replaced), then fails with the reason.  The IO side (``deploy.switch``, ``cli.deploy``) carries
out each action and reports :class:`Outcome`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

RELEASE = re.compile(r"^\d{14}-[0-9A-Za-z]{1,40}(\.\d{1,4})?$")
BAD_MARK = "BAD_RELEASE"
RESTARTS = 3  # crashes of one new instance in the bake window that fail the release, whatever their class


def release_name(wall: float, revision: str, existing: Iterable[str] = ()) -> str:
    """``20261130070215-1a2b3c4`` (UTC, the revision's first 7 characters); ``.2``, ``.3`` ... when
    a release of that name exists already (two deploys of one commit in a second)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(wall))
    short = re.sub(r"[^0-9A-Za-z]", "", revision)[:7] or "dir"
    name = f"{stamp}-{short}"
    taken = set(existing)
    number = 1
    found = name
    while found in taken:
        number += 1
        found = f"{name}.{number}"
    return found


def is_release(name: str) -> bool:
    """A directory under ``releases/`` that a deploy made (anything else there is left alone)."""
    return bool(RELEASE.match(name))


def ordered(names: Iterable[str]) -> list[str]:
    """Releases oldest first (the name starts with its time)."""
    def key(name: str) -> tuple[str, int]:
        base, _, number = name.partition(".")
        return base[:14], int(number or 1)

    return sorted((n for n in names if is_release(n)), key=key)


def previous(names: Iterable[str], live: str | None, bad: Iterable[str] = ()) -> str | None:
    """The newest release older than LIVE that is not marked bad (Deployer's rule): the one a
    rollback goes to."""
    releases = ordered(names)
    bad_set = set(bad)
    if live not in releases:
        return None
    older = releases[: releases.index(live)]
    return next((n for n in reversed(older) if n not in bad_set), None)


def to_prune(names: Iterable[str], live: str | None, keep: int, bad: Iterable[str] = ()) -> list[str]:
    """The releases to delete so that KEEP remain: the oldest first, never the live one nor the one
    a rollback would go to."""
    releases = ordered(names)
    spare = {live, previous(releases, live, bad)}
    excess = len(releases) - max(keep, 2)
    out: list[str] = []
    for name in releases:
        if len(out) >= excess:
            break
        if name not in spare:
            out.append(name)
    return out


# -- the bake window --------------------------------------------------------------------
def bake_verdict(events: Iterable[Mapping[str, Any]], since: float, apps: Iterable[str],
                 instances: range | None = None) -> str | None:
    """Why the new release failed in the bake window (one line), or None: events (``corral events``
    rows) at or after SINCE of APPS (of those INSTANCES when a canary) that say so — a crash on a
    code bug, a liveness failure that replaces an instance, a crash loop, an instance errored.
    A crash classified as a user error or an external failure is not the release's fault."""
    names = set(apps)
    crashes: dict[str, int] = {}
    for event in sorted(events, key=lambda e: float(e.get("ts") or 0)):
        if float(event.get("ts") or 0) < since or event.get("app") not in names:
            continue
        index = event.get("instance")
        if instances is not None and index is not None and index not in instances:
            continue
        where = f"{event.get('app')}[{index}]" if index is not None else str(event.get("app"))
        kind, data, message = event.get("kind"), event.get("data") or {}, str(event.get("message") or "")
        if kind == "crash" and data.get("is_code_bug"):
            return f"{where} crashed on a code bug: {message}"
        if kind == "crash":
            crashes[where] = crashes.get(where, 0) + 1
            if crashes[where] >= RESTARTS:
                return f"{where} crashed {crashes[where]} times in the bake window (last: {message})"
        if kind == "liveness_failed" and data.get("replacing"):
            return f"{where} failed its liveness probe: {message}"
        if kind == "crash_loop":
            return f"{where} is in a {message}"
        if kind == "errored":
            return f"{where} is errored: {message}"
    return None


# -- the deploy's steps -----------------------------------------------------------------
class Phase(StrEnum):
    ROLL = "roll"  # current switched; the first instances (or all) are being replaced
    BAKE = "bake"  # watching the new instances
    ROLL_REST = "roll_rest"  # a canary passed: replacing the others
    ROLLBACK = "rollback"  # current switched back; the new instances are being replaced
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Switch:
    """Point ``current`` at RELEASE (atomically)."""

    release: str


@dataclass(frozen=True)
class Roll:
    """Replace the instances numbered START to STOP (None: to the last) of every deployed app."""

    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class Bake:
    """Watch instances START to STOP for SECONDS; report a failure as soon as one shows."""

    seconds: float
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class Revert:
    """Switch ``current`` back to RELEASE and replace the instances that run the new one."""

    release: str


@dataclass(frozen=True)
class Finish:
    pass


@dataclass(frozen=True)
class Fail:
    reason: str


Action = Switch | Roll | Bake | Revert | Finish | Fail


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Deploy:
    new: str
    previous: str | None
    instances: int  # the most instances any deployed app has
    canary: int = 0  # 0: every instance at once (one rolling reload)
    bake: float = 60.0
    phase: Phase = Phase.ROLL
    reason: str = ""


def start(new: str, previous_release: str | None, instances: int, canary: int = 0, bake: float = 60.0
          ) -> tuple[Deploy, list[Action]]:
    canary = canary if 0 < canary < instances else 0
    plan = Deploy(new, previous_release, instances, canary, bake)
    return plan, [Switch(new), Roll(0, canary or None)]


def step(plan: Deploy, outcome: Outcome) -> tuple[Deploy, list[Action]]:
    """The next actions once the current one ended with OUTCOME."""
    match plan.phase:
        case Phase.ROLL if outcome.ok:
            return replace(plan, phase=Phase.BAKE), [Bake(plan.bake, 0, plan.canary or None)]
        case Phase.BAKE if outcome.ok:
            if plan.canary:
                return replace(plan, phase=Phase.ROLL_REST), [Roll(plan.canary, None)]
            return replace(plan, phase=Phase.DONE), [Finish()]
        case Phase.ROLL_REST if outcome.ok:
            return replace(plan, phase=Phase.DONE), [Finish()]
        case Phase.ROLL | Phase.BAKE | Phase.ROLL_REST:
            if plan.previous is None:
                reason = f"{outcome.reason}; there is no previous release to go back to"
                return replace(plan, phase=Phase.FAILED, reason=reason), [Fail(reason)]
            reason = f"{outcome.reason}; rolled back to {plan.previous}"
            return replace(plan, phase=Phase.ROLLBACK, reason=reason), [Revert(plan.previous)]
        case Phase.ROLLBACK:
            reason = plan.reason if outcome.ok else f"{plan.reason}, but the rollback failed: {outcome.reason}"
            return replace(plan, phase=Phase.FAILED, reason=reason), [Fail(reason)]
    return plan, []
