"""Every bound of config/limits.py, as the converters report it: one line naming the file, app,
field and value and what is accepted.  NaN, infinity and 400-digit numbers included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corral.config import limits
from corral.config.errors import ConfigError
from corral.config.normalize import normalize_app
from corral.config.spec import AppSpec
from corral.units import parse_duration, parse_size

WHERE = "c.toml: apps[0]"
BIG = 10**400
DIGITS = "1" * 400


def errors_of(**raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        normalize_app(raw, where=WHERE, base_dir="/tmp")
    return caught.value.messages


INSTANCES = "is too many instances (at most 1024; CORRAL_MAX_INSTANCES raises the ceiling)"


@pytest.mark.parametrize("value, shown", [
    (1e308, "1e+308"), (100000000, "100000000"), (1025, "1025"),
    (BIG, "1" + "0" * 196 + "..."), (DIGITS, '"' + "1" * 196 + "..."),
])
def test_instances_above_the_ceiling(value: Any, shown: str) -> None:
    assert errors_of(cmd=["x"], instances=value) == [f"{WHERE}: instances: {shown} {INSTANCES}"]


@pytest.mark.parametrize("value, shown", [(float("nan"), "NaN"), (float("inf"), "Infinity"), ("abc", '"abc"')])
def test_instances_that_are_not_numbers(value: Any, shown: str) -> None:
    assert errors_of(cmd=["x"], instances=value) == [
        f'{WHERE}: instances: {shown} is not an instance count (use a number >= 1, "max" or 0 for one per CPU, '
        '-1 for one less)']


def test_the_ceiling_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_MAX_INSTANCES", "4")
    assert errors_of(cmd=["x"], instances=5) == [
        f"{WHERE}: instances: 5 is too many instances (at most 4 (CORRAL_MAX_INSTANCES))"]
    assert normalize_app({"cmd": ["x"], "instances": "max"}, where=WHERE, base_dir="/tmp")["instances"] <= 4
    monkeypatch.setenv("CORRAL_MAX_INSTANCES", "lots")
    assert limits.max_instances() == 1024
    assert limits.ceiling_problem() == ("CORRAL_MAX_INSTANCES='lots' is not an instance ceiling "
                                        "(use a whole number from 1 to 100000; default 1024)")


@pytest.mark.parametrize("value, text", [
    (float("inf"), 'Infinity is not a duration (try "5s" or "500ms")'),
    (float("nan"), 'NaN is not a duration (try "5s" or "500ms")'),
    ("8d", '"8d" is too long a duration (at most 7 days: "7d")'),
    (10**12, '1000000000000 is too long a duration (at most 7 days: "7d")'),
    (BIG, "1" + "0" * 196 + '... is not a duration (try "5s" or "500ms")'),
])
def test_durations(value: Any, text: str) -> None:
    assert errors_of(cmd=["x"], kill_timeout=value) == [f"{WHERE}: kill_timeout: {text}"]


@pytest.mark.parametrize("value, text", [
    (DIGITS, '"' + "1" * 196 + '... is not a size (try "10MB", "512K" or 0 for no size limit)'),
    (BIG, "1" + "0" * 196 + '... is not a size (try "10MB", "512K" or 0 for no size limit)'),
    (1e400, 'Infinity is not a size (try "10MB", "512K" or 0 for no size limit)'),
    ("2TB", '"2TB" is too large a size (at most "1TB"; 0 for no size limit)'),
])
def test_sizes(value: Any, text: str) -> None:
    assert errors_of(cmd=["x"], log_max_size=value) == [f"{WHERE}: log_max_size: {text}"]


def test_counts_and_ages() -> None:
    assert errors_of(cmd=["x"], max_restarts=BIG)[0].endswith(
        "... is too large a restart limit (at most 1000000000; leave it out for no limit)")
    assert errors_of(cmd=["x"], log_retain=10**10) == [
        f'{WHERE}: log_retain: 10000000000 is not a number of files (use a whole number from 0 to 1000000000, or "all")']
    assert errors_of(cmd=["x"], log_max_age="3651d") == [
        f'{WHERE}: log_max_age: "3651d" is not an age (try "14d", "12h", or false for no age limit; at most "3650d")']


@pytest.mark.parametrize("raw, message", [
    ({"cmd": ["x"], "out_file": "/tmp/a\0b"}, 'out_file: "/tmp/a\\u0000b" contains a NUL character (a path cannot hold one)'),
    ({"cmd": ["x\0y"]}, 'cmd: ["x\\u0000y"] contains a NUL character (an argument cannot hold one)'),
    ({"script": "a.py", "args": ["a\0"]}, 'args: ["a\\u0000"] contains a NUL character (an argument cannot hold one)'),
    ({"cmd": ["x", "\ud800"]}, 'cmd: ["x", "\ud800"] contains a lone surrogate (not valid text) (an argument cannot hold one)'),
    ({"cmd": ["x"], "env": {"A": "b\0"}}, "env.A: is not a value the OS can pass (no NUL, at most 131072 characters)"),
    ({"cmd": ["x"], "user": "a\0b"}, 'user: "a\\u0000b" is not an account (use a name or a numeric id)'),
    ({"cmd": ["x"], "out_file": "/tmp/" + "a" * 300},
     'out_file: "/tmp/' + "a" * 191 + '... has a 300-byte name in it (at most 255: NAME_MAX)'),
    ({"cmd": ["x"], "cwd": "/" + "a/" * 2100},
     'cwd: "/' + "a/" * 97 + 'a... is 4201 bytes long (a path has at most 4095: PATH_MAX)'),
    ({"cmd": ["x"], "listen": "unix:/tmp/" + "s" * 110},
     'listen: "unix:/tmp/' + "s" * 110 + '" is a unix socket path of 115 bytes (at most 107: the kernel\'s limit; '
     'use a shorter path)'),
    ({"cmd": ["x"], "listen": "tcp://127.0.0.1:0", "ready": {"tcp": True, "interval": 0}},
     'ready: {"tcp": true, "interval": 0} is not a readiness setting: interval takes a duration of at least 10ms'),
])
def test_what_cannot_reach_the_os(raw: dict[str, Any], message: str) -> None:
    assert errors_of(**raw) == [f"{WHERE}: {message}"]


@pytest.mark.parametrize("value", [DIGITS, BIG, 1e400, float("nan"), -1, DIGITS + "s", DIGITS + "TB", "1e400"])
def test_units_raise_only_value_error(value: Any) -> None:
    for parse in (parse_duration, parse_size):
        with pytest.raises(ValueError):
            parse(value)


def test_what_the_cli_accepts_the_daemon_accepts() -> None:
    """The normalizer runs the daemon's check: a spec at every bound loads in the daemon."""
    spec = normalize_app({"cmd": ["x"], "instances": 1024, "kill_timeout": "7d", "log_max_size": "1TB",
                          "max_restarts": limits.MAX_COUNT, "log_max_age": "3650d", "watchdog": "7d",
                          "listen": "unix:/tmp/" + "s" * 97, "ready": {"tcp": True, "interval": "10ms"}},
                         where=WHERE, base_dir="/tmp")
    assert AppSpec.from_dict(spec).instances == 1024


def test_sizes_of_lists_env_and_strings() -> None:
    assert errors_of(cmd=["x"] * 4097) == [f"{WHERE}: cmd: has 4097 items (a command: at most 4096)"]
    assert errors_of(cmd=["x"], env={f"V{i}": "1" for i in range(10_001)}) == [
        f"{WHERE}: env: has 10001 variables (at most 10000)"]
    assert errors_of(cmd=["x", "y" * 131_073]) == [
        f"{WHERE}: cmd: is 131073 characters long (an argument: at most 131072)"]
    assert errors_of(cmd=["x"], stop_exit_codes=list(range(257))) == [
        f"{WHERE}: stop_exit_codes: " + json.dumps(list(range(257)))[:197]
        + "... is not a list of exit codes (use a whole number 0-255 or a list of them)"]
