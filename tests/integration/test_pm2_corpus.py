"""The PM2 corpus (``tests/pm2corpus/``): ecosystem files shaped like the ones PM2 users write, each
run end to end as PM2 would run it: every app online, serving where it serves (the ports are in the
apps' code, not in the files), and stopping through its own SIGINT handler (never SIGKILL).

Each folder is copied to a temporary directory first (apps write beside themselves, and the watch
case edits its sources).  Cluster mode, ``process.send('ready')`` and ``shutdown_with_message``
go through Node's IPC channel (``corral.daemon.nodeapps``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, Corral, wait_until

CORPUS = ROOT / "tests" / "pm2corpus"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@dataclass
class Case:
    folder: str
    file: str
    apps: dict[str, int]  # name -> instances
    serves: dict[int, str] = field(default_factory=dict)  # port -> what the body starts with
    marks: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)  # log (in the copy, or
    # "@name": logs/name.log) -> a line its handler writes
    env: str | None = None
    warnings: list[str] = field(default_factory=list)  # exact, {file} for the file's path
    up: list[tuple[str, str]] = field(default_factory=list)  # lines that say its handlers are in place


CASES = [
    pytest.param(Case("cluster-api", "ecosystem.config.js", {"cluster-api": 2}, {29101: "cluster-api "},
                      {"@cluster-api-out-0": "cluster-api: SIGINT, closing the server",
                       "@cluster-api-out-1": "cluster-api: SIGINT, closing the server"}),
                 id="cluster-api"),
    pytest.param(Case("wait-ready", "ecosystem.config.js", {"ready-api": 1}, {29102: "ready-api ok"},
                      {"@ready-api-out": "ready-api: SIGINT, draining"}),
                 id="wait-ready"),
    pytest.param(Case("sigint-worker", "process.json", {"queue-worker": 1}, {},
                      {"@queue-worker-out": "queue-worker: queue closed"},
                      up=[("@queue-worker-out", "queue-worker: consuming emails")]), id="sigint-worker"),
    pytest.param(Case("python-interpreter", "ecosystem.config.js", {"py-api": 1}, {29104: "py-api hello"},
                      {"logs/py-api.out.log": "py-api: SIGINT, closing the server"}), id="python-interpreter"),
    pytest.param(Case("bash-scripts", "ecosystem.json", {"backup-loop": 1, "health-reporter": 1}, {},
                      {"@backup-loop-out": "backup-loop: SIGINT, last run finished",
                       "@health-reporter-out": "health-reporter: SIGINT, stopping"},
                      up=[("@backup-loop-out", "backup-loop: backing up to /var/backups"),
                          ("@health-reporter-out", "health-reporter: reporting every 1s")]), id="bash-scripts"),
    pytest.param(Case("devnull-logs", "ecosystem.config.js", {"chatty": 2}, {},
                      [("marks.txt", "chatty 0: SIGINT"), ("marks.txt", "chatty 1: SIGINT")],
                      up=[("marks.txt", "chatty 0: up"), ("marks.txt", "chatty 1: up")]), id="devnull-logs"),
    pytest.param(Case("unknown-keys", "ecosystem.config.js", {"tolerant": 1}, {29107: "tolerant ok"},
                      {"@tolerant-out": "tolerant: SIGINT, bye"}, warnings=[
                          '{file}: apps[0] "tolerant": time_format: "HH:mm:ss" ignored: not a key PM2 or corral '
                          "reads (corral's README lists the keys it reads, in \"Ecosystem files\")",
                          '{file}: apps[0] "tolerant": owner: "team-payments" ignored: not a key PM2 or corral '
                          "reads (corral's README lists the keys it reads, in \"Ecosystem files\")",
                          '{file}: app "tolerant": not supported yet, ignored: instance_var, '
                          "source_map_support, vizion",
                      ]), id="unknown-keys"),
    pytest.param(Case("express-www", "ecosystem.config.js", {"shop": 1}, {29108: "shop production prod"},
                      {"@shop-out": "shop: SIGINT, closing"}, env="production", warnings=[]),  # max_memory_restart works
                 id="express-www"),
    pytest.param(Case("python-cmd", "process.json", {"metrics-agent": 1}, {},
                      {"@metrics-agent-out": "metrics-agent: SIGINT, flushing the last samples"},
                      up=[("@metrics-agent-out", "metrics-agent: sampling")]), id="python-cmd"),
    pytest.param(Case("multi-app", "ecosystem.config.js", {"gateway": 1, "mailer": 1}, {29110: "gateway production"},
                      {"@gateway-out": "gateway: SIGINT, closing", "@mailer-out": "mailer: SIGINT, queue saved"},
                      env="production", warnings=[],  # cron_restart is implemented (corral jobs: restart:mailer)
                      up=[("@mailer-out", "mailer: mode live")]),
                 id="multi-app"),
    pytest.param(Case("combined-log", "ecosystem.config.js", {"ingest": 2}, {},
                      {"logs/ingest-combined.log": "ingest 0: SIGINT, done", "logs/ingest-out.log": "ingest 1: SIGINT, done",
                       "logs/ingest-err.log": "ingest 1: no backlog"},
                      up=[("logs/ingest-combined.log", "ingest 0: started"),
                          ("logs/ingest-combined.log", "ingest 1: started")]), id="combined-log"),
    pytest.param(Case("watch-dev", "ecosystem.config.js", {"dev-server": 1}, {29112: "dev-server v1"},
                      {"dev-server.log": "dev-server: SIGINT, closing"}), id="watch-dev"),
    pytest.param(Case("shutdown-message", "ecosystem.config.js", {"graceful-msg": 1}, {29113: "graceful-msg ok"},
                      {"@graceful-msg-out": "graceful-msg: shutdown message, closing"}),
                 id="shutdown-message"),
]


def test_the_corpus_is_large_enough() -> None:
    folders = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert len(folders) >= 12
    assert folders == sorted(case.values[0].folder for case in CASES)


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode()


def answers(port: int) -> str | None:
    try:
        return get(port)
    except OSError:
        return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def log_text(corral: Corral, copy: Path, where: str) -> str:
    path = Path(corral.home) / "logs" / f"{where[1:]}.log" if where.startswith("@") else copy / where
    return path.read_text(errors="replace") if path.exists() else ""


def all_online(corral: Corral, apps: dict[str, int]) -> bool:
    rows = [r for r in corral.ls() if r["name"] in apps]
    return len(rows) == sum(apps.values()) and all(r["status"] == "online" for r in rows)


@pytest.mark.parametrize("case", CASES)
def test_pm2_file_runs_as_under_pm2(corral: Corral, workdir: Path, case: Case) -> None:
    busy = [port for port in case.serves if not port_free(port)]
    assert not busy, f"ports the corpus apps use are taken on this machine: {busy}"
    copy = workdir / case.folder
    shutil.copytree(CORPUS / case.folder, copy, symlinks=True)
    path = str(copy / case.file)
    start = corral.run("start", path, *(["--env", case.env] if case.env else []), cwd=str(copy))
    warned = [line.removeprefix("corral: warning: ") for line in start.stderr.splitlines()
              if line.startswith("corral: warning: ")]
    assert warned == [w.format(file=path) for w in case.warnings]

    wait_until(lambda: all_online(corral, case.apps), 20, f"{', '.join(case.apps)} online")
    for port, expected in case.serves.items():
        body = wait_until(lambda port=port: answers(port), 10, f"an answer on port {port}")
        assert body.startswith(expected), body
    for where, line in case.up:
        wait_until(lambda where=where, line=line: line in log_text(corral, copy, where), 10, f"{line!r} in {where}")
    if case.folder == "watch-dev":
        _watch_dev(corral, copy)
    if case.folder == "devnull-logs":
        _devnull_logs(corral)

    pids = {r["pid"] for r in corral.ls() if r["name"] in case.apps}
    corral.run("stop", "all")
    assert all(r["status"] == "stopped" for r in corral.ls())
    for where, line in (case.marks.items() if isinstance(case.marks, dict) else case.marks):
        wait_until(lambda where=where, line=line: line in log_text(corral, copy, where), 5,
                   f"{line!r} in {where}")
    events = corral.events("all", 1000)
    assert not [e for e in events if e["kind"] == "kill"], "an app needed SIGKILL: its handler did not run"
    described = json.loads(corral.run("describe", "all", "--json").stdout)
    exits = [i["last_exit"] for app in (described if isinstance(described, list) else [described])
             for i in app["instances"]]
    assert {e["pid"] for e in exits} == pids
    assert all((e["code"], e["signal"]) == (0, None) for e in exits), exits  # exit(0) from the handler


def _watch_dev(corral: Corral, copy: Path) -> None:
    """Ignored changes (node_modules, *.log, its own log) restart nothing; a source change restarts
    it once, through its SIGINT handler, and the new code serves."""
    wait_until(lambda: [e for e in corral.events("dev-server") if e["kind"] == "watch"], 10, "the watch in place")
    assert [e["message"] for e in corral.events("dev-server") if e["kind"] == "watch"] == ["watching src, server.js"]
    (copy / "node_modules" / "dep" / "index.js").write_text("module.exports = {changed: true};\n")
    (copy / "notes.log").write_text("x\n")
    (copy / "src" / "message.js").write_text('module.exports = () => "dev-server v2";\n')
    wait_until(lambda: (answers(29112) or "").startswith("dev-server v2"), 15, "the new code to serve")
    row = corral.row("dev-server")
    assert row["restarts"] == 1 and row["status"] == "online"
    watch = [e["message"] for e in corral.events("dev-server") if e["kind"] == "watch"]
    assert watch == ["watching src, server.js", "changed: src/message.js; restarting"]
    assert "dev-server: SIGINT, closing" in (copy / "dev-server.log").read_text()


def _devnull_logs(corral: Corral) -> None:
    """/dev/null stays the device, no file is made beside it or in logs/, and flush leaves it be."""
    before = {n for n in os.listdir("/dev") if n.startswith(("null", "NULL"))}
    wait_until(lambda: all(r["restarts"] == 0 for r in corral.ls()), 2, "no restart")
    flushed = corral.run("flush", "chatty")
    assert flushed.returncode == 0 and "/dev/null" not in flushed.stdout
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert {n for n in os.listdir("/dev") if n.startswith(("null", "NULL"))} == before
    assert not [n for n in os.listdir(Path(corral.home) / "logs") if n.startswith("chatty")]
    described = json.loads(corral.run("describe", "chatty", "--json").stdout)
    assert [(i["out_log"], i["err_log"]) for i in described["instances"]] == [("/dev/null", "/dev/null")] * 2
