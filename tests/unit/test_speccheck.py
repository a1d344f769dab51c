"""The daemon's own check of the specs it receives (a raw-socket client, an old store row, a
hand-edited dump.json): every value typed and bounded, one line each, before anything is built."""

from __future__ import annotations

from typing import Any

import pytest

from corral.config.normalize import normalize_app
from corral.config.spec import AppSpec
from corral.config.speccheck import CHECKS, spec_problem

BASE = normalize_app({"cmd": ["sleep", "1"]}, where="c", base_dir="/tmp")


def problem(**changes: Any) -> str | None:
    return spec_problem({**BASE, **changes})


def test_every_spec_key_is_checked() -> None:
    from corral.config.spec import KEYS

    assert set(CHECKS) == set(KEYS)


def test_a_normalized_spec_passes() -> None:
    assert problem() is None


INSTANCES = "is not a number of instances (at most 1024; CORRAL_MAX_INSTANCES raises the ceiling)"


@pytest.mark.parametrize("key, value, message", [
    ("instances", 1e308, f"instances: 1e+308 {INSTANCES}"),
    ("instances", 100000000, f"instances: 100000000 {INSTANCES}"),
    ("instances", "abc", f'instances: "abc" {INSTANCES}'),
    ("instances", 0, f"instances: 0 {INSTANCES}"),
    ("instances", True, f"instances: true {INSTANCES}"),
    ("kill_timeout", float("inf"), "kill_timeout: Infinity is not a duration in seconds (a finite number)"),
    ("kill_timeout", float("nan"), "kill_timeout: NaN is not a duration in seconds (a finite number)"),
    ("kill_timeout", 10**400, "kill_timeout: " + "1" + "0" * 76 + "... is out of range (from 0 to 604800 seconds)"),
    ("kill_timeout", -1, "kill_timeout: -1 is out of range (from 0 to 604800 seconds)"),
    ("min_uptime", "1s", 'min_uptime: "1s" is not a duration in seconds (a finite number)'),
    ("stop_signal", "KILL", 'stop_signal: "KILL" is not a signal name (like "SIGTERM")'),
    ("stop_exit_codes", [256], "stop_exit_codes: [256] [0] is out of range (from 0 to 255)"),
    ("log_max_size", 2**41, "log_max_size: 2199023255552 is out of range (from 0 to 1099511627776)"),
    ("log_max_line", 10, "log_max_line: 10 is out of range (from 1024 to 16777216)"),
    ("out_file", "/tmp/a\0b", 'out_file: "/tmp/a\\u0000b" contains a NUL character (a path cannot hold one)'),
    ("out_file", "relative.log", 'out_file: "relative.log" is not an absolute path'),
    ("cwd", "/" + "a" * 300, 'cwd: "/' + "a" * 75 + '... has a 300-byte name in it (at most 255: NAME_MAX)'),
    ("cmd", [], "cmd: [] is not a list (at least one item)"),
    ("cmd", ["x\0"], 'cmd: ["x\\u0000"] [0] contains a NUL character'),
    ("args", "a b", 'args: "a b" is not a list'),
    ("env", {"A": "b\0"}, 'env: (a table of 1) ["A"] is not a string the OS can pass (no NUL)'),
    ("env", {"A=B": "x"}, 'env: (a table of 1) has a variable name that is not one ("A=B")'),
    ("env", ["A"], "env: (a list) is not a table of variables"),
    ("name", "all", 'name: "all" is not a valid name (1-64 letters, digits, _ . -)'),
    ("autorestart", True, 'autorestart: true is not one of "always", "on-failure", "never"'),
    ("listen", ["unix:/" + "s" * 120], 'listen: ["unix:/' + "s" * 69 + '... [0] is a unix socket path longer than 107 bytes'),
    ("listen", ["nowhere"], 'listen: ["nowhere"] [0] is not a listen address ("tcp://host:port" or "unix:/path")'),
    ("ready", {"kind": "http"}, 'ready: {"kind": "http"} has no interval'),
    ("ready", {"kind": "http", "interval": 0.1, "timeout": 1, "path": "/", "status": 200, "x": 1},
     'ready: {"kind": "http", "interval": 0.1, "timeout": 1, "path": "/", "status": 200, "... '
     '.x is not a probe setting'),
    ("ready", {"kind": "tcp", "address": None, "interval": 0, "timeout": 1},
     'ready: {"kind": "tcp", "address": null, "interval": 0, "timeout": 1} .interval is out of range '
     '(from 0.01 to 604800 seconds)'),
    ("log_rotate", "every day", 'log_rotate: "every day" is not a rotation schedule'),
    ("redact_patterns", ["("], 'redact_patterns: ["("] [0] is not a regular expression'),
    ("user", "", 'user: "" is empty'),
    ("increment_var", "A-B", 'increment_var: "A-B" is not an environment variable name'),
])
def test_each_bad_value_is_one_line(key: str, value: Any, message: str) -> None:
    assert problem(**{key: value}) == message


def test_from_dict_refuses_with_the_problem() -> None:
    with pytest.raises(ValueError, match=r"^instances: 1e\+308 is not a number of instances"):
        AppSpec.from_dict({**BASE, "instances": 1e308})


def test_the_ceiling_follows_the_daemons_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_MAX_INSTANCES", "2000")
    assert problem(instances=2000) is None
    assert problem(instances=2001) == "instances: 2001 is not a number of instances (at most 2000 (CORRAL_MAX_INSTANCES))"


def test_limits_are_checked_as_the_normalizer_writes_them() -> None:
    from corral.config.speccheck import CHECKS

    check = CHECKS["limits"]
    assert check({"nofile": [1024, 4096], "core": [None, None]}) is None
    assert check({"nofile": [4096, 1024]}) == "nofile: has a soft limit above its hard limit"
    assert check({"files": [1, 1]}) == "'files' is not a limit corral knows"
    assert check({"nofile": [-1, 1]}) == "nofile: is not a limit (a number or unlimited)"
    assert check({"nofile": 5}) == "nofile: is not a [soft, hard] pair"
    assert check([1]) == "is not a table of limits"
