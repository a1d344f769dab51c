"""The built-in maintenance jobs, on by default (``maintenance = false`` turns them off), shown by
``corral jobs`` as ``corral:cleanup-tmp`` (hourly), ``corral:prune`` (hourly) and ``corral:disk``
(every 5 minutes).  Each is a job like any other (history, log files, events, a failed run alerts);
its work runs in a subprocess (:mod:`corral.jobs.cleanup`), so the daemon holds none of it.

:func:`jobs` declares them; their ``prepare`` (run just before each spawn) says what to do, in
``CORRAL_MAINTENANCE``: the daemon's home, the temp directory and patterns, the disk threshold, and
the log files of every app and job with their retention (for the prune).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, Mapping

from corral.jobs import EVERY

if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore

CLEANUP, PRUNE, DISK = "corral:cleanup-tmp", "corral:prune", "corral:disk"
TASK = {CLEANUP: "cleanup-tmp", PRUNE: "prune", DISK: "disk"}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tmp_dir() -> str:
    """The system temp directory as ``tempfile.gettempdir`` finds it (TMPDIR, TEMP, TMP, /tmp), without
    loading ``tempfile`` (shutil, random, the compressors) into the daemon."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value and os.path.isdir(value):
            return os.path.abspath(value)
    return "/tmp"


def _conf(core: DaemonCore) -> dict[str, Any]:
    settings = core.settings()
    home = core.state_dir or os.environ.get("CORRAL_HOME") or os.path.expanduser("~/.corral")
    return {"home": home, "tmp": _tmp_dir(), "patterns": settings.get("maintenance_tmp_patterns"),
            "threshold": (settings.get("thresholds") or {}).get("disk", 75.0)}


async def _log_files(core: DaemonCore) -> list[dict[str, Any]]:
    """Every app's and job's log files with their retention (log_retain, log_max_age)."""
    files = [{"path": entry["path"], "retain": entry.get("log_retain"), "max_age": entry.get("log_max_age")}
             for entry in await core.call("log_paths")]
    service = core.features.get("jobs")
    logs = os.path.join(str(_conf(core)["home"]), "logs")
    for job in (service.jobs.values() if service is not None else ()):
        spec = job["spec"]
        if spec is None:  # a cron_restart: no files of its own
            continue
        for stream, key in (("out", "out_file"), ("error", "error_file")):
            path = spec.get(key) or os.path.join(logs, f"{spec['name']}-{stream}.log")
            files.append({"path": path, "retain": spec.get("log_retain"), "max_age": spec.get("log_max_age")})
    return files


async def prepare_cleanup(core: DaemonCore) -> dict[str, str]:
    return {"CORRAL_MAINTENANCE": json.dumps(_conf(core))}


async def prepare_prune(core: DaemonCore) -> dict[str, str]:
    service = core.features.get("jobs")
    if service is not None:  # the history of jobs no longer declared
        service.history.forget_others(list(service.jobs))
    return {"CORRAL_MAINTENANCE": json.dumps({**_conf(core), "logs": await _log_files(core)})}


PREPARE = {CLEANUP: prepare_cleanup, PRUNE: prepare_prune, DISK: prepare_prune}


def _spec(name: str, home: str) -> dict[str, Any]:
    from corral.config.spec import AppSpec

    return AppSpec(name=name.replace(":", "-"), cmd=[sys.executable, "-m", "corral.jobs.cleanup", TASK[name]],
                   cwd=home, env={"PYTHONPATH": _PACKAGE_ROOT}, log_retain=3).to_dict()


async def run_plain(core: DaemonCore, name: str) -> None:
    """One maintenance run without the jobs service (``corral.jobs.Maintenance``): the same
    subprocess, log files and events (a failed run alerts), no history row."""
    import asyncio
    import logging

    from corral.events import JobFinished, JobStarted

    tail: list[str] = []
    ended: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()

    def output(stream: str, chunk: bytes) -> None:
        tail.extend(chunk.decode("utf-8", errors="replace").splitlines())
        del tail[:-5]

    def exited(code: int | None, sig: str | None) -> None:
        if not ended.done():
            ended.set_result((code, sig))

    started = core.clock.now()
    try:
        env = await PREPARE[name](core)
        shot = core.run_once(_spec(name, str(_conf(core)["home"])), {}, output, exited,
                             {**env, "CORRAL_JOB": name, "CORRAL_JOB_TRIGGER": "interval"})
    except Exception as exc:  # noqa: BLE001 - said once, the next run tries again
        logging.getLogger("corral.daemon").warning("%s: not run: %s", name, exc)
        return
    core.publish(JobStarted(app=name, trigger="interval", pid=shot.pid))
    timer = core.timers.after(TIMEOUT, shot.stop)
    code, sig = await ended
    timer.cancel()
    outcome = "ok" if code == 0 and sig is None else "failed"
    core.publish(JobFinished(app=name, trigger="interval", outcome=outcome, code=code, signal=sig,
                             duration=round(core.clock.now() - started, 3), tail=tail))


TIMEOUT = 600.0


def jobs(core: DaemonCore, settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The maintenance jobs, as checked job dicts (``corral.config.jobs``) with a ``prepare``."""
    from corral.config.jobs import DEFAULTS

    home = str(_conf(core)["home"])
    return {name: {**DEFAULTS, "name": name, "interval": EVERY[name], "timeout": TIMEOUT, "history": 20,
                   "spec": _spec(name, home), "prepare": PREPARE[name]}
            for name in (CLEANUP, PRUNE, DISK)}
