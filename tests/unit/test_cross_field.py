"""Cross-field rules of the normalizer: settings that are each valid but cannot work together.

Each would otherwise be accepted, then fail at run time (an http probe with nowhere to connect
fails forever with no reason shown); here ``validate`` names the file, the app and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.config.cluster import to_ready
from corral.config.convert import Invalid
from corral.config.errors import ConfigError
from corral.config.load import validate_file
from corral.config.normalize import normalize_app

WHERE = "c.toml: apps[0]"


def errors_of(tmp_path: Path, **raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        normalize_app(raw, where=WHERE, base_dir=str(tmp_path))
    return caught.value.messages


def test_probe_without_listen_fails_validate_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[[apps]]\nname = "web"\ncmd = ["uvicorn", "app:app"]\nready = { http = "/healthz" }\n')
    assert validate_file(str(path)) == [
        f'{path}: apps[0] "web": ready: an http probe needs somewhere to connect: the app has no listen '
        '(add listen = "tcp://127.0.0.1:8000", or give the probe a port: { http = "/healthz", port = 8000 })'
    ]


def test_tcp_probe_without_listen(tmp_path: Path) -> None:
    assert errors_of(tmp_path, cmd=["x"], ready={"tcp": True}) == [
        'c.toml: apps[0]: ready: a tcp probe needs somewhere to connect: the app has no listen '
        '(add listen = "tcp://127.0.0.1:8000", or give the probe a port: { tcp = "127.0.0.1:8000" })'
    ]


@pytest.mark.parametrize("raw", [
    {"ready": {"http": "/healthz"}, "listen": "tcp://127.0.0.1:0"},
    {"ready": {"http": "/healthz", "port": 8000}},
    {"ready": {"tcp": "127.0.0.1:8000"}},
    {"ready": {"tcp": True, "port": 9000, "host": "localhost"}},
    {"ready": {"cmd": ["./check"]}},
    {"ready": "notify"},
    {"ready": "notify", "wait_ready": True},
])
def test_probes_with_somewhere_to_connect_are_fine(tmp_path: Path, raw: dict[str, Any]) -> None:
    normalize_app({"cmd": ["x"], **raw}, where=WHERE, base_dir=str(tmp_path))


def test_a_bad_listen_is_reported_once(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, cmd=["x"], ready={"http": "/h"}, listen="nowhere")
    assert len(messages) == 1 and messages[0].startswith('c.toml: apps[0]: listen: "nowhere" is not a listen address')


def test_wait_ready_with_a_probe(tmp_path: Path) -> None:
    assert errors_of(tmp_path, cmd=["x"], wait_ready=True, ready={"cmd": ["./check"]}) == [
        'c.toml: apps[0]: wait_ready: true waits for READY=1, but ready is a cmd probe '
        '(keep one; wait_ready = true is ready = "notify")'
    ]


def test_increment_var_needs_a_number(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, name="api", cmd=["x"], increment_var="PORT",
                         env={"PORT": "http"}, env_production={"PORT": "80"}, env_staging={"PORT": "x1"})
    assert messages == [
        'c.toml: apps[0] "api": increment_var: env.PORT is not a whole number (the instance number is added to it)',
        'c.toml: apps[0] "api": increment_var: env_staging.PORT is not a whole number '
        "(the instance number is added to it)",
    ]
    normalize_app({"cmd": ["x"], "increment_var": "PORT", "env": {"PORT": 3000}}, where=WHERE, base_dir=str(tmp_path))
    normalize_app({"cmd": ["x"], "increment_var": "WORKER"}, where=WHERE, base_dir=str(tmp_path))  # starts at 0


def test_an_app_cannot_depend_on_itself(tmp_path: Path) -> None:
    assert errors_of(tmp_path, script="web.py", depends_on=["db", "web"]) == [
        'c.toml: apps[0]: depends_on: "web" is this app itself (list the apps that must be ready before it starts)'
    ]


@pytest.mark.parametrize("value, text", [
    ({"tcp": "nowhere"}, 'is not a readiness setting: tcp takes true (the app\'s listen address) or "host:port"'),
    ({"tcp": 8000}, 'is not a readiness setting: tcp takes true (the app\'s listen address) or "host:port"'),
    ({"http": "/h", "port": "8000"}, "is not a readiness setting: port takes a TCP port like 8000"),
    ({"http": "/h", "port": 70000}, "is not a readiness setting: port takes a TCP port like 8000"),
    ({"http": "/h", "port": 80, "host": ""}, 'is not a readiness setting: host takes a host name or address like '
                                             '"127.0.0.1"'),
])
def test_probe_targets_are_checked_when_read(value: dict[str, Any], text: str) -> None:
    with pytest.raises(Invalid) as caught:
        to_ready(value)
    assert caught.value.text == text


def test_probe_addresses_are_normalized() -> None:
    assert to_ready({"tcp": "localhost:8000"})["address"] == "tcp://localhost:8000"
    assert to_ready({"tcp": "unix:/run/a.sock"})["address"] == "unix:/run/a.sock"
    assert to_ready({"tcp": True})["address"] is None
