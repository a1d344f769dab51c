"""Which apps are Node apps in PM2's cluster mode, or get Node's IPC channel: decided from the spec
alone (``config.command.node_mode``), with PM2's rules; and the two settings that ask for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.config.command import node_mode, resolve_argv, runs_node, with_preload
from corral.config.errors import ConfigError
from corral.config.normalize import normalize_app
from corral.config.policies import restart_policy
from corral.config.spec import AppSpec


def spec(tmp_path: Path, **raw: Any) -> AppSpec:
    return AppSpec.from_dict(normalize_app(raw, where="c.json: apps[0]", base_dir=str(tmp_path)))


@pytest.mark.parametrize("raw, node", [
    ({"script": "server.js"}, True),
    ({"script": "server.mjs"}, True),
    ({"script": "server.cjs"}, True),
    ({"script": "bin/www", "interpreter": "node"}, True),
    ({"script": "bin/www", "interpreter": "/usr/local/bin/nodejs"}, True),
    ({"script": "server.js", "interpreter": "bun"}, False),
    ({"script": "server.js", "interpreter": "none"}, False),
    ({"script": "app.py"}, False),
    ({"cmd": ["node", "--max-old-space-size=64", "server.js"]}, True),
    ({"cmd": ["/usr/bin/node20", "server.js"]}, True),
    ({"cmd": ["npm", "start"]}, False),  # npm is node too, but the app is its child: no channel for it
    ({"cmd": ["node server.js"], "shell": True}, False),
])
def test_runs_node(tmp_path: Path, raw: dict[str, Any], node: bool) -> None:
    assert runs_node(spec(tmp_path, **raw)) is node


@pytest.mark.parametrize("raw, mode", [
    ({"script": "a.js"}, (False, False)),  # fork mode, one instance: untouched
    ({"script": "a.js", "instances": 2}, (True, True)),  # PM2: instances without exec_mode is cluster
    ({"script": "a.js", "instances": 4, "exec_mode": "fork"}, (False, False)),
    ({"script": "a.js", "exec_mode": "cluster"}, (True, True)),
    ({"script": "a.js", "exec_mode": "cluster_mode"}, (True, True)),
    ({"script": "a.js", "wait_ready": True}, (False, True)),
    ({"script": "a.js", "shutdown_with_message": True}, (False, True)),
    ({"script": "a.py", "instances": 2, "exec_mode": "cluster", "wait_ready": True}, (False, False)),
    ({"cmd": ["python3", "-m", "http.server"], "instances": 2}, (False, False)),
])
def test_node_mode(tmp_path: Path, raw: dict[str, Any], mode: tuple[bool, bool]) -> None:
    made = spec(tmp_path, **raw)
    assert node_mode(made) == mode
    assert node_mode(made.to_dict()) == mode  # the same from the stored dict


def test_cluster_mode_is_ready_when_it_listens_or_after_listen_timeout(tmp_path: Path) -> None:
    assert restart_policy(spec(tmp_path, script="a.js", instances=2)).ready_mode == "delay"
    assert restart_policy(spec(tmp_path, script="a.js", instances=2, wait_ready=True)).ready_mode == "notify"
    assert restart_policy(spec(tmp_path, script="a.js")).ready_mode == "auto"


def test_the_preload_comes_before_the_app_and_its_node_options(tmp_path: Path) -> None:
    made = spec(tmp_path, script="a.js", node_args="--max-old-space-size=64", args=["--port", "1"])
    argv = with_preload(resolve_argv(made, "python3"), "/p/cluster_preload.cjs")
    assert argv == ["node", "-r", "/p/cluster_preload.cjs", "--max-old-space-size=64", str(tmp_path / "a.js"),
                    "--port", "1"]


@pytest.mark.parametrize("value, normalized", [("fork", "fork"), ("cluster", "cluster"),
                                                ("cluster_mode", "cluster"), ("fork_mode", "fork")])
def test_exec_mode_takes_pm2_spellings(tmp_path: Path, value: str, normalized: str) -> None:
    made = normalize_app({"script": "a.js", "exec_mode": value}, where="c", base_dir=str(tmp_path))
    assert made["exec_mode"] == normalized and made["ignored"] == []


def test_a_wrong_exec_mode_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_app({"script": "a.js", "exec_mode": "threads"}, where="c.json: apps[0]", base_dir=str(tmp_path))
    assert str(caught.value) == 'c.json: apps[0]: exec_mode: "threads" is not an exec mode (use "cluster" or "fork")'


def test_shutdown_with_message_is_a_setting_not_an_ignored_key(tmp_path: Path) -> None:
    made = normalize_app({"script": "a.js", "shutdown_with_message": True}, where="c", base_dir=str(tmp_path))
    assert made["shutdown_with_message"] is True and made["ignored"] == []
