"""Shared fixtures: every test gets its own CORRAL_HOME and its own daemon, torn down even on failure.

After each test no process started under that home may be left: the teardown
looks for any live process whose environment names the home and fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
PYTHON = sys.executable
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def app(name: str) -> str:
    return str(APPS / name)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def processes_with_env(key: str, value: str) -> list[int]:
    needle = f"{key}={value}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env and pid_alive(int(name)):
            found.append(int(name))
    return found


class Corral:
    def __init__(self, home: str) -> None:
        self.home = home
        self.env = {**os.environ, "CORRAL_HOME": home, "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("NO_COLOR", None)
        self.daemons: list[int] = []  # every daemon pid seen, in order
        self.restarts_expected = 0

    def expect_daemon_restart(self) -> None:
        """This test stops or kills its daemon on purpose: one more daemon may follow."""
        self.restarts_expected += 1

    def silently_replaced(self) -> int:
        """How many daemons this test saw beyond the first and the restarts it expected: a daemon
        that died and was replaced behind the test's back (the fixture fails the test on any)."""
        return max(0, len(self.daemons) - 1 - self.restarts_expected)

    def _note_daemon(self) -> None:
        pid = self.daemon_pid()
        if pid and pid not in self.daemons:
            self.daemons.append(pid)

    def run(self, *args: str, check: bool = True, timeout: float = 60, cwd: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [PYTHON, "-m", "corral", *args], capture_output=True, text=True, timeout=timeout,
            env={**self.env, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
        )
        self._note_daemon()
        if check and proc.returncode != 0:
            raise AssertionError(f"corral {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def ls(self) -> list[dict[str, Any]]:
        return json.loads(self.run("ls", "--json").stdout)

    def row(self, name: str, instance: int = 0) -> dict[str, Any]:
        for row in self.ls():
            if row["name"] == name and row["instance"] == instance:
                return row
        raise AssertionError(f"{name}[{instance}] is not listed")

    def wait_status(self, name: str, status: str, timeout: float = 10.0, instance: int = 0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            row = self.row(name, instance)
            return row if row["status"] == status else None

        return wait_until(check, timeout, f"{name}[{instance}] to be {status}")

    def events(self, name: str = "all", lines: int = 500) -> list[dict[str, Any]]:
        return json.loads(self.run("events", name, "--lines", str(lines), "--json").stdout)

    def daemon_pid(self) -> int | None:
        try:
            with open(os.path.join(self.home, "daemon.lock")) as f:
                text = f.read().split()
        except FileNotFoundError:
            return None
        pid = int(text[-1]) if text else None
        return pid if pid and pid_alive(pid) else None

    def app_processes(self) -> list[int]:
        """Live processes started under this home, the daemon excluded."""
        daemon = self.daemon_pid()
        return [p for p in processes_with_env("CORRAL_HOME", self.home) if p != daemon]

    def log(self, name: str, stream: str = "out") -> str:
        path = Path(self.home) / "logs" / f"{name}-{'out' if stream == 'out' else 'error'}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def teardown(self) -> list[int]:
        subprocess.run([PYTHON, "-m", "corral", "kill"], env=self.env, capture_output=True, timeout=60)
        daemon = self.daemon_pid()
        if daemon:  # `corral kill` waits for the daemon to exit: one still here is a bug
            os.kill(daemon, signal.SIGKILL)
            wait_until(lambda: not pid_alive(daemon), 10, "the daemon to die")
        leaked = processes_with_env("CORRAL_HOME", self.home)
        for pid in leaked:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return leaked + ([daemon] if daemon else [])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def corral(request: pytest.FixtureRequest) -> Any:
    home = tempfile.mkdtemp(prefix="corral-", dir="/tmp")
    c = Corral(home)
    yield c
    leaked = c.teardown()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        log = Path(home) / "daemon.log"
        if log.exists():
            print("---- daemon.log ----\n" + log.read_text(errors="replace")[-5000:])
    shutil.rmtree(home, ignore_errors=True)
    assert not leaked, f"processes left behind after `corral kill`: {leaked}"
    assert not c.silently_replaced(), f"the daemon died and was silently replaced: daemons {c.daemons}"


@pytest.fixture
def workdir() -> Any:
    path = Path(tempfile.mkdtemp(prefix="corral-w-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fuzzers' counts (tests/fuzzing.py), one line each, at the end of the run."""
    lines = [value for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
             if report.when == "call" for key, value in report.user_properties if key == "fuzz"]
    if lines:
        terminalreporter.write_sep("-", "fuzzers")
        for line in lines:
            terminalreporter.write_line(line)
