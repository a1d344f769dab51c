"""The declared operations (control/ops.py): one declaration for the daemon's checks, the CLI's
verbs and its timeouts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from corral.cli.main import COMMANDS
from corral.control import ops
from corral.control.ops import OPS, BadArgs, check_request, timeout_for
from corral.daemon.ops.apps import HANDLERS, LAZY, handler_for


def test_every_handler_is_declared_and_every_declaration_has_a_handler() -> None:
    for name in LAZY:
        handler_for(name)
    assert set(HANDLERS) == set(OPS) - {"subscribe"}  # subscribe streams (daemon.ops.stream)


def test_every_verb_is_a_cli_command() -> None:
    verbs = {verb.split()[0] for op in OPS.values() for verb in op.verbs}
    assert verbs <= set(COMMANDS)


def refused(op: str, args: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(BadArgs) as caught:
        check_request(op, args)
    return caught.value.code, caught.value.message


@pytest.mark.parametrize("op, args, code, message", [
    ("ls", {"x": 1}, "bad_request", 'ls: unknown argument "x" (ls takes no arguments)'),
    ("stop", {}, "user_error", 'stop: a target is required (an app name, an id, a namespace or "all")'),
    ("stop", {"target": 5}, "bad_request",
     'stop: target: 5 is not an app name, an id, a namespace or "all" (a string of 1 to 256 characters)'),
    ("stop", {"target": "a" * 300}, "bad_request",
     'stop: target: "' + "a" * 76 + '... is not an app name, an id, a namespace or "all" (a string of 1 to 256 '
     'characters)'),
    ("reload", {"target": "w", "parallel": 0}, "bad_request",
     "reload: parallel: 0 is not a whole number from 1 to 1024 (instances replaced at a time)"),
    ("reload", {"target": "w", "parallel": True}, "bad_request",
     "reload: parallel: true is not a whole number from 1 to 1024 (instances replaced at a time)"),
    ("events", {"limit": 10**30}, "bad_request",
     "events: limit: 1000000000000000000000000000000 is not a whole number from 0 to 1000000 "
     "(how many events (--lines))"),
    ("events", {"limit": -1}, "bad_request",
     "events: limit: -1 is not a whole number from 0 to 1000000 (how many events (--lines))"),
    ("subscribe", {"maxsize": 5000}, "bad_request",
     "subscribe: maxsize: 5000 is not a whole number from 1 to 1000 (the subscription's queue)"),
    ("subscribe", {"all": "yes"}, "bad_request", 'subscribe: all: "yes" is not true or false'),
    ("scale", {"target": "w", "count": [1]}, "bad_request",
     "scale: count: [1] is not a number of instances (N, +N or -N)"),
    ("scale", {"target": "w"}, "user_error", "scale: 'count' is required (N, +N or -N)"),
    ("start", {"apps": {"name": "x"}}, "bad_request",
     "start: apps: (not shown) is not a list of at most 4096 app specs (JSON objects)"),
    ("start", {"apps": [1]}, "bad_request",
     "start: apps: (not shown) is not a list of at most 4096 app specs (JSON objects)"),
    ("start", {"base_env": {"TOKEN": "s3cret\0"}}, "bad_request",
     'start: base_env: (not shown) has a value for "TOKEN" that is not a string the OS can pass'),
    ("start", {"base_env": {"A=B": "x"}}, "bad_request",
     'start: base_env: (not shown) has a variable name that is not one ("A=B")'),
    ("signal", {"target": "w", "signal": "x" * 40}, "bad_request",
     'signal: signal: "' + "x" * 40 + '" is not a signal name or number (a string of 1 to 32 characters)'),
])
def test_bad_arguments_are_one_line(op: str, args: dict[str, Any], code: str, message: str) -> None:
    assert refused(op, args) == (code, message)


def test_null_is_not_given_and_good_requests_pass() -> None:
    check_request("events", {"target": None, "limit": 50})
    check_request("start", {"apps": [{"name": "x"}], "base_env": {"A": "1"}})
    check_request("scale", {"target": "w", "count": "+2"})
    check_request("reload", {"target": "w", "parallel": 2000}, max_instances=4096)


def test_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert timeout_for("ls", {}) == 30.0
    assert timeout_for("ls", {"CORRAL_TIMEOUT": "5"}) == 5.0
    assert timeout_for("ls", {"CORRAL_TIMEOUT": "0.1"}) == 2.0  # keep-alives come every second
    assert timeout_for("ls", {"CORRAL_TIMEOUT": "soon"}) == 30.0
    assert timeout_for("ls", {"CORRAL_TIMEOUT": "nan"}) == 30.0
    from corral.cli import fast

    for value in ("", "5", "0.1", "soon", "nan", "-3", "1e9"):
        monkeypatch.setenv("CORRAL_TIMEOUT", value)
        assert fast._timeout() == timeout_for("ls"), value
    assert ops.KEEPALIVE < ops.MIN_TIMEOUT


def test_the_fast_path_imports_nothing_new() -> None:
    """``corral ls`` must stay fast: the timeout added no import to cli/fast.py."""
    code = ("import sys; before = set(sys.modules); from corral.cli import fast; fast._timeout(); "
            "fast._call(b''); print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"CORRAL_HOME": "/nonexistent/corral", "PATH": "/usr/bin:/bin"}).stdout
    # corral.exceptions: HomeError (the home check on every call); it imports nothing itself
    assert out.strip() == ("['__future__', '_socket', 'corral', 'corral.cli', 'corral.cli.fast', "
                           "'corral.exceptions', 'corral.paths']")
