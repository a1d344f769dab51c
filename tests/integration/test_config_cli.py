"""Ecosystem files as users bring them (PM2's .js and .json unchanged) and the exact errors for mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Corral, app, wait_until

NODE = shutil.which("node")
CLUSTER_PRELOAD = str(Path(__file__).resolve().parents[2] / "corral" / "process" / "cluster_preload.cjs")


def records(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_pm2_ecosystem_config_js_loads_unchanged(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    (workdir / "server.js").write_text(
        "const fs = require('fs');\n"
        f"fs.appendFileSync({json.dumps(str(out))}, JSON.stringify({{node: process.env.NODE_ENV, "
        "port: process.env.PORT, instance: process.env.NODE_APP_INSTANCE, argv: process.execArgv}) + '\\n');\n"
        "setInterval(() => {}, 1000);\n")
    (workdir / "ecosystem.config.js").write_text(f"""
module.exports = {{
  apps: [{{
    name: "api",
    script: "./server.js",
    instances: 2,
    exec_mode: "cluster",
    node_args: "--max-old-space-size=64",
    max_memory_restart: "300M",
    env: {{ NODE_ENV: "development", PORT: 3000 }},
    env_production: {{ NODE_ENV: "production", PORT: 8080 }},
  }}, {{
    name: "worker",
    script: {json.dumps(app('record.py'))},
    args: [{json.dumps(str(out))}, "ROLE"],
    interpreter: "python3",
    env_production: {{ ROLE: "prod-worker" }},
  }}],
  deploy: {{ production: {{ user: "deploy", host: ["example.com"], ref: "origin/main" }} }},
}};
""")
    result = corral.run("start", "ecosystem.config.js", "--env", "production", cwd=str(workdir))
    assert 'not supported yet' not in result.stderr  # exec_mode and max_memory_restart: implemented
    wait_until(lambda: len(records(out)) == 3, what="three instances to report")
    node = sorted((r for r in records(out) if "node" in r), key=lambda r: r["instance"])
    assert [(r["node"], r["port"], r["instance"]) for r in node] == [("production", "8080", "0"), ("production", "8080", "1")]
    assert node[0]["argv"] == ["-r", CLUSTER_PRELOAD, "--max-old-space-size=64"]  # cluster mode: corral's preload
    assert [r["env"]["ROLE"] for r in records(out) if "env" in r] == ["prod-worker"]
    # cluster mode: launching until a server listens, or listen_timeout (3 s) for this one that never does
    wait_until(lambda: {(r["name"], r["status"]) for r in corral.ls()} == {("api", "online"), ("worker", "online")},
               what="every instance online")


def test_pm2_ecosystem_config_json_loads_unchanged(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    (workdir / "ecosystem.config.json").write_text(json.dumps({"apps": [{
        "name": "jsonapp", "script": app("record.py"), "args": f"{out} GREETING",
        "exec_interpreter": "python3", "watch": False, "autorestart": True, "max_restarts": 5,
        "env": {"GREETING": "hello"},
    }]}))
    corral.run("start", str(workdir / "ecosystem.config.json"))
    wait_until(lambda: records(out), what="the app record")
    assert records(out)[0]["env"]["GREETING"] == "hello"


@pytest.mark.parametrize("body, message", [
    ('[[apps]]\nname = "web"\ncmd = ["x"]\nkill_timeout = "5 parsecs"\n',
     'corral.toml: apps[0] "web": kill_timeout: "5 parsecs" is not a duration (try "5s" or "500ms")'),
    ('[[apps]]\nname = "web"\ncmd = ["x"]\nautorestat = false\n',
     'corral.toml: apps[0] "web": autorestat: unknown key (did you mean "autorestart"?)'),
    ('[[apps]]\nname = "web"\n', 'corral.toml: apps[0] "web": one of "script" or "cmd" is required'),
    ('[[apps]]\nname = "web"\ncmd = ["x"]\nredact_patterns = ["sk_[a-z]+", "(a+)+$"]\n',
     'corral.toml: apps[0] "web": redact_patterns[1]: "(a+)+$" backtracks catastrophically: its time grows '
     'exponentially with the length of a line (a repeat inside a repeat, like (a+)+, or alternatives that match '
     'the same text inside a repeat, like (x|x)*); rewrite it'),
])
def test_bad_config_is_one_clear_line_and_exit_2(corral: Corral, workdir: Path, body: str, message: str) -> None:
    (workdir / "corral.toml").write_text(body)
    for command in (["start", "corral.toml"], ["validate", "corral.toml"]):
        result = corral.run(*command, check=False, cwd=str(workdir))
        assert result.returncode == 2
        assert result.stderr == f"corral: {message}\n"
        assert result.stdout == ""
    assert not Path(corral.home, "corral.sock").exists()  # nothing was started, not even the daemon


@pytest.mark.parametrize("args, message", [
    (["stop", "ghost"], 'corral: no app, id or namespace named "ghost" (apps: none yet)\n'),
    (["start", "missing.py"], "corral: missing.py: no such file\n"),
    (["start", "missing.toml"], "corral: missing.toml: no such file\n"),
    (["signal", "SIGNOPE", "x"], 'corral: unknown signal "SIGNOPE" (try SIGUSR1, SIGHUP, SIGTERM...)\n'),
])
def test_bad_cli_input_is_one_line_and_exit_2(corral: Corral, workdir: Path, args: list[str], message: str) -> None:
    if args[0] == "signal":
        corral.run("start", "--name", "x", "--", "sleep", "600")
    if args[0] == "stop":
        corral.run("ping")  # without a daemon, stop says that none runs (test_start_stop)
    result = corral.run(*args, check=False, cwd=str(workdir))
    assert (result.returncode, result.stderr) == (2, message)


def test_unknown_command_is_one_line(corral: Corral) -> None:
    result = corral.run("explode", check=False)
    assert (result.returncode, result.stderr) == (2, 'corral: unknown command "explode" (see `corral --help`)\n')


def test_validate_says_ok(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text('[[apps]]\nname = "web"\ncmd = ["sleep", "1"]\n')
    result = corral.run("validate", str(workdir / "corral.toml"))
    assert result.stdout.strip().endswith("corral.toml: ok")


def test_start_again_applies_changes_and_leaves_unchanged_apps_alone(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    toml = workdir / "corral.toml"
    template = """
[[apps]]
name = "a"
script = "{app}"
args = ["{out}", "COLOR"]
env = {{ COLOR = "{color}" }}
[[apps]]
name = "b"
cmd = ["sleep", "600"]
"""
    toml.write_text(template.format(app=app("record.py"), out=out, color="red"))
    corral.run("start", str(toml))
    wait_until(lambda: records(out), what="first start")
    b_pid = corral.wait_status("b", "online")["pid"]
    toml.write_text(template.format(app=app("record.py"), out=out, color="blue"))
    result = corral.run("start", str(toml))
    assert "a: configuration changed, restarted" in result.stderr and "b: already running" in result.stderr
    wait_until(lambda: len(records(out)) == 2, what="the restart")
    assert [r["env"]["COLOR"] for r in records(out)] == ["red", "blue"]
    assert corral.row("b")["pid"] == b_pid


def test_validate_prints_a_pm2_files_warnings_and_passes(corral: Corral, workdir: Path) -> None:
    (workdir / "a.js").write_text("")
    path = workdir / "process.json"
    path.write_text('{"name": "api", "script": "a.js", "time_format": "HH:mm", "exec_mode": "fork", '
                    '"merge_logs": true, "combine_logs": false}')
    result = corral.run("validate", str(path), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f'corral: warning: {path}: apps[0] "api": time_format: "HH:mm" ignored: not a key PM2 or corral reads '
        "(corral's README lists the keys it reads, in \"Ecosystem files\")",
        f'corral: warning: {path}: apps[0] "api": combine_logs: false ignored: "merge_logs" is the same setting '
        "and is used (give one of them)",
    ]
    assert result.stdout == f"{path}: ok\n"
    toml = workdir / "corral.toml"
    toml.write_text('[[apps]]\nname = "api"\nscript = "a.js"\ntime_format = "HH:mm"\n')
    refused = corral.run("validate", str(toml), check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f'corral: {toml}: apps[0] "api": time_format: unknown key (app keys: ')


def test_validate_checks_the_deploy_table(corral: Corral, workdir: Path) -> None:
    """``corral deploy`` reads [deploy]; ``validate`` says what it would refuse, before a deploy does."""
    path = workdir / "corral.toml"
    path.write_text('[deploy]\nrepo = "x"\npath = "/srv/x"\nbake = "soon"\n[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\n')
    result = corral.run("validate", str(path), check=False)
    assert (result.returncode, result.stderr) == (
        2, f"corral: {path}: deploy: bake: 'soon' is not a duration (write it like \"60s\" or \"5m\")\n")
    path.write_text('[deploy.production]\nrepo = "x"\npath = "/srv/x"\nhost = "web1"\n'
                    '[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\n')
    assert corral.run("validate", str(path)).stdout == f"{path}: ok\n"  # remote: the ansible export's job


def test_validate_before_the_first_deploy_warns_that_current_is_not_there_yet(corral: Corral, workdir: Path) -> None:
    srv = workdir / "srv"
    path = workdir / "corral.toml"
    path.write_text(f'[deploy]\nrepo = "x"\npath = "{srv}"\n[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\n'
                    f'cwd = "{srv}/current"\n')
    result = corral.run("validate", str(path))
    assert result.stdout == f"{path}: ok\n"
    assert result.stderr == (f'corral: warning: {path}: apps[0] "a": cwd: "{srv}/current" does not exist yet '
                             "(`corral deploy` makes it)\n")
