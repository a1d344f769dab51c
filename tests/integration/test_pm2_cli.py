"""PM2's command-line habits against a real daemon and real processes: several targets, a file as
a target, startOrRestart/startOrReload, jlist/prettylist, ps, reset, env, desc, ``start npm -- start``,
"did you mean", and the silent surprises (a derived name replacing another command, resurrect)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Corral, app, pid_alive, wait_until

ECO = """
[[apps]]
name = "api"
cmd = ["sleep", "600"]
kill_timeout = "2s"

[[apps]]
name = "worker"
cmd = ["sleep", "601"]
kill_timeout = "2s"
"""


def two_apps(corral: Corral) -> dict[str, int]:
    corral.run("start", "--name", "api", "-k", "2s", "--", "sleep", "600")
    corral.run("start", "--name", "worker", "-k", "2s", "--", "sleep", "601")
    return {r["name"]: r["pid"] for r in corral.ls()}


def statuses(corral: Corral) -> dict[str, str]:
    return {r["name"]: r["status"] for r in corral.ls()}


# -- verbs -----------------------------------------------------------------------------------
def test_a_mistyped_verb_names_the_closest_one(corral: Corral) -> None:
    result = corral.run("strat", "app.py", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", 'corral: unknown command "strat" (did you mean "start"?)\n')
    result = corral.run("resurect", check=False)
    assert (result.returncode, result.stderr) == (2, 'corral: unknown command "resurect" (did you mean "resurrect"?)\n')
    result = corral.run("frobnicate", check=False)
    assert (result.returncode, result.stderr) == (2, 'corral: unknown command "frobnicate" (see `corral --help`)\n')
    assert corral.daemon_pid() is None  # a mistake starts nothing


def test_stop_and_restart_several_targets_by_id_and_name(corral: Corral) -> None:
    pids = two_apps(corral)
    ids = {r["name"]: r["id"] for r in corral.ls()}
    result = corral.run("restart", "api", "worker")
    rows = {r["name"]: r for r in corral.ls()}
    assert {n: r["restarts"] for n, r in rows.items()} == {"api": 1, "worker": 1}
    assert all(rows[n]["pid"] != pids[n] and pid_alive(rows[n]["pid"]) for n in pids)
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["api", "worker"]
    corral.run("stop", str(ids["api"]), str(ids["worker"]))
    assert statuses(corral) == {"api": "stopped", "worker": "stopped"}


def test_several_targets_with_one_unknown_do_nothing(corral: Corral) -> None:
    pids = two_apps(corral)
    result = corral.run("stop", "api", "nope", "worker", check=False)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == 'corral: no app, id or namespace named "nope" (apps: api, worker): nothing stopped\n'
    assert statuses(corral) == {"api": "online", "worker": "online"}
    assert all(pid_alive(pid) for pid in pids.values())


def test_delete_several_and_reset_counters(corral: Corral) -> None:
    corral.run("start", app("crash.py"), "--name", "crashy", "--restart-delay", "1500", "--", "1", "50")
    wait_until(lambda: corral.row("crashy")["restarts"] >= 2, 20, "crashy to restart twice")
    result = corral.run("reset", "crashy", "--json")
    assert [r["restarts"] for r in json.loads(result.stdout)] == [0]
    assert corral.row("crashy")["restarts"] <= 1  # counting again from 0 (it keeps crashing)
    assert any(e["kind"] == "reset" and e["message"] == "restart counters set to 0" for e in corral.events("crashy"))
    corral.run("start", "--name", "other", "--", "sleep", "600")
    result = corral.run("delete", "crashy", "other")
    assert result.stdout == "deleted: crashy, other\n" and corral.ls() == []


def test_a_file_as_target(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text(ECO)
    corral.run("start", "corral.toml", "--only", "api", cwd=str(workdir))
    api = corral.row("api")["pid"]
    corral.run("restart", "corral.toml", cwd=str(workdir))  # PM2: the new app starts, the other restarts
    rows = {r["name"]: r for r in corral.ls()}
    assert (rows["api"]["restarts"], rows["worker"]["restarts"]) == (1, 0) and rows["api"]["pid"] != api
    assert {r["status"] for r in rows.values()} == {"online"}
    corral.run("stop", "corral.toml", cwd=str(workdir))
    assert statuses(corral) == {"api": "stopped", "worker": "stopped"}
    result = corral.run("delete", "corral.toml", cwd=str(workdir))
    assert result.stdout == "deleted: api, worker\n"
    result = corral.run("stop", "corral.toml", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (
        2, "corral: corral.toml: none of its apps (api, worker) is known to the daemon\n")


def test_start_or_restart_and_start_or_reload(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text(ECO)
    corral.run("startOrRestart", "corral.toml", cwd=str(workdir))
    assert statuses(corral) == {"api": "online", "worker": "online"}
    first = {r["name"]: r["pid"] for r in corral.ls()}
    corral.run("startOrRestart", "corral.toml", cwd=str(workdir))  # unchanged apps restart all the same
    second = {r["name"]: r for r in corral.ls()}
    assert all(second[n]["pid"] != first[n] and second[n]["restarts"] == 1 for n in first)
    result = corral.run("startOrReload", "corral.toml", "--only", "api", cwd=str(workdir))
    assert result.stdout.splitlines()[0].startswith(f"reloaded api[0]: pid {second['api']['pid']} -> ")
    assert corral.row("api")["pid"] != second["api"]["pid"] and corral.row("worker")["pid"] == second["worker"]["pid"]
    result = corral.run("startOrRestart", "app.py", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (
        2, "corral: app.py: not an ecosystem file (corral.toml, ecosystem.config.js, app.json ...)\n")


def test_start_a_program_on_path_with_its_args(corral: Corral, workdir: Path) -> None:
    corral.run("start", "sleep", "--", "600", cwd=str(workdir))  # PM2: pm2 start npm -- start
    info = json.loads(corral.run("describe", "sleep", "--json").stdout)
    assert info["config"]["cmd"] == ["sleep", "600"] and corral.row("sleep")["status"] == "online"
    result = corral.run("start", "no-such-program-x", "--", "1", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (2, "corral: no-such-program-x: no such file nor program on PATH\n")
    result = corral.run("start", "true", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (2, (
        'corral: no app, id or namespace named "true" (apps: sleep); to run the program true: corral start true --\n'))


def test_jlist_prettylist_ps_and_desc(corral: Corral) -> None:
    two_apps(corral)
    jlist = corral.run("jlist").stdout
    assert jlist.count("\n") == 1 and [r["name"] for r in json.loads(jlist)] == ["api", "worker"]
    pretty = corral.run("prettylist").stdout
    assert pretty.startswith("[\n  {\n") and [r["name"] for r in json.loads(pretty)] == ["api", "worker"]
    for verb in ("ps", "l"):
        lines = corral.run(verb).stdout.splitlines()
        assert lines[0].split()[:3] == ["id", "name", "inst"] and [line.split()[1] for line in lines[1:]] == [
            "api", "worker"]
    assert corral.run("desc", "api").stdout == corral.run("describe", "api").stdout != ""


def test_env_shows_the_instances_environment_with_secrets_masked(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text(
        '[[apps]]\nname = "api"\ncmd = ["sleep", "600"]\ninstances = 2\nincrement_var = "PORT"\n'
        'env = { PORT = "8000", GREETING = "hi", API_TOKEN = "s3cret-value" }\n')
    corral.run("start", "corral.toml", cwd=str(workdir))
    app_id = corral.row("api")["id"]
    out = corral.run("env", str(app_id)).stdout
    assert "s3cret-value" not in out
    lines = out.splitlines()
    assert lines[0] == "api[0]:" and "  API_TOKEN=********" in lines and "  GREETING=hi" in lines
    second = lines.index("api[1]:")
    assert "  PORT=8000" in lines[:second] and "  PORT=8001" in lines[second:]
    corral.run("stop", "api")
    env = json.loads(corral.run("env", "api", "--json").stdout)
    assert [(e["instance"], e["running"], e["env"]["PORT"]) for e in env] == [(0, False, "8000"), (1, False, "8001")]


# -- flags -----------------------------------------------------------------------------------
def test_pm2_flags_take_effect(corral: Corral, workdir: Path) -> None:
    result = corral.run("start", "--watch", "--max-memory-restart", "300M", "--cron-restart", "0 3 * * *",
                        "-l", "all.log", "--name", "w", "--", "sleep", "600", cwd=str(workdir))
    assert result.stderr == ""
    assert corral.row("w")["status"] == "online"
    described = json.loads(corral.run("describe", "w", "--json").stdout)
    config = described["config"]  # these took effect
    assert (config["watch"], config["log_file"]) == ([str(workdir)], str(workdir / "all.log"))
    assert config["max_memory_restart"] == 300 * 1024**2  # PM2's key, implemented
    assert config["cron_restart"] == "0 3 * * *"  # implemented: a graceful reload at 03:00 (corral jobs)
    (workdir / "corral.toml").write_text(ECO)
    result = corral.run("start", "corral.toml", "--only", "api", "-c", "0 3 * * *", cwd=str(workdir))
    assert result.stderr == ""
    assert json.loads(corral.run("describe", "api", "--json").stdout)["config"]["cron_restart"] == "0 3 * * *"


def test_no_autorestart_and_instances_max(corral: Corral, workdir: Path) -> None:
    from corral.config.convert import cpu_count

    corral.run("start", app("crash.py"), "--name", "once", "--no-autorestart", "--", "3", "0")
    row = corral.wait_status("once", "errored")  # exit status 3, never restarted
    assert (row["restarts"], row["pid"]) == (0, None)
    corral.run("start", "--name", "all-cpus", "-i", "max", "--", "sleep", "600")
    assert len([r for r in corral.ls() if r["name"] == "all-cpus"]) == cpu_count()


# -- silent surprises --------------------------------------------------------------------------
def test_a_derived_name_never_replaces_another_command(corral: Corral) -> None:
    corral.run("start", "--", "sleep", "600")
    first = corral.row("sleep")["pid"]
    result = corral.run("start", "--", "sleep", "601", check=False)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ('corral: "sleep" is already the name of an app that runs another command (sleep 600): '
                             "give this one a name of its own with --name NAME (or `corral delete sleep` first)\n")
    assert corral.row("sleep")["pid"] == first and pid_alive(first)
    corral.run("start", "--", "sleep", "600")  # the same command: the same app, left running
    assert corral.row("sleep")["pid"] == first
    corral.run("start", "--name", "sleep2", "--", "sleep", "601")
    assert statuses(corral) == {"sleep": "online", "sleep2": "online"}
    corral.run("start", "--name", "sleep", "--", "sleep", "602")  # named: replacing it is what was asked
    assert json.loads(corral.run("describe", "sleep", "--json").stdout)["config"]["cmd"] == ["sleep", "602"]


def test_resurrect_says_what_is_already_here(corral: Corral) -> None:
    two_apps(corral)
    corral.run("save")
    result = corral.run("resurrect")
    assert result.stdout == "nothing to resurrect: every saved app is already here (api, worker)\n"
    corral.run("delete", "worker")
    result = corral.run("resurrect")
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:-1]] == ["worker"]
    assert lines[-1] == "already here, left as they are: api"
    assert statuses(corral) == {"api": "online", "worker": "online"}


def test_jlist_and_ps_take_the_fast_path(corral: Corral) -> None:
    """No argparse, no json package: what ``ls --json`` imports, and nothing more."""
    import subprocess
    import sys

    two_apps(corral)

    def imported(*argv: str) -> set[str]:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "corral", *argv], env=corral.env,
                              capture_output=True, text=True, timeout=30, check=True)
        return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}

    fast = imported("ls", "--json")
    assert "argparse" not in fast and "json" not in fast
    assert imported("jlist") == fast
    assert "argparse" not in imported("ls") and imported("ps") == imported("ls")  # the table: _json's scanner and the renderer, no argparse
