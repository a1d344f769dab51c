"""``corral start`` flags, generated from FIELDS: each one parsed into the spec, through the same
converters (and messages) as a file; as overrides of a file's apps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from corral.cli.parser import build_parser
from corral.config.errors import ConfigError
from corral.config.flags import START_FLAGS, flag_of, settings_from_flags
from corral.config.load import from_command_line, load_file


def start(tmp_path: Path, *argv: str, command: list[str] | None = None) -> dict[str, Any]:
    """The spec ``corral start [app.py] ARGV [-- COMMAND]`` sends, run in ``tmp_path``."""
    args = build_parser().parse_args(["start", *argv])
    settings = settings_from_flags(args, str(tmp_path))
    target = None if command else args.target
    return from_command_line(target, command or [], cwd=str(tmp_path), extra=settings)


def T(tmp_path: Path, value: str) -> str:
    return value.replace("T/", str(tmp_path) + "/")


CASES: list[tuple[list[str], str, Any]] = [
    (["app.py", "-n", "api"], "name", "api"),
    (["app.py", "--name", "api"], "name", "api"),
    (["app.py", "--namespace", "web"], "namespace", "web"),
    (["app.py", "--interpreter", "python3.12"], "interpreter", "python3.12"),
    (["app.py", "--interpreter", "py/bin/python"], "interpreter", "T/py/bin/python"),
    (["app.py", "--interpreter-args=-X dev"], "interpreter_args", ["-X", "dev"]),
    (["app.py", "--node-args=--max-old-space-size=64"], "interpreter_args", ["--max-old-space-size=64"]),
    (["app.py", "--venv", ".venv"], "venv", "T/.venv"),
    (["app.py", "--cwd", "srv"], "cwd", "T/srv"),
    (["app.py", "-i", "4"], "instances", 4),
    (["app.py", "--instances", "2"], "instances", 2),
    (["app.py", "--env-file", ".env"], "env_file", "T/.env"),
    (["app.py", "--env-inherit", "AWS_*", "--env-inherit", "GITHUB_TOKEN"], "env_inherit", ["AWS_*", "GITHUB_TOKEN"]),
    (["app.py", "--no-autorestart"], "autorestart", "never"),
    (["app.py", "--max-restarts", "5"], "max_restarts", 5),
    (["app.py", "--restart-delay", "2s"], "restart_delay", 2.0),
    (["app.py", "--exp-backoff-restart-delay", "200"], "exp_backoff_restart_delay", 0.2),
    (["app.py", "-k", "3s"], "kill_timeout", 3.0),
    (["app.py", "--kill-timeout", "3000"], "kill_timeout", 3.0),
    (["app.py", "--stop-signal", "INT"], "stop_signal", "SIGINT"),
    (["app.py", "--stop-exit-codes", "0", "3"], "stop_exit_codes", [0, 3]),
    (["app.py", "-o", "logs/out.log"], "out_file", "T/logs/out.log"),
    (["app.py", "--output", "/var/log/o.log"], "out_file", "/var/log/o.log"),
    (["app.py", "-e", "err.log"], "error_file", "T/err.log"),
    (["app.py", "--error", "err.log"], "error_file", "T/err.log"),
    (["app.py", "--merge-logs"], "merge_logs", True),
    (["app.py", "--log-type", "json"], "log_type", "json"),
    (["app.py", "--log-date-format", "%H:%M"], "log_date_format", "%H:%M"),
    (["app.py", "--no-time"], "time", False),
    (["app.py", "--time"], "time", True),
    (["app.py", "--user", "www"], "user", "www"),
    (["app.py", "--uid", "33"], "user", "33"),
    (["app.py", "--group", "www"], "group", "www"),
    (["app.py", "--gid", "33"], "group", "33"),
    (["app.py", "--listen", "tcp://127.0.0.1:0", "--listen", "unix:/tmp/a.sock"], "listen",
     ["tcp://127.0.0.1:0", "unix:/tmp/a.sock"]),
    (["app.py", "--wait-ready"], "wait_ready", True),
    (["app.py", "--listen-timeout", "5s"], "listen_timeout", 5.0),
    (["app.py", "--max-memory-restart", "300M"], "max_memory_restart", 300 * 1024 * 1024),
    (["app.py", "--cron-restart", "0 3 * * *"], "cron_restart", "0 3 * * *"),
    (["app.py", "-c", "@daily"], "cron_restart", "0 0 * * *"),
    (["app.py", "--cron", "*/2 * * * * *"], "cron_restart", "*/2 * * * * *"),
]


@pytest.mark.parametrize("argv, key, expected", CASES)
def test_each_flag_sets_its_key(tmp_path: Path, argv: list[str], key: str, expected: Any) -> None:
    spec = start(tmp_path, *argv)
    if isinstance(expected, str):
        expected = T(tmp_path, expected)
    assert spec[key] == expected


def test_every_flag_option_is_tested() -> None:
    tested = {arg.split("=")[0] for argv, _, _ in CASES for arg in argv if arg.startswith("-")} | {"--shell"}
    declared = {option for _, options, *_ in START_FLAGS for option in options}
    assert declared - tested == set()


def test_shell_flag_with_a_command(tmp_path: Path) -> None:
    spec = start(tmp_path, "--shell", command=["npm start | tee out.log"])
    assert spec["shell"] is True and spec["cmd"] == ["npm start | tee out.log"]


def test_the_issue_example(tmp_path: Path) -> None:
    spec = start(tmp_path, "app.py", "-i", "4", "--name", "api", "--kill-timeout", "3s")
    assert (spec["name"], spec["instances"], spec["kill_timeout"]) == ("api", 4, 3.0)
    assert spec["script"] == str(tmp_path / "app.py") and spec["source"] is None


def test_flags_not_given_are_left_out(tmp_path: Path) -> None:
    args = build_parser().parse_args(["start", "app.py"])
    assert settings_from_flags(args, str(tmp_path)) == {}


@pytest.mark.parametrize("argv, message", [
    (["app.py", "--kill-timeout", "5 parsecs"],
     'command line: kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")'),
    (["app.py", "-n", "api", "-k", "5 parsecs"],
     'command line "api": kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")'),
    (["app.py", "--max-restarts", "many"],
     'command line: max_restarts: "many" is not a restart limit (use a whole number >= 0; leave it out for no limit)'),
    (["app.py", "-i", "lots"],
     'command line: instances: "lots" is not an instance count (use a number >= 1, "max" or 0 for one per CPU, '
     '-1 for one less)'),
    (["app.py", "--stop-exit-codes", "0", "x"],
     'command line: stop_exit_codes: [0, "x"] is not a list of exit codes (use a whole number 0-255 or a list of them)'),
    (["app.py", "--listen", "http://x"],
     'command line: listen: ["http://x"] is not a listen address (use "tcp://127.0.0.1:8000", "tcp://[::1]:8000", '
     '"unix:/path/app.sock", or a list of them)'),
])
def test_bad_flag_values_get_the_file_messages(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        start(tmp_path, *argv)
    assert caught.value.messages == [message]


def test_flag_of_names_the_long_option() -> None:
    assert flag_of("instances") == "--instances" and flag_of("autorestart") == "--no-autorestart"
    assert flag_of("kill_timeout") == "--kill-timeout"


# --- with a file ----------------------------------------------------------------------------------

FILE = """
[[apps]]
name = "api"
script = "api.py"
node_args = "--x"
kill_timeout = "9s"

[[apps]]
name = "worker"
cmd = ["sleep", "600"]
"""


def test_flags_override_every_app_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(FILE)
    specs = load_file(str(path), overrides={"kill_timeout": "3s", "instances": 2})
    assert [(s["name"], s["kill_timeout"], s["instances"]) for s in specs] == [("api", 3.0, 2), ("worker", 3.0, 2)]
    api = load_file(str(path), only="api", overrides={"interpreter_args": "--y"})
    assert api[0]["interpreter_args"] == ["--y"]  # replaces the file's alias, no "same setting" error
    # and only for the apps started: "worker" has a cmd, where interpreter_args would be an error


@pytest.mark.parametrize("overrides, message", [
    ({"kill_timeout": "5 parsecs"}, 'command line: kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")'),
    ({"name": "x"}, "command line: name: --name is for a script or a command (with a file, pick apps with --only NAME)"),
])
def test_bad_overrides_name_the_command_line(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(FILE)
    with pytest.raises(ConfigError) as caught:
        load_file(str(path), overrides=overrides)
    assert caught.value.messages == [message]


def test_an_override_that_makes_no_sense_for_an_app_is_that_apps_error(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(FILE)
    with pytest.raises(ConfigError) as caught:
        load_file(str(path), overrides={"interpreter": "python3"})
    assert caught.value.messages == [f'{path}: apps[1] "worker": interpreter: not used with "cmd" (put it in the cmd list)']


def test_run_takes_the_flags_too() -> None:
    args = build_parser().parse_args(["run", "corral.toml", "-i", "2", "--kill-timeout", "1s"])
    assert settings_from_flags(args, os.getcwd()) == {"instances": 2, "kill_timeout": "1s"}
