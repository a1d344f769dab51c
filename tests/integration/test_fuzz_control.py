"""The control-socket fuzzer: random bytes, envelopes, arguments and specs at a real daemon.

Every request must get error replies or results (never an ``internal`` error), within a
deadline; afterwards the same daemon answers ``ls`` and its log holds no traceback.
Specs that the daemon would accept are defused before they are sent (``sleep``, no files, at
most 2 instances of 4 names, short timeouts): the fuzzer is after the checks, not the machine.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.config.spec import AppSpec
from corral.control.ops import OPS
from tests.conftest import Corral
from tests.fuzzing import HOSTILE_NUMBERS, HOSTILE_TEXT, Tally, fuzz_settings, json_values

OPERATIONS = sorted(set(OPS) - {"kill"})  # kill stops the daemon: that is its job
STOPS = {"STOP", "TSTP", "TTIN", "TTOU"}  # a stopped sleep would make a stop wait its kill_timeout
BASE = {"name": "fz0", "cwd": "/tmp", "cmd": ["sleep", "600"], "autorestart": "never", "kill_timeout": 1.0}
SAFE = {"cmd": ["sleep", "600"], "script": None, "shell": False, "interpreter": None, "venv": None, "cwd": "/tmp",
        "env_file": None, "out_file": None, "error_file": None, "user": None, "group": None, "listen": [],
        "ready": None, "wait_ready": False, "depends_on": [], "stop_signal": "SIGTERM", "log_rotate": None}
DEADLINE = 30.0


def defused(spec: Any) -> Any:
    """A spec the daemon would accept, made harmless; anything else as it is."""
    try:
        valid = AppSpec.from_dict(spec)
    except (ValueError, TypeError):
        return spec
    return {**spec, **SAFE, "name": f"fz{hash(valid.name) % 4}", "instances": min(valid.instances, 2),
            "kill_timeout": min(valid.kill_timeout, 1.0), "listen_timeout": min(valid.listen_timeout, 0.5),
            "ready_timeout": min(valid.ready_timeout, 2.0), "min_uptime": 0.0}


@st.composite
def specs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    keys = list(AppSpec.__dataclass_fields__) + ["base_env", "nonsense"]
    changes = draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=3))
    return defused({**BASE, **changes})


@st.composite
def arguments(draw: st.DrawFn, op: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for arg in OPS[op].args:
        if draw(st.booleans()):
            if arg.kind == "specs":
                args[arg.name] = draw(st.lists(specs(), max_size=3)) if draw(st.booleans()) else draw(json_values)
            elif arg.kind == "target":
                args[arg.name] = draw(st.sampled_from(["all", "fz0", "fz1", "0", "default"]) | json_values)
            else:
                args[arg.name] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        args[draw(st.text(max_size=8))] = draw(json_values)
    if op == "signal" and str(args.get("signal", "")).upper().removeprefix("SIG") in STOPS:
        args["signal"] = "SIGUSR1"
    return args


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "envelope", "arguments", "arguments", "deep", "number"]))
    if kind == "raw":
        return draw(st.binary(max_size=300)) + b"\n"
    if kind == "deep":
        depth = draw(st.sampled_from([33, 200, 1000, 100_000]))
        return b'{"id":1,"op":"%s","args":%s%s}\n' % (draw(st.sampled_from(OPERATIONS)).encode(),
                                                      b"[" * depth, b"]" * depth)
    if kind == "number":
        digits = draw(st.sampled_from(["1" * 400, "9" * 20, "1e400", "-1e400", "1" * 5000, "1e-400", "NaN", "Infinity"]))
        op, name = draw(st.sampled_from([("events", "limit"), ("reload", "parallel"), ("scale", "count"),
                                         ("subscribe", "history"), ("start", "apps")]))
        return b'{"id":1,"op":"%s","args":{"target":"fz0","%s":%s}}\n' % (op.encode(), name.encode(), digits.encode())
    op = draw(st.sampled_from(OPERATIONS) | st.sampled_from(HOSTILE_TEXT))
    args = draw(arguments(op)) if op in OPS and kind == "arguments" else draw(json_values)
    message = {"v": draw(st.just(1) | json_values), "id": draw(st.integers(0, 10**6) | json_values), "op": op,
               "args": args}
    return json.dumps(message).encode() + b"\n"


def send(path: str, payload: bytes) -> list[bytes] | None:
    """The reply lines to PAYLOAD (the client then hangs up), or None when they did not come in time."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(DEADLINE)
    try:
        sock.connect(path)
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        data = b""
    finally:
        sock.close()
    return data.splitlines()


def check(tally: Tally, payload: bytes, lines: list[bytes] | None) -> None:
    tally.cases += 1
    if lines is None:
        tally.fail("hangs", payload)
        return
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            tally.fail("wrong", (payload, line))
            continue
        error = message.get("error") if isinstance(message, dict) else None
        if isinstance(error, dict):
            tally.saw(str(error.get("code")))
        elif isinstance(message, dict) and "result" in message:
            tally.saw("result")
        if isinstance(error, dict) and error.get("code") == "internal":
            tally.fail("tracebacks", (payload, error))
        elif not isinstance(message, dict) or not ({"error", "result", "progress"} & set(message)):
            tally.fail("wrong", (payload, message))


def test_control_socket_fuzzer(corral: Corral, request: pytest.FixtureRequest) -> None:
    corral.env["CORRAL_MAX_INSTANCES"] = "4"
    corral.run("ping")
    daemon = corral.daemon_pid()
    path = str(Path(corral.home) / "corral.sock")
    tally = Tally("control-socket fuzzer")

    @fuzz_settings(150)
    @given(requests())
    def one(payload: bytes) -> None:
        check(tally, payload, send(path, payload))

    one()
    if corral.daemon_pid() != daemon:
        tally.fail("deaths", daemon)
    log = Path(corral.home, "daemon.log").read_text(errors="replace")
    if "Traceback" in log:
        tally.fail("tracebacks", log[log.index("Traceback"):][:300])
    tally.report(request)
    tally.assert_clean()
    assert isinstance(corral.ls(), list)  # and it still answers


def test_the_hostile_pools_are_json() -> None:
    json.dumps([v for v in HOSTILE_NUMBERS if v == v and abs(v) != float("inf")] + HOSTILE_TEXT)
