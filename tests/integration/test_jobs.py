"""Jobs on a real daemon: `[[jobs]]` in a file, `corral jobs run` (output streamed, exit status
passed through), the history, overlap, catch-up after downtime, timeouts and retries, pause,
cron_restart and the built-in maintenance jobs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import Corral, wait_until

PY = sys.executable


def write(workdir: Path, text: str, apps: bool = True) -> str:
    path = workdir / "corral.toml"
    head = '[[apps]]\nname = "api"\ncmd = ["sleep", "600"]\nenv = { SHARED = "from-api" }\n\n' if apps else ""
    path.write_text(head + text)
    return str(path)


def history(corral: Corral, name: str, lines: int = 500) -> list[dict[str, Any]]:
    return json.loads(corral.run("jobs", "history", name, "--json", "--lines", str(lines)).stdout)


def jobs(corral: Corral) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in json.loads(corral.run("jobs", "--json").stdout)}


def test_jobs_run_streams_output_passes_the_exit_status_and_keeps_history(corral: Corral, workdir: Path) -> None:
    script = workdir / "report.py"
    script.write_text("import os, sys\nprint('shared', os.environ['SHARED'], os.environ['FROM_SHELL'])\n"
                      "print('token=hunter2hunter2', "
                      "file=sys.stderr)\nsys.exit(3)\n")
    path = write(workdir, f'[[jobs]]\nname = "report"\nscript = "{script}"\ninterval = "1h"\nenv_from = "api"\n'
                          'redact_patterns = ["hunter2+"]\n')
    corral.run("start", path, env={"FROM_SHELL": "yes"})  # the shell of `start`: the jobs' environment too
    result = corral.run("jobs", "run", "report", check=False)
    assert result.returncode == 3
    assert result.stdout == "shared from-api yes\n"
    assert "hunter2" not in result.stderr and result.stderr.startswith("token=")
    runs = history(corral, "report")
    assert [(r["trigger"], r["outcome"], r["code"]) for r in runs] == [("manual", "failed", 3)]
    assert runs[0]["tail"].splitlines()[0] == "shared from-api yes"
    assert "hunter2" not in runs[0]["tail"]
    out = corral.log("report")
    assert out.endswith(" shared from-api yes\n") and out[:4].isdigit()  # timestamped, as an app's lines
    kinds = [(e["app"], e["kind"]) for e in corral.events()]
    assert ("report", "job_start") in kinds and ("report", "job_failed") in kinds
    alerts = json.loads(corral.run("alerts", "--json").stdout)["alerts"]
    assert [a["kind"] for a in alerts] == ["job_failed"]
    assert alerts[0]["title"].startswith("job report failed (exit 3)")
    listed = jobs(corral)["report"]
    assert listed["schedule"] == "every 1h" and listed["last"]["outcome"] == "failed"
    assert corral.run("jobs", "run", "nope", check=False).stderr.startswith('corral: no job named "nope" (jobs: ')
    pinged = corral.run("ping", "--json").stdout
    assert "from-api" not in pinged and json.loads(pinged)["settings"]["jobs"] == ["report"]  # no env shown


def test_overlap_skip_never_runs_twice_and_history_names_the_skipped_triggers(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "slow"\ncmd = ["sleep", "3"]\ninterval = "1s"\n', apps=False)
    corral.run("start", path)

    def enough() -> list[dict[str, Any]] | None:
        runs = history(corral, "slow")
        return runs if sum(r["outcome"] == "ok" for r in runs) >= 2 else None

    runs = wait_until(enough, 30, "two runs of the slow job")
    ran = [(r["started"], r["ended"]) for r in runs if r["outcome"] in ("ok", "running")]
    for (_, end), (start, _) in zip(ran, ran[1:]):
        assert end is not None and start >= end  # the next run starts after the previous one ended
    skipped = [r for r in runs if r["outcome"] == "skipped"]
    assert len(skipped) >= 2 and {r["note"] for r in skipped} == {"still running (overlap = skip)"}
    assert {r["trigger"] for r in skipped} == {"interval"}


def test_catch_up_runs_once_at_start_after_downtime_not_once_per_missed_time(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "tick"\ncmd = ["true"]\ncron = "* * * * * *"\ncatch_up = true\n',
                 apps=False)
    corral.run("start", path)
    wait_until(lambda: any(r["trigger"] == "cron" for r in history(corral, "tick")), 15, "a cron run")
    corral.expect_daemon_restart()
    corral.run("kill")
    stopped = time.time()
    wait_until(lambda: time.time() > stopped + 3.5, 10, "three scheduled seconds to pass")  # the downtime itself
    corral.run("ping")  # a new daemon: the stored jobs come back
    wait_until(lambda: any(r["trigger"] == "catch_up" for r in history(corral, "tick")), 15, "the catch-up run")
    runs = history(corral, "tick")
    assert sum(r["trigger"] == "catch_up" for r in runs) == 1
    after = [r for r in runs if r["started"] > stopped]
    assert after[0]["trigger"] == "catch_up"


def test_a_timeout_stops_the_run_and_retries_back_off_then_the_alert(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "stuck"\ncmd = ["sleep", "60"]\nat = "2099-01-01T00:00:00"\n'
                          'timeout = "300ms"\nretries = 1\nretry_delay = "200ms"\nkill_timeout = "1s"\n', apps=False)
    corral.run("start", path)
    result = corral.run("jobs", "run", "stuck", check=False)
    assert result.returncode == 128 + 15  # ended by SIGTERM (the stop signal) at its timeout
    assert result.stderr == ""
    runs = wait_until(lambda: (r := history(corral, "stuck")) and len(r) == 2 and r[1]["ended"] and r, 15,
                      "the retry to end")
    assert [(r["trigger"], r["attempt"], r["outcome"], r["signal"]) for r in runs] == [
        ("manual", 0, "timeout", "SIGTERM"), ("retry", 1, "timeout", "SIGTERM")]
    assert runs[1]["started"] - runs[0]["ended"] >= 0.2
    failed = [e for e in corral.events("stuck") if e["kind"] == "job_failed"]  # a job's name is a target
    assert [e["data"]["final"] for e in failed] == [False, True]
    assert "retry 1 in 0.2s" in failed[0]["message"]
    alerts = wait_until(lambda: json.loads(corral.run("alerts", "--json").stdout)["alerts"], 10, "the alert")
    assert len(alerts) == 1 and alerts[0]["title"].startswith("job stuck timed out")


def test_pause_skips_triggers_until_resumed(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "beat"\ncmd = ["true"]\ninterval = "1s"\n', apps=False)
    corral.run("start", path)
    assert corral.run("jobs", "pause", "beat").stdout == "beat: paused\n"
    paused_at = time.time()
    assert jobs(corral)["beat"]["paused"] is True
    wait_until(lambda: any(r["note"] == "paused" for r in history(corral, "beat")), 10, "a paused trigger")
    assert not [r for r in history(corral, "beat") if r["outcome"] == "ok" and r["started"] > paused_at + 0.1]
    corral.run("jobs", "resume", "beat")
    resumed = time.time()
    wait_until(lambda: any(r["outcome"] == "ok" and r["started"] > resumed for r in history(corral, "beat")), 10,
               "a run after resume")


def test_bad_jobs_are_one_line_each_naming_the_job_and_field(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "a"\ncmd = ["true"]\ncron = "61 * * * *"\n\n'
                          '[[jobs]]\nname = "b"\ncmd = ["true"]\ncron = "* * * * *"\ninterval = "90s"\n\n'
                          '[[jobs]]\nname = "c"\ncmd = ["true"]\nat = "2020-01-01T00:00:00"\n\n'
                          '[[jobs]]\nname = "d"\ncmd = ["true"]\non_start = true\nenv_from = "apx"\n')
    result = corral.run("validate", path, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f'corral: {path}: jobs[0] "a": cron: "61 * * * *" is not a valid cron expression (bad minute)',
        f'corral: {path}: jobs[1] "b": interval: a job has one trigger, and this one already has cron (make two jobs)',
        f'corral: {path}: jobs[2] "c": at: "2020-01-01T00:00:00" is in the past (an at job runs once, at a time to come)',
        f'corral: {path}: jobs[3] "d": env_from: "apx" is not an app of this file (apps: "api")',
    ]


def test_cron_restart_reloads_the_app_on_schedule(corral: Corral, workdir: Path) -> None:
    corral.run("start", "--name", "cr", "--cron-restart", "*/2 * * * * *", "--", "sleep", "600")
    first = corral.wait_status("cr", "online")["pid"]
    wait_until(lambda: (row := corral.row("cr"))["status"] == "online" and row["pid"] != first, 20,
               "a new pid after the cron restart")
    listed = jobs(corral)["restart:cr"]
    assert listed["schedule"] == "cron */2 * * * * *"
    assert any(e["kind"] == "reload" for e in corral.events("cr"))


def test_maintenance_jobs_are_listed_by_default_and_off_with_maintenance_false(corral: Corral, workdir: Path) -> None:
    path = write(workdir, '[[jobs]]\nname = "x"\ncmd = ["true"]\ninterval = "1h"\n')
    corral.run("start", path)
    assert sorted(jobs(corral)) == ["corral:cleanup-tmp", "corral:disk", "corral:prune", "x"]
    assert corral.run("jobs", "run", "corral:cleanup-tmp").stdout.endswith("\n")
    assert history(corral, "corral:cleanup-tmp")[0]["outcome"] == "ok"
    Path(path).write_text('maintenance = false\n\n' + Path(path).read_text())
    corral.run("start", path)
    assert sorted(jobs(corral)) == ["x"]
