"""Settings as `corral start` flags, end to end with a real daemon; cross-field errors at the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import Corral, wait_until

TERM_IGNORING_APP = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
"""


def describe(corral: Corral, name: str) -> dict:
    return json.loads(corral.run("describe", name, "--json").stdout)


def test_start_app_py_with_flags(corral: Corral, workdir: Path) -> None:
    (workdir / "app.py").write_text(TERM_IGNORING_APP)
    corral.run("start", "app.py", "-i", "4", "--name", "api", "--kill-timeout", "3s", cwd=str(workdir))
    wait_until(lambda: [r["status"] for r in corral.ls()] == ["online"] * 4, what="4 instances of api online")
    assert sorted((r["name"], r["instance"]) for r in corral.ls()) == [("api", i) for i in range(4)]
    info = describe(corral, "api")
    config = info["config"]
    assert (config["name"], config["instances"], config["kill_timeout"]) == ("api", 4, 3.0)
    assert config["script"] == str(workdir / "app.py") and info["argv"][-1] == str(workdir / "app.py")
    started = time.monotonic()
    corral.run("stop", "api")  # the app ignores SIGTERM: stopped by SIGKILL after the 3 s budget
    elapsed = time.monotonic() - started
    assert 2.8 <= elapsed < 4.8, elapsed
    (workdir / "srv").mkdir()  # paths given on the command line are relative to where it runs
    corral.run("start", "app.py", "--name", "other", "--cwd", "srv", "-o", "out.log", cwd=str(workdir))
    config = describe(corral, "other")["config"]
    assert (config["cwd"], config["script"]) == (str(workdir / "srv"), str(workdir / "app.py"))
    assert config["out_file"] == str(workdir / "out.log")


def test_flags_override_the_apps_of_a_file(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text(
        '[[apps]]\nname = "a"\ncmd = ["sleep", "600"]\nkill_timeout = "9s"\n\n'
        '[[apps]]\nname = "b"\ncmd = ["sleep", "600"]\n')
    corral.run("start", "corral.toml", "--only", "a", "-k", "2s", "-i", "2", cwd=str(workdir))
    config = describe(corral, "a")["config"]
    assert (config["kill_timeout"], config["instances"]) == (2.0, 2)
    assert {r["name"] for r in corral.ls()} == {"a"}


def test_a_bad_flag_value_is_the_files_one_line_error(corral: Corral, workdir: Path) -> None:
    (workdir / "app.py").write_text(TERM_IGNORING_APP)
    result = corral.run("start", "app.py", "--kill-timeout", "5 parsecs", check=False, cwd=str(workdir))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == 'corral: command line: kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")\n'
    assert not Path(corral.home, "corral.sock").exists()  # nothing was started, not even the daemon


def test_settings_need_something_to_start(corral: Corral, workdir: Path) -> None:
    result = corral.run("start", "api", "-k", "3s", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (2, (
        "corral: --kill-timeout: settings are for a script, a command or a file; "
        "`corral start api` starts the app as it is (change its file, then start the file)\n"))
    result = corral.run("start", "--env", "production", "--", "sleep", "1", check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (2, "corral: --env is for an ecosystem file (corral.toml ...)\n")


def test_probe_without_listen_fails_validate_and_start(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text('[[apps]]\nname = "web"\ncmd = ["sleep", "600"]\nready = { tcp = true }\n')
    message = ('corral: corral.toml: apps[0] "web": ready: a tcp probe needs somewhere to connect: the app has no '
               'listen (add listen = "tcp://127.0.0.1:8000", or give the probe a port: { tcp = "127.0.0.1:8000" })\n')
    for command in ("validate", "start"):
        result = corral.run(command, "corral.toml", check=False, cwd=str(workdir))
        assert (result.returncode, result.stderr) == (2, message)
