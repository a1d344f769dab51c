"""Logs end to end with real processes: rotation without loss, formats, redaction, `logs`, `flush`,
and crash reports from real Python tracebacks and Node stacks."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, Corral, app, wait_until
from tests.logfiles import STAMP, all_text, log_path, read_any, rotated_count, unstamped

NODE = "/usr/bin/node"


def start(corral: Corral, workdir: Path, toml: str) -> None:
    (workdir / "corral.toml").write_text(toml)
    corral.run("start", str(workdir / "corral.toml"))


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def script(workdir: Path, name: str, body: str) -> Path:
    path = workdir / name
    path.write_text(body)
    return path


# -- nothing lost -----------------------------------------------------------------------------------
def test_a_million_lines_rotated_at_1mb_are_all_there_exactly_once(corral: Corral, workdir: Path) -> None:
    count = 1_000_000
    start(corral, workdir, f"""
[[apps]]
name = "flood"
script = "{app('flood.py')}"
args = ["{count}"]
autorestart = false
log_max_size = "1MB"
log_retain = "all"
""")
    corral.wait_status("flood", "stopped", timeout=60)
    path = log_path(corral.home, "flood")
    rotated = [Path(f) for f in os.listdir(path.parent) if f.startswith("flood-out__")]
    assert len(rotated) >= 100
    assert all(f.stat().st_size <= 1024 * 1024 for f in (path.parent / r for r in rotated))
    lines = unstamped(all_text(path))
    assert len(lines) == count
    assert [int(line[5:line.index(" ", 5)]) for line in lines] == list(range(count))


def test_a_huge_line_without_newline_is_split_never_dropped(corral: Corral, workdir: Path) -> None:
    body = "".join(chr(0x41 + i % 26) for i in range(300_000))
    huge = script(workdir, "huge.py", f"import sys\nsys.stdout.write({body!r})\n")  # no newline, ever
    start(corral, workdir, f'[[apps]]\nname = "huge"\nscript = "{huge}"\nautorestart = false\n'
                           'log_max_line = "100K"\n')
    corral.wait_status("huge", "stopped")
    pieces = unstamped(corral.log("huge"))
    assert len(pieces) == 3 and all(len(p) <= 100 * 1024 for p in pieces)
    assert "".join(pieces) == body


def test_a_partial_line_is_flushed_when_the_app_is_killed_mid_line(corral: Corral, workdir: Path) -> None:
    killer = script(workdir, "killer.py", (
        "import os, signal, sys\n"
        "sys.stdout.write('whole line\\nhalf a li')\n"
        "sys.stdout.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"))
    start(corral, workdir, f'[[apps]]\nname = "killer"\nscript = "{killer}"\nautorestart = false\n')
    corral.wait_status("killer", "errored")
    text = corral.log("killer")
    assert unstamped(text) == ["whole line", "half a li"] and text.endswith("\n")
    crash = [e for e in corral.events("killer") if e["kind"] == "crash"]
    assert len(crash) == 1 and crash[0]["data"]["signal"] == "SIGKILL"
    assert crash[0]["data"]["exc_type"] is None and crash[0]["message"] == "killed by SIGKILL (no traceback in stderr)"


# -- logs --follow, flush ----------------------------------------------------------------------------
class Follower:
    """``corral logs NAME --follow`` as a subprocess; its stdout lines arrive on a queue."""

    def __init__(self, corral: Corral, *args: str) -> None:
        self.proc = subprocess.Popen([PYTHON, "-m", "corral", "logs", *args, "--follow"], env=corral.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def take_until(self, done: Any, timeout: float) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while not done(got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"follow: timed out with {len(got)} lines, last {got[-3:]}")
            try:
                got.append(self.lines.get(timeout=left))
            except queue.Empty:
                pass
        return got

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def whole_lines(text: str) -> str:
    """Text read while the daemon writes: the last line may be half written (drop it)."""
    return text[: text.rfind("\n") + 1]


def tick_numbers(lines: list[str]) -> list[int]:
    return [int(re.search(r"tick (\d+) ", line).group(1)) for line in lines]  # type: ignore[union-attr]


def test_follow_goes_on_across_rotations(corral: Corral, workdir: Path) -> None:
    start(corral, workdir, f'[[apps]]\nname = "tick"\nscript = "{app("ticker.py")}"\nargs = ["2"]\n'
                           'log_max_size = "4K"\nlog_retain = "all"\n')
    path = log_path(corral.home, "tick")
    wait_until(lambda: size_of(path) > 0, 10, "the first lines")
    follower = Follower(corral, "tick", "--raw", "--lines", "1", "--out")
    try:
        rotations_before = rotated_count(path)
        lines = follower.take_until(lambda got: len(got) >= 400, 30)
        rotations = rotated_count(path) - rotations_before
    finally:
        follower.close()
    assert rotations >= 5, rotations
    assert all(STAMP.match(line) for line in lines)
    numbers = tick_numbers(lines)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no gap, no repeat


def test_flush_empties_logs_while_the_app_keeps_writing(corral: Corral, workdir: Path) -> None:
    start(corral, workdir, f'[[apps]]\nname = "busy"\nscript = "{app("ticker.py")}"\nargs = ["0"]\n'
                           'log_max_size = "200K"\nlog_retain = "all"\n')
    path = log_path(corral.home, "busy")
    wait_until(lambda: rotated_count(path) >= 2, 20, "two rotations")
    pid = corral.row("busy")["pid"]
    seen_before = tick_numbers(unstamped(whole_lines(all_text(path))))[-1]
    for _ in range(5):
        out = corral.run("flush", "busy").stdout
        assert str(path) in out
    wait_until(lambda: size_of(path) > 50_000, 20, "new lines after the flushes")
    row = corral.row("busy")
    assert row["status"] == "online" and row["pid"] == pid  # it kept running
    corral.run("stop", "busy")  # then read: a rotation between listing and reading would hide lines
    lines = unstamped(all_text(path))  # each: a timestamp, "tick N", the padding
    assert all(re.fullmatch(r"tick \d+ p{40}", line) for line in lines)
    numbers = tick_numbers(lines)
    assert numbers[0] > seen_before  # what was written before the flushes is gone, rotated files too
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # and nothing since is lost


# -- formats -------------------------------------------------------------------------------------------
def test_time_off_json_and_date_formats(corral: Corral, workdir: Path) -> None:
    say = script(workdir, "say.py", "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n")
    start(corral, workdir, f"""
time = false                       # a top-level default for every app

[[apps]]
name = "bare"
script = "{say}"
autorestart = false

[[apps]]
name = "js"
script = "{say}"
autorestart = false
log_type = "json"

[[apps]]
name = "moment"
script = "{say}"
autorestart = false
time = true
log_date_format = "YYYY-MM-DD HH:mm:ss Z"

[[apps]]
name = "strf"
script = "{say}"
autorestart = false
time = true
log_date_format = "%d/%m/%Y %H:%M"
""")
    for name in ("bare", "js", "moment", "strf"):
        corral.wait_status(name, "stopped")
    assert corral.log("bare") == "to out\n" and corral.log("bare", "err") == "to err\n"
    (out,) = [json.loads(line) for line in corral.log("js").splitlines()]
    assert list(out) == ["ts", "app", "instance", "stream", "message"]
    assert out["app"] == "js" and out["instance"] == 0 and out["stream"] == "out" and out["message"] == "to out"
    assert STAMP.match(out["ts"] + " ")
    assert json.loads(corral.log("js", "err"))["stream"] == "err"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d to out\n", corral.log("moment"))
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d to out\n", corral.log("strf"))


def test_compressed_rotation_keeps_log_retain_files(corral: Corral, workdir: Path) -> None:
    start(corral, workdir, f'[[apps]]\nname = "gz"\nscript = "{app("ticker.py")}"\nargs = ["0"]\n'
                           'log_max_size = "20K"\nlog_retain = 3\nlog_compress = true\n')
    path = log_path(corral.home, "gz")
    logs = path.parent
    wait_until(lambda: len([f for f in os.listdir(logs) if f.endswith(".log.gz")]) >= 3, 20, "3 gzipped files")
    corral.run("stop", "gz")

    def compressed() -> bool:  # the gzip thread (lowest priority) may be behind on a busy machine
        return all(f.endswith(".gz") for f in os.listdir(logs) if f.startswith("gz-out__"))

    wait_until(compressed, 60, "every rotated file gzipped")
    names = [f for f in os.listdir(logs) if f.startswith("gz-out__")]
    # log_retain, plus one whose compression began before it was pruned at worst
    rotated = {f.removesuffix(".tmp").removesuffix(".gz") for f in names}
    assert 1 <= len(rotated) <= 3 + 1, names
    gz = sorted(f for f in names if f.endswith(".gz"))
    lines = unstamped(read_any(logs / gz[-1]))
    numbers = tick_numbers(lines)
    assert numbers and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


# -- redaction ----------------------------------------------------------------------------------------
def test_secrets_are_redacted_in_log_files(corral: Corral, workdir: Path) -> None:
    leak = script(workdir, "leak.py", (
        "import json, sys\n"
        "print(json.dumps({'user': 'ann', 'password': 'hunter2', 'nested': {'api_token': 'tok-123456'}}))\n"
        "print('GET /x Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig')\n"
        "print('customer_ref=abc123 ok')\n"
        "print('card 4111 1111 1111 1111 charged', file=sys.stderr)\n"))
    start(corral, workdir, f"""
[[apps]]
name = "hidden"
script = "{leak}"
autorestart = false
redact_keys = ["customer_ref"]

[[apps]]
name = "shown"
script = "{leak}"
autorestart = false
redact = false
""")
    corral.wait_status("hidden", "stopped")
    corral.wait_status("shown", "stopped")
    out, err = unstamped(corral.log("hidden")), unstamped(corral.log("hidden", "err"))
    assert json.loads(out[0]) == {"user": "ann", "password": "REDACTED", "nested": {"api_token": "REDACTED"}}
    assert out[1] == "GET /x Authorization: Bearer REDACTED"
    assert out[2] == "customer_ref=REDACTED ok"
    assert err == ["card REDACTED charged"]
    text = corral.log("hidden") + corral.log("hidden", "err")
    for secret in ("hunter2", "tok-123456", "eyJhbGci", "abc123", "4111"):
        assert secret not in text
    shown = corral.log("shown") + corral.log("shown", "err")
    assert "hunter2" in shown and "eyJhbGci" in shown and "4111 1111 1111 1111" in shown


# -- the logs command ---------------------------------------------------------------------------------
def test_logs_lines_grep_json_and_since(corral: Corral, workdir: Path) -> None:
    start(corral, workdir, f'[[apps]]\nname = "t"\nscript = "{app("ticker.py")}"\nargs = ["0", "100"]\n'
                           'autorestart = false\n')
    corral.wait_status("t", "stopped")
    raw = corral.run("logs", "t", "--raw", "--out").stdout.splitlines()
    assert tick_numbers(raw) == list(range(85, 100))  # 15 by default, like PM2
    labelled = corral.run("logs", "t", "--lines", "3").stdout.splitlines()
    assert len(labelled) == 3 and all(line.startswith("t out | ") for line in labelled)
    grep = corral.run("logs", "t", "--lines", "50", "--raw", "--grep", r"tick 4\d ").stdout.splitlines()
    assert tick_numbers(grep) == list(range(40, 50))
    objs = [json.loads(line) for line in corral.run("logs", "t", "--lines", "2", "--json").stdout.splitlines()]
    assert [o["message"].split()[1] for o in objs] == ["98", "99"]
    assert all(o["app"] == "t" and o["stream"] == "out" and STAMP.match(o["ts"] + " ") for o in objs)
    assert len(corral.run("logs", "t", "--lines", "1000", "--since", "1h", "--out").stdout.splitlines()) == 100
    assert corral.run("logs", "t", "--since", "2099-01-01", "--out").stdout == ""
    bad = corral.run("logs", "t", "--since", "yesterday-ish", check=False)
    assert bad.returncode == 2 and "--since" in bad.stderr


# -- crash reports --------------------------------------------------------------------------------------
def crash_of(corral: Corral, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last crash as shown by `describe --json`, and the crash event of `events --json`."""
    crash = wait_until(lambda: json.loads(corral.run("describe", name, "--json").stdout)["last_crash"], 15,
                       f"a crash report for {name}")
    events = [e for e in corral.events(name) if e["kind"] == "crash"]
    assert events, "no crash event"
    return crash, events[-1]


@pytest.mark.parametrize(("body", "exc_type", "classification"), [
    ("def handler(req):\n    return req['user'] + 1\nhandler({'user': 'x'})\n", "TypeError", "code_bug"),
    ("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", "ConnectionRefusedError", "external"),
    ("raise ValueError('bad input: quantity must be > 0')\n", "ValueError", "user_error"),
])
def test_crash_report_from_a_python_traceback(corral: Corral, workdir: Path, body: str, exc_type: str,
                                               classification: str) -> None:
    boom = script(workdir, "boom.py", "print('starting')\n" + body)
    start(corral, workdir, f'[[apps]]\nname = "boom"\nscript = "{boom}"\nautorestart = false\n')
    crash, event = crash_of(corral, "boom")
    assert crash["exc_type"] == exc_type and crash["classification"] == classification
    assert crash["language"] == "python" and crash["code"] == 1 and crash["signal"] is None
    assert crash["is_code_bug"] is (classification == "code_bug")
    assert any("boom.py" in frame for frame in crash["frames"])
    assert crash["tail"][0].startswith("Traceback") and crash["tail"][-1].startswith(exc_type)
    assert event["data"]["exc_type"] == exc_type and event["instance"] == 0
    assert event["message"].startswith(f"{exc_type}: ") and f"({classification}; exit code 1)" in event["message"]
    human = corral.run("describe", "boom").stdout
    assert "last crash:" in human and exc_type in human
    assert f"crash        {exc_type}" in corral.run("events", "boom").stdout


@pytest.mark.skipif(not os.path.exists(NODE), reason="node is not installed")
@pytest.mark.parametrize(("kind", "exc_type", "classification"), [
    ("type", "TypeError", "code_bug"), ("refused", "Error", "external")])
def test_crash_report_from_a_node_stack(corral: Corral, workdir: Path, kind: str, exc_type: str,
                                        classification: str) -> None:
    start(corral, workdir, f'[[apps]]\nname = "nodeboom"\nscript = "{app("crash.js")}"\nargs = ["{kind}"]\n'
                           f'interpreter = "{NODE}"\nautorestart = false\n')
    crash, event = crash_of(corral, "nodeboom")
    assert crash["language"] == "node" and crash["exc_type"] == exc_type
    assert crash["classification"] == classification and event["data"]["classification"] == classification
    assert any("crash.js" in frame for frame in crash["frames"])
    if kind == "refused":
        assert crash["code_name"] == "ECONNREFUSED"


def test_a_requested_stop_or_clean_exit_is_no_crash(corral: Corral, workdir: Path) -> None:
    start(corral, workdir, f"""
[[apps]]
name = "calm"
script = "{app('ticker.py')}"
args = ["50"]

[[apps]]
name = "done"
script = "{app('crash.py')}"
args = ["3"]
autorestart = false
stop_exit_codes = [3]
""")
    corral.wait_status("calm", "online")
    corral.wait_status("done", "stopped")
    corral.run("stop", "calm")
    kinds = [e["kind"] for e in corral.events()]
    assert "exit" in kinds and "stopped" in kinds
    assert "crash" not in kinds
    assert json.loads(corral.run("describe", "calm", "--json").stdout)["last_crash"] is None
