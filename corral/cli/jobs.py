"""``corral jobs`` (every job: schedule, next run, last result, running now), ``corral jobs run
NAME`` (now, its output streamed, its exit status passed through), ``corral jobs history NAME
[--json]``, ``corral jobs pause|resume NAME``."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from corral.cli import render
from corral.cli.main import emit_json
from corral.cli.parser import UsageError
from corral.control.client import Client


def cmd_jobs(args: argparse.Namespace) -> int:
    action = args.action
    if action is None:
        result = Client(autostart=True).call("jobs", {})
        if args.json:
            emit_json(result["jobs"])
        else:
            print("\n".join(job_lines(result["jobs"])))
        return 0
    if not args.name:
        raise UsageError(f"jobs {action} NAME: which job? (`corral jobs` lists them)")
    if action == "run":
        return _run(args.name)
    if action == "history":
        result = Client().call("jobs_history", {"name": args.name, "limit": max(1, min(args.lines, 10000))})
        if args.json:
            emit_json(result["runs"])
        else:
            print("\n".join(history_lines(result["runs"])))
        return 0
    Client().call(f"jobs_{action}", {"name": args.name})
    print(f"{render.clean(args.name)}: {'paused' if action == 'pause' else 'resumed'}")
    return 0


def _run(name: str) -> int:
    def show(data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            stream = sys.stderr if data.get("stream") == "err" else sys.stdout
            stream.write(data["text"])
            stream.flush()

    end = Client(autostart=True).call("jobs_run", {"name": name}, on_progress=show)
    if end.get("outcome") == "error":
        print(f"corral: job {render.clean(name)} could not start: {render.clean(str(end.get('detail')))}",
              file=sys.stderr)
        return 1
    if end.get("signal"):
        try:
            return 128 + signal.Signals[end["signal"]].value
        except KeyError:
            return 1
    if end.get("outcome") == "timeout":
        print(f"corral: job {render.clean(name)} timed out", file=sys.stderr)
    return int(end.get("code") or 0) if end.get("code") is not None else 1


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _result(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    code = f"exit {last['code']}" if last.get("code") is not None else f"signal {last['signal']}" if last.get(
        "signal") else ""
    return f"{last['outcome']}" + (f" ({code})" if code else "") + f" {_when(last.get('ended'))}"


def job_lines(jobs: list[dict[str, Any]]) -> list[str]:
    if not jobs:
        return ["no jobs: add [[jobs]] to the ecosystem file (maintenance = false turned the built-in ones off)"]
    header = ["name", "schedule", "next", "last", "now"]
    body = []
    for job in jobs:
        running = job.get("running")
        now = f"running since {_when(running['since'])[11:]} (pid {running['pid']})" if running else (
            "paused" if job.get("paused") else "disabled" if not job.get("enabled") else "-")
        next_run = _when(job.get("retry_at") or job.get("next"))
        if job.get("retry_at"):
            next_run += " (retry)"
        body.append([render.clean(job["name"]), render.clean(job["schedule"]), next_run, _result(job.get("last")), now])
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body]
    return lines


def history_lines(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return ["no runs yet"]
    lines = []
    for run in runs:
        took = f" in {run['ended'] - run['started']:.1f}s" if run.get("ended") and run["outcome"] != "skipped" else ""
        retry = f" retry {run['attempt']}" if run.get("attempt") else ""
        code = f" exit {run['code']}" if run.get("code") is not None else f" signal {run['signal']}" if run.get(
            "signal") else ""
        note = f": {render.clean(str(run['note']))}" if run.get("note") else ""
        lines.append(f"{_when(run['started'])}  {run['trigger']}{retry}  {run['outcome']}{code}{took}{note}")
        if run.get("tail") and run["outcome"] not in ("ok", "skipped"):
            lines += [f"    {render.clean(line)}" for line in str(run["tail"]).splitlines()[-5:]]
    return lines
