"""Liveness decided: when to probe an instance, and when its failures ask for a replacement.

PURE: no IO, no clock reads (``now`` comes in, wall seconds).  The IO side
(:mod:`corral.health.liveservice`) probes on the core's timers and carries out what this returns.

Docker's rules, with Kubernetes' defaults where Docker has none that suit a process manager:

- failures count only when **consecutive**; one pass resets the count (Docker, Kubernetes);
- during ``start_period`` (from the instance's start) a failure does not count, and the first
  pass ends the start period early (Docker's ``--start-period``);
- only an ``online`` instance is probed; a rollout or reload of the app, or a replacement in
  flight, pauses it and forgets its count (a new instance starts from zero);
- reaching ``failures`` asks for **one** replacement; no other until that one is done (the pid
  changes or the replacement failed, and then the count starts again from zero).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Liveness", "Track", "Verdict"]


@dataclass
class Track:
    pid: int
    started_at: float  # wall time the instance started
    failures: int = 0  # consecutive, counted ones
    started: bool = False  # passed once: the start period is over
    replacing: bool = False


@dataclass(frozen=True)
class Verdict:
    """What one probe result means: ``ok``, ``grace`` (failed in the start period: not counted),
    ``failed`` (counted), ``replace`` (the crossing: replace it now), ``stale`` (not this pid)."""

    outcome: str
    failures: int = 0
    threshold: int = 0


class Liveness:
    def __init__(self) -> None:
        self.tracks: dict[tuple[str, int], Track] = {}

    def should_probe(self, app: str, instance: int, pid: int | None, status: str, started_at: float | None,
                     paused: bool) -> bool:
        """Whether to probe this instance now (and its track, made or reset as needed)."""
        key = (app, instance)
        if pid is None or status != "online" or paused:
            track = self.tracks.get(key)
            if track is not None and not (track.replacing and track.pid == pid):
                track.failures = 0
            return False
        track = self.tracks.get(key)
        if track is None or track.pid != pid:
            self.tracks[key] = track = Track(pid, started_at if started_at is not None else 0.0)
        return not track.replacing

    def observe(self, app: str, instance: int, pid: int, ok: bool, now: float, failures: int,
                start_period: float) -> Verdict:
        track = self.tracks.get((app, instance))
        if track is None or track.pid != pid or track.replacing:
            return Verdict("stale")
        if ok:
            track.failures = 0
            track.started = True
            return Verdict("ok", 0, failures)
        if not track.started and now - track.started_at < start_period:
            return Verdict("grace", 0, failures)
        track.failures += 1
        if track.failures >= failures:
            track.replacing = True
            return Verdict("replace", track.failures, failures)
        return Verdict("failed", track.failures, failures)

    def replaced(self, app: str, instance: int, pid: int) -> None:
        """The replacement of PID is over (done or failed): counting starts again from zero."""
        track = self.tracks.get((app, instance))
        if track is not None and track.pid == pid:
            track.replacing = False
            track.failures = 0

    def forget(self, keep: set[tuple[str, int]]) -> None:
        for key in set(self.tracks) - keep:
            del self.tracks[key]
