"""Start at boot (``corral startup``): the daemon as systemd runs it, under a NOTIFY_SOCKET made
here (a real unix datagram socket), and the units it writes, checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Corral, app, pid_alive


def _receive(sock: socket.socket, wanted: str, timeout: float = 30.0) -> dict[str, str]:
    """The next datagram that holds WANTED (``READY=1``...), as key/value; fails after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {wanted} on the notify socket within {timeout}s")
        sock.settimeout(left)
        try:
            data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            continue
        fields = dict(line.partition("=")[::2] for line in data.decode().splitlines() if "=" in line)
        for level, kind, payload in ancillary:  # SO_PASSCRED: the kernel says who sent it
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                fields["_pid"] = str(int.from_bytes(payload[0:4], sys.byteorder))
        key, _, value = wanted.partition("=")
        if fields.get(key) == value or (not value and key in fields):
            return fields


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [item.decode(errors="replace") for item in f.read().split(b"\0") if item]
    return dict(item.partition("=")[::2] for item in items)


def test_the_daemon_under_systemd_restores_the_saved_apps_then_says_ready(corral: Corral, workdir: Path) -> None:
    corral.run("start", app("worker.py"), "--name", "w", "--kill-timeout", "7s")
    corral.wait_status("w", "online")
    corral.run("save")
    corral.run("kill")  # the apps are forgotten: only the saved list brings them back
    corral.expect_daemon_restart()  # the next daemon is the one systemd would start
    notify_path = str(workdir / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    env = {**corral.env, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"}
    with open(workdir / "daemon.err", "wb") as err:
        daemon = subprocess.Popen([sys.executable, "-m", "corral.daemon", "--resurrect"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        ready = _receive(listener, "READY=1")
        assert ready["STATUS"] == "corral daemon ready (1 apps restored)"
        assert ready["_pid"] == str(daemon.pid)  # the main process itself (NotifyAccess=main)
        row = corral.row("w")  # restored before READY=1, not after
        assert row["status"] in ("launching", "online")
        _receive(listener, "WATCHDOG=1", timeout=10)
        _receive(listener, "WATCHDOG=1", timeout=10)  # again: from the loop, every 0.2 s
        online = corral.wait_status("w", "online")
        app_env = _environ(online["pid"])
        assert app_env.get("NOTIFY_SOCKET") != notify_path and "WATCHDOG_USEC" not in app_env
        daemon.send_signal(signal.SIGTERM)  # `systemctl stop`: the apps stop gracefully
        stopping = _receive(listener, "STOPPING=1")
        assert int(stopping["EXTEND_TIMEOUT_USEC"]) == (7 + 10 + 10) * 1_000_000  # kill_timeout + margins
        assert daemon.wait(timeout=30) == 0
        assert not pid_alive(online["pid"])
        assert "SIGTERM: stopping every app" in (workdir / "daemon.err").read_text()
        # the next boot: the app is both in the daemon's store and in the saved list; it runs once
        corral.expect_daemon_restart()
        with open(workdir / "daemon.err", "ab") as err:
            daemon = subprocess.Popen([sys.executable, "-m", "corral.daemon", "--resurrect"], env=env,
                                      stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        assert _receive(listener, "READY=1")["STATUS"] == "corral daemon ready (1 apps restored)"
        assert [r["name"] for r in corral.ls()] == ["w"]
        corral.wait_status("w", "online")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        listener.close()


def _verify(path: Path) -> str:
    done = subprocess.run(["systemd-analyze", "verify", path.name], cwd=path.parent, capture_output=True,
                          text=True, timeout=60)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (Debian: systemd)")


@needs_analyze
def test_startup_writes_a_unit_that_verifies_and_says_what_to_run(corral: Corral, workdir: Path) -> None:
    corral.run("start", app("worker.py"), "--name", "slow", "--kill-timeout", "20s")
    units = workdir / "units"
    done = corral.run("startup", "systemd", "--unit-dir", str(units))
    user = __import__("pwd").getpwuid(os.geteuid()).pw_name
    unit = units / f"corral-{user}.service"
    assert _verify(unit) == ""
    lines = unit.read_text().splitlines()
    python = os.path.abspath(sys.executable)
    for line in ("Type=notify", "NotifyAccess=main", "KillMode=process", "LimitCORE=0", "Restart=on-failure",
                 f'Environment="CORRAL_HOME={corral.home}"', "WantedBy=multi-user.target",
                 f"ExecStart={python} -OO -X no_debug_ranges -m corral.daemon --resurrect",
                 "TimeoutStopSec=40000ms"):  # slow's 20 s kill_timeout, the layer's margin, the exit's
        assert line in lines, line
    out = done.stdout.splitlines()
    assert out[0] == f"wrote {unit} (TimeoutStopSec 40s from the apps' kill_timeouts)"
    if not os.path.isdir("/run/systemd/system"):  # this container: systemd is not PID 1
        assert out[1] == "systemd is not running here (not PID 1): run these where it is:"
    assert out[2:4] == ["  systemctl daemon-reload", f"  systemctl enable corral-{user}.service"]
    assert "`corral save` chooses the apps the unit starts at boot" in done.stderr
    wants = units / "multi-user.target.wants"  # as `systemctl enable` leaves it
    wants.mkdir()
    (wants / unit.name).symlink_to(unit)
    done = corral.run("unstartup", "systemd", "--unit-dir", str(units))
    assert not unit.exists() and not os.path.lexists(wants / unit.name)
    assert done.stdout.splitlines()[0] == f"removed {unit} and {wants / unit.name}"
    assert done.stdout.splitlines()[2:] == ["  systemctl daemon-reload"]


@needs_analyze
def test_a_user_unit_goes_to_the_user_s_systemd_folder(corral: Corral, workdir: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(workdir / "config")}
    done = corral.run("startup", "systemd-user", env=env)
    unit = workdir / "config" / "systemd" / "user" / "corral.service"
    assert done.stdout.splitlines()[0].startswith(f"wrote {unit} (TimeoutStopSec 90s")  # no app known: systemd's default
    assert _verify(unit) == ""
    text = unit.read_text()
    assert "WantedBy=default.target" in text and "User=" not in text
    assert "  loginctl enable-linger " in done.stdout
    assert corral.run("startup", "systemd-user", "--print", env=env).stdout == text
    corral.run("unstartup", "systemd-user", env=env)
    assert not unit.exists()
    assert corral.run("unstartup", "systemd-user", env=env).stdout == f"no unit at {unit}: nothing to remove\n"


def test_startup_of_another_init_system_is_one_line(corral: Corral) -> None:
    done = corral.run("startup", "launchd", check=False)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "invalid choice: 'launchd'" in done.stderr


def test_under_systemd_a_daemon_already_running_fails_the_unit_with_the_way_out(corral: Corral, workdir: Path) -> None:
    corral.run("ping")  # a daemon the CLI started holds the home
    env = {**corral.env, "NOTIFY_SOCKET": str(workdir / "notify.sock")}
    done = subprocess.run([sys.executable, "-m", "corral.daemon", "--resurrect"], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1  # not 0: systemd must not take it for a clean stop
    assert done.stderr.splitlines() == [
        f"corral: a daemon already runs for {corral.home}",
        "corral: started outside systemd: `corral save && corral kill`, then start the unit again",
    ]


@needs_analyze
def test_root_writes_the_unit_of_another_user_s_daemon(corral: Corral, workdir: Path) -> None:
    import pwd

    try:
        account = pwd.getpwnam("www-data")  # Debian's; "nobody" would be flagged by systemd as unsafe
    except KeyError:
        pytest.skip("no www-data user here")
    units = workdir / "units"
    env = {"CORRAL_HOME": ""}  # their ~/.corral
    corral.run("startup", "systemd", "--user", "www-data", "--unit-dir", str(units), env=env)
    unit = units / "corral-www-data.service"
    lines = unit.read_text().splitlines()
    assert "User=www-data" in lines
    assert f'Environment="CORRAL_HOME={os.path.join(account.pw_dir, ".corral")}"' in lines
    assert _verify(unit) == ""
    done = corral.run("startup", "systemd", "--user", "no-such-user-here", "--unit-dir", str(units), check=False)
    assert (done.returncode, done.stderr) == (2, "corral: --user no-such-user-here: no such user\n")
    done = corral.run("startup", "systemd-user", "--user", "www-data", "--unit-dir", str(units), check=False)
    assert done.returncode == 2 and done.stderr.startswith("corral: --user is for a system unit")
    corral.run("unstartup", "systemd", "--user", "www-data", "--unit-dir", str(units))
    assert not unit.exists()
