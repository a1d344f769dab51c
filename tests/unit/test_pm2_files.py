"""PM2's files read as PM2 reads them (issue 9, item 3): warnings instead of errors for what PM2
tolerates, SIGINT, PM2's aliases and forms, interpreters by extension, log targets, watch keys.

Every warned or refused form has its exact line here.  TOML stays strict.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from corral.config.command import resolve_argv
from corral.config.errors import ConfigError
from corral.config.load import load_file, validate_file
from corral.config.pm2 import interpreter_for, is_pm2_file
from corral.config.spec import AppSpec

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
PYTHON_NAME = "python" if shutil.which("python") else "python3"


def write(tmp_path: Path, name: str, text: str, mode: int | None = None) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return str(path)


def loaded(path: str) -> tuple[list[dict[str, Any]], list[str]]:
    warnings: list[str] = []
    specs = load_file(path, warnings=warnings)
    assert validate_file(path) == []
    return specs, warnings


def errors(path: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    return caught.value.messages


def test_which_files_are_pm2_files() -> None:
    assert [is_pm2_file(p) for p in ("ecosystem.config.js", "e.cjs", "e.mjs", "process.json", "P.JSON")] == [True] * 5
    assert [is_pm2_file(p) for p in ("corral.toml", "c.yaml", "c.yml", None, "")] == [False] * 5


# --- keys PM2 tolerates: one warning line, never an error -------------------------------------


def test_unknown_keys_are_warnings_in_a_pm2_file(tmp_path: Path) -> None:
    path = write(tmp_path, "process.json", '{"apps": [{"name": "api", "script": "a.js", "time_format": "HH:mm",'
                                           ' "instancs": 2, "db_password": "hunter2", "retries": [1, 2]}]}')
    (spec,), warnings = loaded(path)
    assert spec["name"] == "api" and spec["instances"] == 1
    assert warnings == [
        f'{path}: apps[0] "api": time_format: "HH:mm" ignored: not a key PM2 or corral reads '
        "(corral's README lists the keys it reads, in \"Ecosystem files\")",
        f'{path}: apps[0] "api": instancs: 2 ignored: not a key PM2 or corral reads (did you mean "instances"?)',
        f'{path}: apps[0] "api": db_password: (value not shown) ignored: not a key PM2 or corral reads '
        "(corral's README lists the keys it reads, in \"Ecosystem files\")",
        f'{path}: apps[0] "api": retries: [1, 2] ignored: not a key PM2 or corral reads '
        "(corral's README lists the keys it reads, in \"Ecosystem files\")",
    ]


def test_unknown_top_level_keys_are_warnings_in_a_pm2_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ecosystem.json", '{"version": 2, "app": [], "apps": [{"script": "a.js"}]}')
    (spec,), warnings = loaded(path)
    assert spec["name"] == "a"
    assert warnings == [
        f"{path}: version: 2 ignored: not a top-level key PM2 or corral reads "
        "(corral's README lists the keys it reads, in \"Ecosystem files\")",
        f'{path}: app: [] ignored: not a top-level key PM2 or corral reads (did you mean "apps"?)',
    ]


def test_toml_and_yaml_stay_strict(tmp_path: Path) -> None:
    toml = write(tmp_path, "c.toml", '[[apps]]\nname = "api"\nscript = "a.js"\ntime_format = "HH:mm"\n'
                                     "merge_logs = true\ncombine_logs = true\n")
    assert errors(toml) == [
        f'{toml}: apps[0] "api": time_format: unknown key (app keys: '
        + ", ".join(f.name for f in __import__("corral.config.fields", fromlist=["FIELDS"]).FIELDS) + ", env_<name>)",
        f'{toml}: apps[0] "api": combine_logs: same setting as "merge_logs" (give only one)',
    ]
    yaml = write(tmp_path, "c.yaml", "apps:\n  - script: a.js\n    kill_signl: INT\n")
    assert errors(yaml) == [f'{yaml}: apps[0]: kill_signl: unknown key (did you mean "kill_signal"?)']


@pytest.mark.parametrize(("merge", "combine", "warned"), [
    (True, True, []),
    (False, False, []),
    (True, False, ['combine_logs: false ignored: "merge_logs" is the same setting and is used (give one of them)']),
])
def test_merge_logs_with_combine_logs(tmp_path: Path, merge: bool, combine: bool, warned: list[str]) -> None:
    text = json.dumps({"apps": [{"name": "w", "script": "a.js", "merge_logs": merge, "combine_logs": combine}]})
    path = write(tmp_path, "p.json", text)
    (spec,), warnings = loaded(path)
    assert spec["merge_logs"] is merge
    assert warnings == [f'{path}: apps[0] "w": {line}' for line in warned]


def test_the_keys_own_name_wins_over_an_alias_given_first(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "w", "script": "a.js", "combine_logs": false, '
                                     '"merge_logs": true, "out": "o.log", "out_file": "o.log"}]}')
    (spec,), warnings = loaded(path)
    assert spec["merge_logs"] is True and spec["out_file"] == str(tmp_path / "o.log")
    assert warnings == [f'{path}: apps[0] "w": combine_logs: false ignored: "merge_logs" is the same setting '
                        "and is used (give one of them)"]


def test_a_bad_value_of_a_known_key_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "w", "script": "a.js", "kill_signal": "SIGFOO"}]}')
    assert errors(path) == [f'{path}: apps[0] "w": kill_signal: "SIGFOO" is not a signal '
                            '(use a name like "SIGTERM", "TERM" or "INT", or a number like 15)']


def test_exec_mode_fork_and_watch_false_say_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"script": "a.js", "exec_mode": "fork", "watch": false},'
                                     ' {"script": "b.js", "exec_mode": "fork_mode"},'
                                     ' {"script": "c.js", "exec_mode": "cluster"}]}')
    (a, b, c), warnings = loaded(path)
    assert warnings == []
    assert (a["ignored"], b["ignored"], c["ignored"]) == ([], [], [])  # cluster: implemented (nodeapps)
    assert (a["exec_mode"], b["exec_mode"], c["exec_mode"]) == ("fork", "fork", "cluster")
    assert a["watch"] == []


# --- signals --------------------------------------------------------------------------------


def test_a_pm2_file_stops_with_sigint_and_toml_with_sigterm(tmp_path: Path) -> None:
    js = write(tmp_path, "p.json", '{"apps": [{"name": "a", "script": "a.js"}, '
                                   '{"name": "b", "script": "b.js", "kill_signal": "SIGTERM"},'
                                   '{"name": "c", "script": "c.js", "stop_signal": "HUP"}]}')
    specs, _ = loaded(js)
    assert [s["stop_signal"] for s in specs] == ["SIGINT", "SIGTERM", "SIGHUP"]
    toml = write(tmp_path, "c.toml", '[[apps]]\nscript = "a.js"\n[[apps]]\nscript = "b.js"\nkill_signal = "INT"\n')
    assert [s["stop_signal"] for s in load_file(toml)] == ["SIGTERM", "SIGINT"]


# --- forms ----------------------------------------------------------------------------------


def test_cmd_as_a_string_is_the_script_in_a_pm2_file(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "a", "cmd": "app.py", "args": "--port 1"},'
                                     ' {"name": "b", "cmd": ["node", "b.js"]}]}')
    (a, b), warnings = loaded(path)
    assert (a["script"], a["cmd"], a["args"]) == (str(tmp_path / "app.py"), None, ["--port", "1"])
    assert (b["script"], b["cmd"]) == (None, ["node", "b.js"])
    assert warnings == []
    toml = write(tmp_path, "c.toml", '[[apps]]\ncmd = "app.py"\n')
    assert errors(toml) == [f'{toml}: apps[0]: cmd: "app.py" is not a command (use a non-empty list of strings, '
                            'like ["uvicorn", "app:main"])']


def test_a_single_app_object_is_the_app(tmp_path: Path) -> None:
    path = write(tmp_path, "process.json", '{"name": "solo", "script": "server.js", "env": {"PORT": 3000}}')
    (spec,), warnings = loaded(path)
    assert (spec["name"], spec["script"], spec["env"]) == ("solo", str(tmp_path / "server.js"), {"PORT": "3000"})
    assert warnings == []
    toml = write(tmp_path, "c.json.toml", 'script = "server.js"\n')
    assert errors(toml)[0] == f'{toml}: script: unknown top-level key (a file holds "apps", and "deploy" for `corral deploy`)'


@needs_node
def test_a_js_file_exporting_one_app(tmp_path: Path) -> None:
    path = write(tmp_path, "ecosystem.config.js", 'module.exports = {name: "solo", script: "run.sh", foo: 1};\n')
    (spec,), warnings = loaded(path)
    assert (spec["name"], spec["interpreter"], spec["stop_signal"]) == ("solo", "bash", "SIGINT")
    assert warnings == [f'{path}: apps[0] "solo": foo: 1 ignored: not a key PM2 or corral reads '
                        "(corral's README lists the keys it reads, in \"Ecosystem files\")"]


@needs_node
def test_a_regexp_in_a_js_file_is_its_source(tmp_path: Path) -> None:
    path = write(tmp_path, "ecosystem.config.js",
                 'module.exports = {apps: [{script: "a.js", watch: true, ignore_watch: [/node_modules/, "\\\\.git"]}]};\n')
    (spec,), _ = loaded(path)
    assert spec["ignore_watch"] == ["node_modules", "\\.git"]


# --- interpreters ---------------------------------------------------------------------------


def _resolved(tmp_path: Path, script: str, **extra: Any) -> list[str]:
    path = write(tmp_path, "p.json", json.dumps({"apps": [{"name": "x", "script": script, **extra}]}))
    (spec,), _ = loaded(path)
    return resolve_argv(AppSpec.from_dict(spec), "/corral/python")


def test_interpreters_by_extension_as_pm2(tmp_path: Path) -> None:
    write(tmp_path, "run.sh", "echo hi\n", 0o644)  # no exec bit: bash reads it
    assert _resolved(tmp_path, "run.sh", args="a") == ["bash", str(tmp_path / "run.sh"), "a"]
    assert _resolved(tmp_path, "app.py") == [PYTHON_NAME, str(tmp_path / "app.py")]
    assert _resolved(tmp_path, "app.py", venv="/opt/venv") == ["/opt/venv/bin/python", str(tmp_path / "app.py")]
    assert _resolved(tmp_path, "app.rb") == ["ruby", str(tmp_path / "app.rb")]
    assert _resolved(tmp_path, "srv.js", node_args="--inspect") == ["node", "--inspect", str(tmp_path / "srv.js")]
    assert _resolved(tmp_path, "run.sh", interpreter="/bin/dash") == ["/bin/dash", str(tmp_path / "run.sh")]
    assert _resolved(tmp_path, "run.sh", interpreter="none") == [str(tmp_path / "run.sh")]


def test_a_script_without_extension(tmp_path: Path) -> None:
    www = write(tmp_path, "www", "#!/usr/bin/env node\nrequire('http')\n", 0o644)
    assert _resolved(tmp_path, "www") == ["node", www]  # PM2: node, unless the file says otherwise
    plain = write(tmp_path, "server", "require('http')\n", 0o755)
    assert _resolved(tmp_path, "server") == ["node", plain]
    tool = write(tmp_path, "tool", "#!/bin/sh\necho hi\n", 0o755)
    assert _resolved(tmp_path, "tool") == [tool]  # executable with a #! line: exec'd, the kernel reads it
    sh = write(tmp_path, "job", "#!/usr/bin/env bash\necho hi\n", 0o644)
    assert _resolved(tmp_path, "job") == ["/usr/bin/env", "bash", sh]  # no exec bit: what its #! line names
    binary = tmp_path / "prog"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\0\0\0")
    binary.chmod(0o755)
    assert _resolved(tmp_path, "prog") == [str(binary)]
    assert interpreter_for(str(tmp_path / "missing"), None, False) == ("node", [])


def test_toml_keeps_corrals_interpreters(tmp_path: Path) -> None:
    write(tmp_path, "c.toml", '[[apps]]\nscript = "run.sh"\n[[apps]]\nscript = "app.py"\n[[apps]]\nscript = "www"\n')
    argvs = [resolve_argv(AppSpec.from_dict(s), "/corral/python") for s in load_file(str(tmp_path / "c.toml"))]
    assert argvs == [[str(tmp_path / "run.sh")], ["/corral/python", str(tmp_path / "app.py")], [str(tmp_path / "www")]]


# --- log targets ----------------------------------------------------------------------------


def test_log_targets(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "a", "script": "a.js", "out_file": "NULL", '
                                     '"error_file": "/dev/null", "log_file": "logs/all.log"},'
                                     ' {"name": "b", "script": "b.js", "log": true},'
                                     ' {"name": "c", "script": "c.js", "log_file": false, "err": "NULL"}]}')
    (a, b, c), warnings = loaded(path)
    assert (a["out_file"], a["error_file"], a["log_file"]) == ("/dev/null", "/dev/null", str(tmp_path / "logs/all.log"))
    assert (b["log_file"], c["log_file"], c["error_file"]) == (True, None, "/dev/null")
    assert warnings == []
    toml = write(tmp_path, "c.toml", '[[apps]]\nscript = "a.js"\nout_file = "NULL"\nlog_file = 3\n')
    assert errors(toml) == [f'{toml}: apps[0]: log_file: 3 is not a log file (use a path, true for logs/<name>.log, '
                            "or false)"]


# --- watch ----------------------------------------------------------------------------------


def test_watch_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "a", "script": "a.js", "watch": true},'
                                     ' {"name": "b", "script": "b.js", "watch": "src", "ignore_watch": "*.log",'
                                     ' "watch_delay": 1000},'
                                     ' {"name": "c", "script": "c.js", "watch": ["src", "/etc/app.conf"], "cwd": "srv",'
                                     ' "ignore_watch": ["node_modules", "\\\\.git"], "watch_options": {"x": 1}}]}')
    (a, b, c), warnings = loaded(path)
    assert (a["watch"], a["ignore_watch"], a["watch_delay"]) == ([str(tmp_path)], None, 0.0)
    assert (b["watch"], b["ignore_watch"], b["watch_delay"]) == ([str(tmp_path / "src")], ["*.log"], 1.0)
    assert (c["watch"], c["ignore_watch"]) == ([str(tmp_path / "srv" / "src"), "/etc/app.conf"], ["node_modules", "\\.git"])
    assert c["ignored"] == ["watch_options"] and warnings == []


@pytest.mark.parametrize(("raw", "message"), [
    ('"watch": 3', 'watch: 3 is not a watch setting (use true, false, a path or a list of paths, like ["src"])'),
    ('"watch": [""]', 'watch: [""] is not a watch setting (use true, false, a path or a list of paths, like ["src"])'),
    ('"ignore_watch": {"a": 1}', 'ignore_watch: {"a": 1} is not a list of paths to ignore (use a list of paths, '
                                 'globs or regular expressions, like ["node_modules", "*.log"])'),
    ('"watch_delay": "soon"', 'watch_delay: "soon" is not a duration (try "5s" or "500ms")'),
])
def test_bad_watch_values(tmp_path: Path, raw: str, message: str) -> None:
    path = write(tmp_path, "p.json", '{"apps": [{"name": "w", "script": "a.js", ' + raw + "}]}")
    assert errors(path) == [f'{path}: apps[0] "w": {message}']


def test_validate_names_what_is_missing(tmp_path: Path) -> None:
    """``corral validate`` (check_files) names a watched path, a venv and an env_file that are not there."""
    write(tmp_path, "a.py", "")
    path = write(tmp_path, "p.json", '{"apps": [{"name": "w", "script": "a.py", "watch": ["src"], '
                                     '"venv": ".venv", "env_file": ".env"}]}')
    assert validate_file(path, check_files=True) == [
        f'{path}: apps[0] "w": venv: "{tmp_path}/.venv" does not exist',
        f'{path}: apps[0] "w": env_file: "{tmp_path}/.env" cannot be used: {tmp_path}/.env: no such file '
        "(env_file must name an existing .env file)",
        f'{path}: apps[0] "w": watch: "{tmp_path}/src" does not exist (watch names files or folders to watch)',
    ]
    (tmp_path / "src").mkdir()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".env").write_text("A=1\n")
    assert validate_file(path, check_files=True) == []


def test_script_modes_are_untouched(tmp_path: Path) -> None:
    """Reading a file never changes the scripts it names (no chmod behind the user's back)."""
    script = write(tmp_path, "run.sh", "echo hi\n", 0o644)
    loaded(write(tmp_path, "p.json", '{"apps": [{"script": "run.sh"}]}'))
    assert stat.S_IMODE(os.stat(script).st_mode) == 0o644
