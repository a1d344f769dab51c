"""Secrets at rest and on screen, against a real daemon: the shell's tokens are not saved, URL
passwords are masked and redacted, every file in CORRAL_HOME is 0600, control characters from an
app never reach the terminal raw, and a shared CORRAL_HOME is refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import Corral, wait_until

SHELL_SECRETS = {"GITHUB_TOKEN": "ghp_shellSECRET1", "DB_PASSWORD": "shellSECRET2",
                 "DATABASE_URL": "postgres://u:shellSECRET3@h/db"}
INHERITED = {"AWS_SECRET_ACCESS_KEY": "awsKEPT4"}
CONFIG_URL = "postgres://app:cfgSECRET5@db/x"
ARG_URL = "mysql://root:argSECRET6@h/x"
LOG_URL = "redis://:logSECRET7@cache:6379"

APP = """
import json, os, sys, time
with open(sys.argv[1], "w") as f:
    json.dump(dict(os.environ), f)
print("connecting to " + sys.argv[3], flush=True)
time.sleep(600)
"""


def files_under(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*")]


def test_the_shells_secrets_are_neither_saved_nor_shown(corral: Corral, workdir: Path) -> None:
    seen = workdir / "env.json"
    (workdir / "app.py").write_text(APP)
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "s"
script = "app.py"
args = ["{seen}", "--db={ARG_URL}", "{LOG_URL}"]
env = {{ DSN = "{CONFIG_URL}", LEVEL = "info" }}
env_inherit = ["AWS_*"]
""")
    started = corral.run("start", str(workdir / "corral.toml"),
                         env={**SHELL_SECRETS, **INHERITED, "PLAIN_SETTING": "visible"})
    assert ("corral: not passed on from this shell (secrets; list them in env_inherit to pass them): "
            "DATABASE_URL, DB_PASSWORD, GITHUB_TOKEN") in started.stderr
    env = json.loads(wait_until(lambda: seen.exists() and seen.read_text(), what="the app's environment"))
    assert env["PLAIN_SETTING"] == "visible" and env["AWS_SECRET_ACCESS_KEY"] == "awsKEPT4"
    assert env["DSN"] == CONFIG_URL and not set(SHELL_SECRETS) & set(env)
    wait_until(lambda: "connecting" in corral.log("s"), what="the app's log line")
    corral.run("save")
    corral.run("restart", "s", "--update-env", env={**SHELL_SECRETS, **INHERITED})

    described = corral.run("describe", "s").stdout + corral.run("describe", "s", "--json").stdout
    assert "postgres://app:********@db/x" in described and "mysql://root:********@h/x" in described
    shown = described + corral.run("events", "s").stdout + corral.run("logs", "s").stdout
    logs = "".join(p.read_text(errors="replace") for p in Path(corral.home, "logs").iterdir())
    assert "connecting to redis://:REDACTED@cache:6379" in logs
    at_rest = "".join(p.read_bytes().decode("utf-8", "replace") for p in files_under(corral.home) if p.is_file())
    assert [s for s in SHELL_SECRETS.values() if s in at_rest + shown] == []  # nowhere, ever
    assert [s for s in ("cfgSECRET5", "argSECRET6", "logSECRET7") if s in shown + logs] == []
    # the app's own settings (env, args) are kept in the 0600 state to restart it; never shown


def test_every_file_in_corral_home_is_0600_and_every_folder_0700(corral: Corral, workdir: Path) -> None:
    old = os.umask(0o022)  # the CLI's usual umask: modes must not depend on it
    try:
        (workdir / "corral.toml").write_text("""
[[apps]]
name = "m"
cmd = ["sh", "-c", "echo out; echo err >&2; sleep 600"]
log_max_size = "1KB"
""")
        corral.run("start", str(workdir / "corral.toml"))
        wait_until(lambda: corral.log("m") and corral.log("m", "err"), what="both log files")
        corral.run("save")
    finally:
        os.umask(old)
    modes = {str(p.relative_to(corral.home)): stat.S_IMODE(p.lstat().st_mode) for p in files_under(corral.home)}
    folders = {name for name in modes if (Path(corral.home) / name).is_dir()}
    assert {"state.db", "dump.json", "daemon.log", "daemon.lock", "corral.sock", "notify.sock",
            "logs/m-out.log", "logs/m-error.log"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if name not in folders and mode != 0o600} == {}
    assert {name: mode for name, mode in modes.items() if name in folders and mode != 0o700} == {}


ESCAPING_CRASH = """
import sys
print("about to fail", flush=True)
raise RuntimeError("boom \\x1b]0;pwned\\x07 \\x1b[2J\\x1b[1;1H gone")
"""


def test_control_characters_in_a_crash_never_reach_the_terminal_raw(corral: Corral, workdir: Path) -> None:
    (workdir / "esc.py").write_text(ESCAPING_CRASH)
    corral.run("start", str(workdir / "esc.py"), "--no-autorestart")
    wait_until(lambda: any(e["kind"] == "crash" for e in corral.events("esc")), what="the crash")
    events = corral.run("events", "esc").stdout
    described = corral.run("describe", "esc").stdout
    labelled = corral.run("logs", "esc", "--err").stdout
    for text in (events, described, labelled):
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b]0;pwned\\x07" in text
    raw = corral.run("logs", "esc", "--err", "--raw").stdout  # --raw: the lines as written
    assert "\x1b]0;pwned\x07" in raw


def test_a_shared_1777_corral_home_is_refused_with_one_line(corral: Corral, workdir: Path) -> None:
    os.chmod(corral.home, 0o1777)
    expected = (f"corral: CORRAL_HOME {corral.home} is writable by other users (mode 1777): refusing to use it "
                f"(use a folder only you can write, such as ~/.corral)\n")
    for args in (("start", "--", "sleep", "600"), ("ls",), ("ping",)):
        result = corral.run(*args, check=False)
        assert (result.returncode, result.stderr) == (2, expected), args
    assert stat.S_IMODE(os.stat(corral.home).st_mode) == 0o1777
    assert os.listdir(corral.home) == []


def test_the_daemon_filters_the_environment_itself(corral: Corral, workdir: Path) -> None:
    """A client that sends its whole environment (an old CLI, the raw socket) gets it filtered per
    app by the daemon: only what the app's env_inherit names is kept."""
    from corral.config.load import from_command_line
    from corral.control.client import Client
    from corral.paths import Home

    corral.run("ping")
    spec = from_command_line(None, ["sleep", "600"], cwd=str(workdir),
                             extra={"name": "raw", "env_inherit": ["KEEP_*"]})
    base_env = {"PATH": os.environ["PATH"], "GITHUB_TOKEN": "ghp_rawSECRET", "KEEP_TOKEN": "keptTOKEN",
                "DATABASE_URL": "postgres://u:rawURL@h/db"}
    client = Client(Home(corral.home))
    try:
        client.call("start", {"apps": [spec], "base_env": base_env})
        client.call("save")
    finally:
        client.close()
    corral.wait_status("raw", "online")
    at_rest = "".join(p.read_bytes().decode("utf-8", "replace") for p in files_under(corral.home) if p.is_file())
    assert "ghp_rawSECRET" not in at_rest and "rawURL" not in at_rest and "keptTOKEN" in at_rest
