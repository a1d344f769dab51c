"""Tests for the config package: schema normalization, file loading, argv resolution.

PM2's JavaScript ecosystem files are evaluated with the real node binary.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from corral.config.command import default_name, resolve_argv, sanitize_name
from corral.config.convert import cpu_count
from corral.config.errors import ConfigError
from corral.config.load import from_command_line, load_file, validate_file
from corral.config.fields import FIELDS, PM2_IGNORED, SPEC_KEYS
from corral.config.normalize import normalize_app
from corral.config.spec import AppSpec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
WHERE = "c.toml: apps[0]"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def app(tmp_path: Path, env_name: str | None = None, **raw: Any) -> dict[str, Any]:
    return normalize_app(raw, where=WHERE, base_dir=str(tmp_path), env_name=env_name)


def errors_of(tmp_path: Path, **raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        app(tmp_path, **raw)
    return caught.value.messages


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_errors(path: str) -> list[str]:
    """The messages of load_file(path), checked to equal validate_file(path)."""
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert validate_file(path) == caught.value.messages
    return caught.value.messages


# --- schema ------------------------------------------------------------------------


def test_fields_are_declared_once() -> None:
    names = [field.name for field in FIELDS]
    assert len(names) == len(set(names))
    aliases = [alias for field in FIELDS for alias in field.aliases]
    assert not set(aliases) & set(names)
    assert not (set(aliases) | set(names)) & PM2_IGNORED
    assert all(field.doc for field in FIELDS)


def test_defaults_every_key_present(tmp_path: Path) -> None:
    spec = app(tmp_path, script="app.py")
    assert list(spec) == list(SPEC_KEYS)
    expected = {
        "name": "app",
        "namespace": "default",
        "script": str(tmp_path / "app.py"),
        "cmd": None,
        "args": [],
        "interpreter": None,
        "interpreter_args": [],
        "venv": None,
        "cwd": str(tmp_path),
        "instances": 1,
        "env": {},
        "env_file": None,
        "autorestart": "always",
        "min_uptime": 1.0,
        "max_restarts": None,
        "restart_delay": 0.0,
        "exp_backoff_restart_delay": 0.1,
        "kill_timeout": 5.0,
        "stop_signal": "SIGTERM",
        "stop_exit_codes": [],
        "out_file": None,
        "error_file": None,
        "merge_logs": False,
        "shell": False,
        "user": None,
        "group": None,
        "source": None,
        "env_name": None,
        "ignored": [],
        "listen": [],
        "ready": None,
        "wait_ready": False,
        "listen_timeout": 3.0,
        "ready_timeout": 30.0,
        "increment_var": None,
        "watchdog": None,
        "depends_on": [],
        "reload": "rolling",
    }
    # keys added by later features have their own default tests
    assert {key: spec[key] for key in expected} == expected
    json.dumps(spec)


def test_defaults_are_not_shared(tmp_path: Path) -> None:
    first = app(tmp_path, script="a.py")
    first["env"]["X"] = "1"
    first["args"].append("x")
    second = app(tmp_path, script="b.py")
    assert second["env"] == {} and second["args"] == []


def test_paths_resolve_against_cwd(tmp_path: Path) -> None:
    spec = app(
        tmp_path,
        script="bin/../app.py",
        cwd="srv",
        venv=".venv",
        env_file=".env",
        out_file="logs/out.log",
        error_file="/var/log/err.log",
        interpreter="./py/bin/python",
    )
    srv = tmp_path / "srv"
    assert spec["cwd"] == str(srv)
    assert spec["script"] == str(srv / "app.py")
    assert spec["venv"] == str(srv / ".venv")
    assert spec["env_file"] == str(srv / ".env")
    assert spec["out_file"] == str(srv / "logs" / "out.log")
    assert spec["error_file"] == "/var/log/err.log"
    assert spec["interpreter"] == str(srv / "py" / "bin" / "python")
    assert app(tmp_path, script="a.py", cwd="/opt/x")["cwd"] == "/opt/x"
    assert app(tmp_path, script="a.py", cwd="~")["cwd"] == os.path.expanduser("~")
    assert app(tmp_path, script="a.py", interpreter="python3.12")["interpreter"] == "python3.12"
    assert app(tmp_path, script="a.sh", interpreter="none")["interpreter"] == "none"


def test_bare_script_name_found_on_path(tmp_path: Path) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    assert app(tmp_path, script="sh", args="-c true")["script"] == os.path.abspath(sh)
    (tmp_path / "sh").write_text("", encoding="utf-8")
    assert app(tmp_path, script="sh")["script"] == str(tmp_path / "sh")
    assert app(tmp_path, script="no-such-program-here")["script"] == str(tmp_path / "no-such-program-here")


def test_symlinks_are_not_resolved(tmp_path: Path) -> None:
    (tmp_path / "releases" / "v1").mkdir(parents=True)
    (tmp_path / "current").symlink_to(tmp_path / "releases" / "v1")
    spec = app(tmp_path, script="current/app.py")
    assert spec["script"] == str(tmp_path / "current" / "app.py")


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        ({"args": "--port 8000 --name 'a b'"}, "args", ["--port", "8000", "--name", "a b"]),
        ({"args": ["--port", 8000, 1.5]}, "args", ["--port", "8000", "1.5"]),
        ({"node_args": "--inspect --max-old-space-size=512"}, "interpreter_args", ["--inspect", "--max-old-space-size=512"]),
        ({"interpreterArgs": ["-u"]}, "interpreter_args", ["-u"]),
        ({"exec_interpreter": "python3"}, "interpreter", "python3"),
        ({"instances": 3}, "instances", 3),
        ({"instances": "3"}, "instances", 3),
        ({"instances": 2.0}, "instances", 2),
        ({"instances": "max"}, "instances", cpu_count()),
        ({"instances": "MAX"}, "instances", cpu_count()),
        ({"instances": 0}, "instances", cpu_count()),
        ({"instances": -1}, "instances", max(1, cpu_count() - 1)),
        ({"instances": -1000}, "instances", 1),
        ({"instances": "-1"}, "instances", max(1, cpu_count() - 1)),
        ({"autorestart": True}, "autorestart", "always"),
        ({"autorestart": False}, "autorestart", "never"),
        ({"autorestart": "on-failure"}, "autorestart", "on-failure"),
        ({"autorestart": "never"}, "autorestart", "never"),
        ({"min_uptime": 1000}, "min_uptime", 1.0),
        ({"min_uptime": "30s"}, "min_uptime", 30.0),
        ({"kill_timeout": 1600}, "kill_timeout", 1.6),
        ({"kill_timeout": "1m"}, "kill_timeout", 60.0),
        ({"restart_delay": "500ms"}, "restart_delay", 0.5),
        ({"exp_backoff_restart_delay": 100}, "exp_backoff_restart_delay", 0.1),
        ({"max_restarts": 0}, "max_restarts", 0),
        ({"max_restarts": 16}, "max_restarts", 16),
        ({"stop_signal": "TERM"}, "stop_signal", "SIGTERM"),
        ({"stop_signal": "sigint"}, "stop_signal", "SIGINT"),
        ({"stop_signal": " quit "}, "stop_signal", "SIGQUIT"),
        ({"stop_signal": 15}, "stop_signal", "SIGTERM"),
        ({"stop_signal": "SIGHUP"}, "stop_signal", "SIGHUP"),
        ({"stop_exit_codes": 0}, "stop_exit_codes", [0]),
        ({"stop_exit_codes": [0, 3]}, "stop_exit_codes", [0, 3]),
        ({"merge_logs": True}, "merge_logs", True),
        ({"combine_logs": "true"}, "merge_logs", True),
        ({"out": "o.log"}, "out_file", "OUT/o.log"),
        ({"output": "o.log"}, "out_file", "OUT/o.log"),
        ({"out_log": "o.log"}, "out_file", "OUT/o.log"),
        ({"error": "e.log"}, "error_file", "OUT/e.log"),
        ({"err": "e.log"}, "error_file", "OUT/e.log"),
        ({"err_file": "e.log"}, "error_file", "OUT/e.log"),
        ({"err_log": "e.log"}, "error_file", "OUT/e.log"),
        ({"uid": 1000}, "user", "1000"),
        ({"user": "www-data"}, "user", "www-data"),
        ({"gid": "staff"}, "group", "staff"),
        ({"namespace": "shop"}, "namespace", "shop"),
        ({"kill_timeout": None}, "kill_timeout", 5.0),
        ({"env": None}, "env", {}),
    ],
)
def test_field_conversions(tmp_path: Path, raw: dict[str, Any], key: str, expected: Any) -> None:
    spec = app(tmp_path, script="app.py", **raw)
    if isinstance(expected, str) and expected.startswith("OUT/"):
        expected = str(tmp_path / expected[4:])
    assert spec[key] == expected


def test_exec_alias_for_script(tmp_path: Path) -> None:
    assert app(tmp_path, exec="x.py")["script"] == str(tmp_path / "x.py")


def test_env_values_are_stringified(tmp_path: Path) -> None:
    spec = app(tmp_path, script="a.py", env={"A": True, "B": False, "C": 3, "D": 1.5, "E": "x", "F": None})
    assert spec["env"] == {"A": "true", "B": "false", "C": "3", "D": "1.5", "E": "x", "F": ""}


@pytest.mark.parametrize(
    ("env_name", "expected"),
    [
        (None, {"MODE": "dev", "PORT": "1"}),
        ("production", {"MODE": "prod", "PORT": "1", "EXTRA": "y"}),
        ("staging", {"MODE": "staging", "PORT": "1"}),
        ("nope", {"MODE": "dev", "PORT": "1"}),
    ],
)
def test_env_selection(tmp_path: Path, env_name: str | None, expected: dict[str, str]) -> None:
    spec = app(
        tmp_path,
        env_name=env_name,
        script="a.py",
        env={"MODE": "dev", "PORT": 1},
        env_production={"MODE": "prod", "EXTRA": "y"},
        env_staging={"MODE": "staging"},
    )
    assert spec["env"] == expected
    assert spec["env_name"] == env_name


def test_pm2_keys_are_ignored_not_errors(tmp_path: Path) -> None:
    spec = app(
        tmp_path,
        script="a.js",
        exec_mode="cluster",
        watch=["src"],
        max_memory_restart="300M",
        cron_restart="0 * * * *",
        autostart=False,
        log_date_format="YYYY",
        treekill=True,
    )
    assert spec["ignored"] == ["autostart", "treekill"]
    assert spec["cron_restart"] == "0 * * * *"  # implemented: a graceful reload on that schedule (corral.jobs)
    assert spec["max_memory_restart"] == 300 * 1024**2  # implemented: PM2's sizes are base 1024
    assert spec["exec_mode"] == "cluster"  # implemented: Node's cluster mode on corral's sockets
    assert spec["log_date_format"] == "YYYY"  # implemented now: a moment.js format
    assert spec["watch"] == [str(tmp_path / "src")]  # implemented now: restart on change


def test_every_pm2_ignored_key_is_accepted(tmp_path: Path) -> None:
    spec = app(tmp_path, script="a.js", **{key: "x" for key in sorted(PM2_IGNORED)})
    assert spec["ignored"] == sorted(PM2_IGNORED)


# --- error messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "messages"),
    [
        (
            {"name": "web", "script": "a.py", "kill_timeout": "5 parsecs"},
            ['c.toml: apps[0] "web": kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")'],
        ),
        (
            {"name": "web", "script": "a.py", "autorestat": True},
            ['c.toml: apps[0] "web": autorestat: unknown key (did you mean "autorestart"?)'],
        ),
        ({"name": "web"}, ['c.toml: apps[0] "web": one of "script" or "cmd" is required']),
        ({}, ['c.toml: apps[0]: one of "script" or "cmd" is required']),
        (
            {"script": "a.py", "instancs": 2, "kil_timeout": 1},
            [
                'c.toml: apps[0]: instancs: unknown key (did you mean "instances"?)',
                'c.toml: apps[0]: kil_timeout: unknown key (did you mean "kill_timeout"?)',
            ],
        ),
        (
            {"script": "a.py", "min_uptime": -5},
            ['c.toml: apps[0]: min_uptime: -5 is not a duration (try "5s" or "500ms")'],
        ),
        (
            {"script": "a.py", "instances": "lots"},
            ['c.toml: apps[0]: instances: "lots" is not an instance count (use a number >= 1, "max" or 0 for one per CPU, -1 for one less)'],
        ),
        (
            {"script": "a.py", "instances": "--5"},
            ['c.toml: apps[0]: instances: "--5" is not an instance count (use a number >= 1, "max" or 0 for one per CPU, -1 for one less)'],
        ),
        (
            {"script": "a.py", "instances": 1.5},
            ['c.toml: apps[0]: instances: 1.5 is not an instance count (use a number >= 1, "max" or 0 for one per CPU, -1 for one less)'],
        ),
        (
            {"script": "a.py", "env": {"A=B": "1"}},
            ['c.toml: apps[0]: env["A=B"]: "A=B" is not a variable name (no "=" and not empty)'],
        ),
        (
            {"script": "a.py", "autorestart": "sometimes"},
            ['c.toml: apps[0]: autorestart: "sometimes" is not a restart policy (use true, false, "always", "on-failure" or "never")'],
        ),
        (
            {"script": "a.py", "max_restarts": -1},
            ["c.toml: apps[0]: max_restarts: -1 is not a restart limit (use a whole number >= 0; leave it out for no limit)"],
        ),
        (
            {"script": "a.py", "stop_signal": "SIGFOO"},
            ['c.toml: apps[0]: stop_signal: "SIGFOO" is not a signal (use a name like "SIGTERM", "TERM" or "INT", or a number like 15)'],
        ),
        (
            {"script": "a.py", "stop_exit_codes": [0, 300]},
            ["c.toml: apps[0]: stop_exit_codes: [0, 300] is not a list of exit codes (use a whole number 0-255 or a list of them)"],
        ),
        (
            {"script": "a.py", "merge_logs": "yes please"},
            ['c.toml: apps[0]: merge_logs: "yes please" is not a boolean (use true or false)'],
        ),
        (
            {"script": "a.py", "env": {"DB": {"host": "x"}}},
            ["c.toml: apps[0]: env.DB: is a table (use a string, number or boolean)"],
        ),
        (
            {"script": "a.py", "env_production": ["A=1"]},
            ['c.toml: apps[0]: env_production: is a list (use a table of NAME = "value" pairs)'],
        ),
        (
            {"script": "a.py", "env": "A=1"},
            ['c.toml: apps[0]: env: is a string (use a table of NAME = "value" pairs)'],
        ),
        (
            {"script": "a.py", "args": "--name 'unclosed"},
            ['c.toml: apps[0]: args: "--name \'unclosed" is not a list of arguments (unbalanced quotes; use a list of strings)'],
        ),
        (
            {"script": "a.py", "args": {"port": 1}},
            ['c.toml: apps[0]: args: {"port": 1} is not a list of arguments (use a string or a list of strings)'],
        ),
        (
            {"script": ""},
            ['c.toml: apps[0]: script: "" is not a path (use a non-empty string)'],
        ),
        (
            {"cmd": "node server.js"},
            ['c.toml: apps[0]: cmd: "node server.js" is not a command (use a non-empty list of strings, like ["uvicorn", "app:main"])'],
        ),
        (
            {"cmd": []},
            ['c.toml: apps[0]: cmd: [] is not a command (use a non-empty list of strings, like ["uvicorn", "app:main"])'],
        ),
        (
            {"script": "a.py", "cmd": ["x"]},
            ['c.toml: apps[0]: give either "script" or "cmd", not both (cmd is a full argv list)'],
        ),
        (
            {"cmd": ["node", "s.js"], "args": ["x"], "interpreter": "node"},
            [
                'c.toml: apps[0]: args: not used with "cmd" (put it in the cmd list)',
                'c.toml: apps[0]: interpreter: not used with "cmd" (put it in the cmd list)',
            ],
        ),
        (
            {"cmd": ["npm", "start"], "shell": True},
            ['c.toml: apps[0]: cmd: ["npm", "start"] must be one command line when shell = true (like ["npm start | tee out.log"])'],
        ),
        (
            {"script": "npm start", "shell": True, "node_args": "--x"},
            ["c.toml: apps[0]: node_args: not used when shell = true (the command line runs with /bin/sh -c)"],
        ),
        (
            {"script": "a.py", "node_args": "-u", "interpreter_args": ["-u"]},
            ['c.toml: apps[0]: interpreter_args: same setting as "node_args" (give only one)'],
        ),
        (
            {"script": "a.py", "user": ""},
            ['c.toml: apps[0]: user: "" is not an account (use a name or a numeric id)'],
        ),
        (
            {"script": "a.py", "zzzzqqq": 1},
            [
                "c.toml: apps[0]: zzzzqqq: unknown key (app keys: "
                + ", ".join(field.name for field in FIELDS)
                + ", env_<name>)"
            ],
        ),
    ],
)
def test_error_messages(tmp_path: Path, raw: dict[str, Any], messages: list[str]) -> None:
    assert errors_of(tmp_path, **raw) == messages


def test_error_str_is_first_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        app(tmp_path, script="a.py", kill_timeout="x", min_uptime="y")
    assert len(caught.value.messages) == 2
    assert str(caught.value) == caught.value.messages[0]


def test_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_app(["a.py"], where=WHERE, base_dir=str(tmp_path), env_name=None)  # type: ignore[arg-type]
    assert str(caught.value) == 'c.toml: apps[0]: ["a.py"] is not an app (use a table of settings with a script or cmd)'


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("web", True),
        ("Web-1.api_v2", True),
        ("a", True),
        ("9lives", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("123", False),
        ("all", False),
        ("-web", False),
        (".hidden", False),
        ("_x", False),
        ("web app", False),
        ("web/app", False),
        ("wéb", False),
        ("", False),
        (42, False),
    ],
)
def test_name_rules(tmp_path: Path, name: Any, valid: bool) -> None:
    if valid:
        assert app(tmp_path, script="a.py", name=name)["name"] == name
        assert app(tmp_path, script="a.py", namespace=name)["namespace"] == name
        return
    hint = '(use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit; not all digits; not "all")'
    label = f'{WHERE} "{name}"' if isinstance(name, str) and name else WHERE
    assert errors_of(tmp_path, script="a.py", name=name) == [f"{label}: name: {json.dumps(name, ensure_ascii=False)} is not a valid name {hint}"]


# --- files ---------------------------------------------------------------------------


def test_load_toml_fixture() -> None:
    path = str(FIXTURES / "corral.toml")
    web, report, tail = load_file(path, env_name="production")
    srv = str(FIXTURES / "srv")
    assert web["cmd"] == ["uvicorn", "shop.main:app", "--fd", "3"]
    assert web["cwd"] == srv
    assert web["venv"] == os.path.join(srv, ".venv")
    assert web["env_file"] == os.path.join(srv, ".env")
    assert web["env"] == {"DATABASE_URL": "postgres://localhost/shop", "WORKERS": "4", "DEBUG": "false"}
    assert (web["autorestart"], web["min_uptime"], web["max_restarts"]) == ("on-failure", 2.0, 5)
    assert (web["restart_delay"], web["exp_backoff_restart_delay"], web["kill_timeout"]) == (0.5, 0.25, 15.0)
    assert (web["stop_signal"], web["stop_exit_codes"], web["namespace"]) == ("SIGINT", [0], "shop")
    assert web["source"] == path
    assert report["script"] == str(FIXTURES / "bin" / "report.sh")
    assert report["autorestart"] == "never"
    assert tail["shell"] is True and tail["cmd"] == ["tail -F /var/log/syslog | grep -v cron"]
    assert load_file(path)[0]["env"]["DEBUG"] == "true"


def test_load_yaml_fixture() -> None:
    api, sync = load_file(str(FIXTURES / "corral.yaml"))
    assert api["venv"] == "/opt/venvs/api"
    assert api["args"] == ["--port", "8000"]
    assert api["kill_timeout"] == 10.0
    assert api["env"] == {"MODE": "yaml"}
    assert sync["name"] == "sync"
    assert sync["script"] == str(FIXTURES / "tools" / "sync.js")
    assert load_file(str(FIXTURES / "corral.yaml"), env_name="production")[0]["env"] == {"MODE": "prod"}


def test_load_pm2_json_fixture() -> None:
    (web,) = load_file(str(FIXTURES / "ecosystem.config.json"), env_name="staging")
    assert web["interpreter"] == "python3"
    assert web["args"] == ["--port", "8000"]
    assert web["instances"] == cpu_count()
    assert web["out_file"] == str(FIXTURES / "logs" / "web.out.log")
    assert web["error_file"] == str(FIXTURES / "logs" / "web.err.log")
    assert web["merge_logs"] is True
    assert web["exp_backoff_restart_delay"] == 0.1
    assert web["stop_exit_codes"] == [0]
    assert web["autorestart"] == "never"
    assert web["env"] == {"APP_ENV": "staging"}
    assert web["ignored"] == []  # exec_mode "fork" is PM2's default: nothing to say
    assert web["exec_mode"] == "fork"
    assert web["log_date_format"]  # PM2's key is used, not ignored
    assert web["stop_signal"] == "SIGINT"  # PM2's signal, in a PM2 file


@needs_node
def test_load_pm2_js_fixture() -> None:
    path = str(FIXTURES / "ecosystem.config.js")
    api, worker = load_file(path, env_name="production")
    assert api["name"] == "api"
    assert api["script"] == str(FIXTURES / "server.js")
    assert api["instances"] == cpu_count()
    assert api["interpreter_args"] == ["--max-old-space-size=512"]
    assert api["kill_timeout"] == 3.0
    assert api["env"] == {"NODE_ENV": "production", "PORT": "8080"}
    assert api["ignored"] == []
    assert api["watch"] == []
    assert api["exec_mode"] == "cluster"
    assert api["out_file"] == str(FIXTURES / "logs" / "api-out.log")
    assert worker["cwd"] == str(FIXTURES / "jobs")
    assert worker["script"] == str(FIXTURES / "jobs" / "worker.py")
    assert worker["interpreter"] == "python3"
    assert worker["interpreter_args"] == ["-u"]
    assert worker["args"] == ["--queue", "default", "--verbose"]
    assert (worker["instances"], worker["max_restarts"], worker["min_uptime"], worker["restart_delay"]) == (2, 10, 5.0, 0.25)
    assert worker["env"] == {"LOG_LEVEL": "warning", "DEBUG": "false"}
    assert worker["ignored"] == []
    assert worker["cron_restart"] == "0 3 * * *"
    assert load_file(path)[0]["env"] == {"NODE_ENV": "development", "PORT": "3000"}


@pytest.mark.parametrize("name", ["corral.toml", "corral.yaml", "ecosystem.config.json", "ecosystem.config.js"])
def test_fixtures_validate(name: str) -> None:
    if name.endswith(".js") and NODE is None:
        pytest.skip("node is not installed")
    assert validate_file(str(FIXTURES / name)) == []


@needs_node
def test_js_variants(tmp_path: Path) -> None:
    noisy = write(tmp_path, "noisy.config.js", 'console.log("hi");\nmodule.exports = {apps: [{script: "a.js"}]};\n')
    assert load_file(noisy)[0]["name"] == "a"
    cjs = write(tmp_path, "eco.config.cjs", 'module.exports = [{script: "b.js", env: {HOME_SEEN: process.env.HOME}}];\n')
    assert load_file(cjs)[0]["env"] == {"HOME_SEEN": os.environ["HOME"]}
    esm = write(tmp_path, "eco.config.mjs", 'export default {apps: [{script: "c.js"}]};\n')
    assert load_file(esm)[0]["name"] == "c"


@needs_node
def test_js_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.config.js", 'module.exports = {\n  apps: [{\n    name "x"\n  }]\n};\n')
    assert load_errors(bad) == [f"{bad}: line 3: SyntaxError: Unexpected string"]
    throws = write(tmp_path, "throws.config.js", 'const a = 1;\nthrow new Error("no config today");\n')
    assert load_errors(throws) == [f"{throws}: line 2: Error: no config today"]
    empty = write(tmp_path, "empty.config.js", "// nothing exported\n")
    assert load_errors(empty) == [f'{empty}: "apps" is missing (add a list of apps; in TOML: [[apps]] tables)']
    function = write(tmp_path, "fn.config.js", "module.exports = () => ({apps: []});\n")
    assert load_errors(function) == [f'{function}: the file must hold "apps", a list of apps (in TOML: [[apps]] tables)']


def test_js_without_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "ecosystem.config.js", "module.exports = {apps: []};\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert load_errors(path) == [
        f"{path}: node is not on PATH (install Node.js to read a .js ecosystem, or convert it to .toml or .json)"
    ]


def test_missing_and_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_errors("missing.toml") == ["missing.toml: no such file"]
    assert load_errors("missing.js") == ["missing.js: no such file"]
    assert load_errors("missing.xyz") == ["missing.xyz: no such file"]
    write(tmp_path, "app.xyz", "x")
    assert load_errors("app.xyz") == ['app.xyz: unsupported config format ".xyz" (use .toml, .yaml, .yml, .json or ecosystem.config.js)']
    (tmp_path / "dir.toml").mkdir()
    assert load_errors("dir.toml") == [
        "dir.toml: is a directory (give an ecosystem file: use .toml, .yaml, .yml, .json or ecosystem.config.js)"
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.toml", '[[apps]]\nname = "web"\nscript = \n', "c.toml: line 3: Invalid value"),
        ("c.toml", "[[apps]]\nname = [1,", "c.toml: end of file: Invalid value"),
        ("c.yaml", "apps:\n  - name: web\n   script: x\n", "c.yaml: line 3: expected <block end>, but found '<block mapping start>'"),
        ("c.yaml", "apps:\n  - name: web\n    script: x: y\n", "c.yaml: line 3: mapping values are not allowed here"),
        ("c.yml", "apps: [\n", "c.yml: line 2: expected the node content, but found '<stream end>'"),
        ("c.json", '{"apps": [\n  {"name": "web",}\n]}', "c.json: line 2: Expecting property name enclosed in double quotes"),
    ],
)
def test_parse_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, name, text)
    assert load_errors(name) == [message]


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("", ['c.toml: "apps" is missing (add a list of apps; in TOML: [[apps]] tables)']),
        ("apps = []", ["c.toml: apps: [] is not a list of apps (add at least one app table)"]),
        ('apps = "web"', ['c.toml: apps: "web" is not a list of apps (add at least one app table)']),
        (
            '[[app]]\nscript = "a.py"\n',
            [
                'c.toml: app: unknown top-level key (did you mean "apps"?)',
                'c.toml: "apps" is missing (add a list of apps; in TOML: [[apps]] tables)',
            ],
        ),
        (
            'servers = 1\n[[apps]]\nscript = "a.py"\n',
            ["c.toml: servers: unknown top-level key (a file holds \"apps\", and \"deploy\" for `corral deploy`)"],
        ),
        ('[deploy.production]\nhost = "x"\n[[apps]]\nscript = "a.py"\n', []),
        (
            '[[apps]]\nname = "web"\nscript = "a.py"\n[[apps]]\nname = "web"\nscript = "b.py"\n',
            ['c.toml: apps[1] "web": name: "web" is already used by apps[0] (names must be unique)'],
        ),
        (
            '[[apps]]\nscript = "a.py"\n[[apps]]\nscript = "sub/a.py"\n',
            ['c.toml: apps[1] "a": name: "a" is already used by apps[0] (names must be unique)'],
        ),
        (
            (
                '[[apps]]\nname = "ok"\nscript = "a.py"\n[[apps]]\nname = "web"\nscript = "b.py"\nkill_timeout = "5 parsecs"\n'
                '[[apps]]\nautorestat = true\nscript = "c.py"\n[[apps]]\nmax_restarts = 1\n'
            ),
            [
                'c.toml: apps[1] "web": kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")',
                'c.toml: apps[2]: autorestat: unknown key (did you mean "autorestart"?)',
                'c.toml: apps[3]: one of "script" or "cmd" is required',
            ],
        ),
    ],
)
def test_document_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, messages: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "c.toml", text)
    assert validate_file("c.toml") == messages


def test_pm2_shapes_in_json(tmp_path: Path) -> None:
    bare_list = write(tmp_path, "list.json", '[{"script": "a.js"}]')
    assert load_file(bare_list)[0]["name"] == "a"
    single = write(tmp_path, "single.json", '{"apps": {"script": "b.js"}}')
    assert load_file(single)[0]["name"] == "b"


def test_relative_path_given_keeps_message_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", "corral.toml", '[[apps]]\nscript = "a.py"\nkill_timeout = "soon"\n')
    monkeypatch.chdir(tmp_path)
    assert validate_file("conf/corral.toml") == [
        'conf/corral.toml: apps[0]: kill_timeout: "soon" is not a duration (try "5s" or "500ms")'
    ]
    write(tmp_path / "conf", "corral.toml", '[[apps]]\nscript = "a.py"\n')
    (spec,) = load_file("conf/corral.toml")
    assert spec["script"] == str(tmp_path / "conf" / "a.py")
    assert spec["source"] == str(tmp_path / "conf" / "corral.toml")


def test_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        '[[apps]]\nname = "web"\nscript = "a.py"\n[[apps]]\nname = "worker"\nscript = "b.py"\n[[apps]]\nname = "cron"\nscript = "c.py"\n',
    )
    assert [s["name"] for s in load_file(path, only="worker")] == ["worker"]
    assert [s["name"] for s in load_file(path, only="cron, web")] == ["web", "cron"]
    assert [s["name"] for s in load_file(path, only=["cron", "worker"])] == ["worker", "cron"]
    assert len(load_file(path, only="")) == 3
    with pytest.raises(ConfigError) as caught:
        load_file(path, only="web,wrker")
    assert caught.value.messages == [f'{path}: only "wrker": no app by that name (apps in this file: "web", "worker", "cron")']


# --- command line ------------------------------------------------------------------


def test_from_command_line_script(tmp_path: Path) -> None:
    spec = from_command_line("app.py", ["a", "b"], name="N", cwd=str(tmp_path))
    assert (spec["name"], spec["script"], spec["args"], spec["cmd"]) == ("N", str(tmp_path / "app.py"), ["a", "b"], None)
    assert spec["cwd"] == str(tmp_path) and spec["source"] is None
    assert from_command_line("srv/my app.py", [], cwd=str(tmp_path))["name"] == "my-app"


def test_from_command_line_cmd_and_extra(tmp_path: Path) -> None:
    spec = from_command_line(None, ["node", "server.js", "--port", "3000"], cwd=str(tmp_path), extra={"instances": 2, "env": {"A": 1}})
    assert (spec["name"], spec["cmd"], spec["script"], spec["instances"], spec["env"]) == (
        "server",
        ["node", "server.js", "--port", "3000"],
        None,
        2,
        {"A": "1"},
    )


def test_from_command_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        from_command_line(None, [], cwd=str(tmp_path))
    assert str(caught.value) == "command line: give a script or a command (corral start app.py, or corral start -- node server.js)"
    with pytest.raises(ConfigError) as caught:
        from_command_line("a.py", [], name="all", cwd=str(tmp_path), extra={"kill_timeout": "never"})
    assert caught.value.messages == [
        'command line "all": kill_timeout: "never" is not a duration (try "5s" or "500ms")',
        'command line "all": name: "all" is not a valid name (use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit; not all digits; not "all")',
    ]


@pytest.mark.parametrize(
    ("script", "cmd", "shell", "name"),
    [
        ("app.py", None, False, "app"),
        ("/srv/api/server.js", None, False, "server"),
        ("bin/run", None, False, "run"),
        ("tool.v2.py", None, False, "tool.v2"),
        ("123.py", None, False, "app-123"),
        ("all.js", None, False, "app-all"),
        ("-weird name!.py", None, False, "weird-name"),
        (None, ["node", "server.js"], False, "server"),
        (None, ["/usr/bin/python3.12", "-u", "worker.py", "--x"], False, "worker"),
        (None, ["python", "-m", "http.server", "8000"], False, "http.server"),
        (None, ["python3", "-X", "dev", "main.py"], False, "main"),
        (None, ["python", "-c", "print(1)"], False, "python"),
        (None, ["node", "--require", "dotenv/config", "api/index.mjs"], False, "index"),
        (None, ["bun", "run", "serve.ts"], False, "serve"),
        (None, ["deno", "run", "--allow-net", "main.ts"], False, "main"),
        (None, ["bash", "deploy.sh"], False, "deploy"),
        (None, ["node"], False, "node"),
        (None, ["uvicorn", "app:main"], False, "uvicorn"),
        (None, ["./bin/server.sh", "--port", "1"], False, "server.sh"),
        (None, ["python app.py | tee out.log"], True, "app"),
        ("npm start", None, True, "npm"),
        (None, ["echo 'unbalanced"], True, "echo"),
    ],
)
def test_default_name(script: str | None, cmd: list[str] | None, shell: bool, name: str) -> None:
    assert default_name(script, cmd, shell) == name


@pytest.mark.parametrize(
    ("text", "name"),
    [("web", "web"), ("my app", "my-app"), ("...x", "x"), ("", "app"), ("42", "app-42"), ("all", "app-all"), ("a" * 80, "a" * 64), ("über", "ber")],
)
def test_sanitize_name(text: str, name: str) -> None:
    assert sanitize_name(text) == name


# --- argv -------------------------------------------------------------------------


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A virtualenv-like folder: bin/python and bin/uvicorn, executable."""
    root = tmp_path / "venv"
    (root / "bin").mkdir(parents=True)
    for program in ("python", "uvicorn"):
        path = root / "bin" / program
        path.write_text("#!/bin/sh\n", encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (root / "bin" / "not-exec").write_text("", encoding="utf-8")
    return root


PY = "/usr/bin/python3-test"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"script": "app.py"}, [PY, "T/app.py"]),
        ({"script": "app.py", "args": ["-v"], "interpreter_args": ["-u"]}, [PY, "-u", "T/app.py", "-v"]),
        ({"script": "app.py", "interpreter": "python3.12"}, ["python3.12", "T/app.py"]),
        ({"script": "app.py", "venv": "venv"}, ["T/venv/bin/python", "T/app.py"]),
        ({"script": "app.py", "venv": "venv", "interpreter": "python3.12", "node_args": "-X dev"}, ["T/venv/bin/python", "-X", "dev", "T/app.py"]),
        ({"script": "app.py", "interpreter": "none"}, ["T/app.py"]),
        ({"script": "server.js", "args": "--port 3"}, ["node", "T/server.js", "--port", "3"]),
        ({"script": "server.mjs", "interpreter": "bun"}, ["bun", "T/server.mjs"]),
        ({"script": "server.cjs", "node_args": ["--inspect"]}, ["node", "--inspect", "T/server.cjs"]),
        ({"script": "run.sh", "args": ["x"]}, ["T/run.sh", "x"]),
        ({"script": "bin/tool"}, ["T/bin/tool"]),
        ({"script": "run.sh", "interpreter": "bash"}, ["bash", "T/run.sh"]),
        ({"script": "run.sh", "interpreter": "none", "interpreter_args": ["-x"]}, ["T/run.sh"]),
        ({"cmd": ["uvicorn", "app:main", "--fd", "3"]}, ["uvicorn", "app:main", "--fd", "3"]),
        ({"cmd": ["uvicorn", "app:main"], "venv": "venv"}, ["T/venv/bin/uvicorn", "app:main"]),
        ({"cmd": ["gunicorn", "app:main"], "venv": "venv"}, ["gunicorn", "app:main"]),
        ({"cmd": ["not-exec"], "venv": "venv"}, ["not-exec"]),
        ({"cmd": ["./uvicorn"], "venv": "venv"}, ["./uvicorn"]),
        ({"cmd": ["npm start | tee x.log"], "shell": True}, ["/bin/sh", "-c", "npm start | tee x.log"]),
        ({"script": "npm run build", "shell": True}, ["/bin/sh", "-c", "npm run build"]),
        ({"script": "echo", "args": ["a b", "$HOME"], "shell": True}, ["/bin/sh", "-c", "echo 'a b' '$HOME'"]),
    ],
)
def test_resolve_argv(tmp_path: Path, venv: Path, raw: dict[str, Any], expected: list[str]) -> None:
    spec = normalize_app(raw, where=WHERE, base_dir=str(tmp_path), env_name=None)
    argv = resolve_argv(AppSpec.from_dict(spec), PY)
    assert argv == [part.replace("T/", str(tmp_path) + "/", 1) if part.startswith("T/") else part for part in expected]
