"""The event stream over the control socket (``subscribe``), with a real daemon and real apps:
``corral events --follow``, slow and vanishing subscribers, ``ping --json``."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import PYTHON, Corral, app, wait_until


class Follower:
    """``corral events --follow ...`` in the background, its stdout lines read with deadlines."""

    def __init__(self, corral: Corral, *args: str) -> None:
        self.proc = subprocess.Popen([PYTHON, "-m", "corral", "events", "--follow", *args], env=corral.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._next = 0  # lines before this one were matched already
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, needle: str, timeout: float = 20.0) -> str:
        """The next line (after the last one returned) that contains ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._next, len(self.seen)):
                if needle in self.seen[i]:
                    self._next = i + 1
                    return self.seen[i]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {needle!r} after {timeout}s; saw: {self.seen[-20:]}")
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                pass

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


def ping(corral: Corral) -> dict[str, Any]:
    return json.loads(corral.run("ping", "--json").stdout)


def subscribers(corral: Corral) -> list[dict[str, Any]]:
    """The clients' subscriptions (not a daemon feature's, such as the alert service's, named)."""
    return [s for s in ping(corral)["bus"]["subscribers"] if not s.get("name")]


def raw_subscribe(corral: Corral, args: dict[str, Any]) -> socket.socket:
    """A client that subscribes and then does whatever the test says (here: never reads)."""
    if corral.daemon_pid() is None:
        corral.run("ping")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.path.join(corral.home, "corral.sock"))
    sock.sendall(json.dumps({"v": 1, "id": 1, "op": "subscribe", "args": args}).encode() + b"\n")
    return sock


def daemon_fds(corral: Corral) -> int:
    return len(os.listdir(f"/proc/{corral.daemon_pid()}/fd"))


def test_events_follow_prints_history_then_a_live_crash_of_the_followed_app_only(corral: Corral) -> None:
    corral.run("start", app("ticker.py"), "--name", "api", "--", "500")
    corral.run("start", app("ticker.py"), "--name", "other", "--", "500")
    pid = corral.wait_status("api", "online")["pid"]
    follower = Follower(corral, "api")
    try:
        follower.wait_line("spawn        pid")  # the history first, as `corral events api` prints it
        wait_until(lambda: len(subscribers(corral)) == 1, 20, "the follower to subscribe")
        os.kill(pid, signal.SIGKILL)  # nobody asked for this: a crash, seen live
        crash = follower.wait_line("crash")
        assert "api[0]" in crash and "killed by SIGKILL" in crash
        follower.wait_line("exit ")
        corral.run("restart", "other")
        corral.run("restart", "api")
        follower.wait_line("restart ")  # after other's restart: any line of other's came before it
        code, err = follower.interrupt()
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
            follower.proc.wait()
    assert code == 130 and err == ""  # Ctrl-C ends it quietly
    assert not [line for line in follower.seen if "other" in line]
    wait_until(lambda: subscribers(corral) == [], 20, "the follower's subscription to be closed")


def test_events_follow_json_prints_one_object_per_line_and_all_adds_state_changes(corral: Corral) -> None:
    corral.run("ping")  # events never starts a daemon
    follower = Follower(corral, "--json", "--all")
    try:
        wait_until(lambda: len(subscribers(corral)) == 1, 20, "the follower to subscribe")
        corral.run("start", app("ticker.py"), "--name", "api", "--", "500")
        added = json.loads(follower.wait_line('"app_added"'))
        assert added["app"] == "api" and added["data"]["restored"] is False
        change = json.loads(follower.wait_line('"state"'))
        assert change["data"] == {"from": "stopped", "to": "launching", "expected": True, "cause": "Start"}
        follower.interrupt()
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
            follower.proc.wait()
    kinds = {e["kind"] for e in corral.events("api")}
    assert "app_added" in kinds and "state" not in kinds  # state changes are live only


def test_a_subscriber_that_never_reads_stalls_nothing_and_its_drops_are_counted(corral: Corral,
                                                                                workdir: Path) -> None:
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "loop"
script = "{app('crash.py')}"
args = ["1", "0"]
min_uptime = 0
""")
    stuck = raw_subscribe(corral, {"all": True, "maxsize": 5})
    try:
        wait_until(lambda: len(subscribers(corral)) == 1, 20, "the stuck subscriber")
        corral.run("start", str(workdir / "corral.toml"))  # restarts at once, forever: a stream of events

        def dropped() -> int:
            return int(ping(corral)["bus"]["dropped"])

        wait_until(lambda: dropped() > 0, 120, "events to be dropped for the stuck subscriber")
        started = time.monotonic()
        corral.run("ls")
        assert time.monotonic() - started < 10  # other commands are served while it is stuck
        stats = subscribers(corral)
        assert len(stats) == 1 and stats[0]["dropped"] > 0 and stats[0]["queued"] <= 5
        info = json.loads(corral.run("describe", "loop", "--json").stdout)
        assert info["bus"]["dropped"] >= stats[0]["dropped"]
        rows = corral.events("loop", 2000)
        assert any(e["kind"] == "crash" for e in rows)  # the store never loses one
    finally:
        stuck.close()
    wait_until(lambda: subscribers(corral) == [], 20, "the stuck subscription to be closed")


def test_subscribers_that_disconnect_leave_nothing_behind(corral: Corral) -> None:
    corral.run("start", app("ticker.py"), "--name", "api", "--", "500")
    corral.wait_status("api", "online")
    before = daemon_fds(corral)
    socks = [raw_subscribe(corral, {"target": "api", "history": 5}) for _ in range(20)]
    wait_until(lambda: len(subscribers(corral)) == 20, 20, "20 subscribers")
    for sock in socks:
        sock.close()
    wait_until(lambda: subscribers(corral) == [], 20, "every subscription to be closed")
    wait_until(lambda: daemon_fds(corral) <= before, 20, "the daemon's connections to be closed")
    corral.run("restart", "api")  # publishing to nobody is fine
    assert ping(corral)["bus"]["subscribers"] == []


def test_events_follow_of_an_unknown_app_is_a_usage_error(corral: Corral) -> None:
    corral.run("ping")
    result = corral.run("events", "nope", "--follow", check=False, timeout=30)
    assert result.returncode == 2 and 'no app, id or namespace named "nope"' in result.stderr
