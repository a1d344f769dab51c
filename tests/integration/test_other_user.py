"""``user =`` done right, with a real root daemon and a second local user made by the test.

The app runs with that user's uid, primary group and supplementary groups only (never gid 0),
its HOME/USER/LOGNAME/SHELL and none of the shell's secrets; ``ready = "notify"`` works; its log
file is its own; and when it swaps that file for a link to a root-only file and crashes, the
daemon refuses to reopen it.  The user and its group are removed afterwards.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Corral, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="running an app as another user needs a root daemon"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd is needed to make a second user"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="the app needs a python the user can run"),
]

APP = """
import json, os, signal, socket, sys, time
report, out, target = sys.argv[1:4]

def swap_and_crash(*_):
    os.unlink(out)
    os.symlink(target, out)  # the log file is a link to a root-only file now
    print("swapped", flush=True)
    os._exit(1)

signal.signal(signal.SIGUSR1, swap_and_crash)
with open(report, "w") as f:
    json.dump({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
               "groups": sorted(os.getgroups()), "env": dict(os.environ)}, f)
print("hello from", os.getuid(), flush=True)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.sendto(b"READY=1\\nSTATUS=serving", os.environ["NOTIFY_SOCKET"])
while True:
    time.sleep(3600)
"""
SECRET = b"root-only secret\n"


@pytest.fixture
def account() -> Iterator[tuple[str, str]]:
    """A system user with a supplementary group of its own; both deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    user, group = f"ct-u-{tag}", f"ct-g-{tag}"
    subprocess.run(["groupadd", "--system", group], check=True, capture_output=True)
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", "--groups", group, user],
                       check=True, capture_output=True)
        try:
            yield user, group
        finally:
            uid = pwd.getpwnam(user).pw_uid
            for pid in _processes_of(uid):  # only processes of this fresh user: the test's own
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["userdel", user], check=True, capture_output=True)
    finally:
        subprocess.run(["groupdel", group], check=False, capture_output=True)


def _processes_of(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    found.append(int(name))
            except FileNotFoundError:
                pass
    return found


def test_an_app_run_as_another_user(corral: Corral, workdir: Path, account: tuple[str, str]) -> None:
    user, group = account
    pw = pwd.getpwnam(user)
    workdir.chmod(0o755)
    space = workdir / "space"  # the user's own folder: its log and its report
    space.mkdir()
    os.chown(space, pw.pw_uid, pw.pw_gid)
    secret = workdir / "root-only"
    secret.mkdir(mode=0o700)
    target = secret / "shadow"
    target.write_bytes(SECRET)
    target.chmod(0o600)
    report, out = space / "report.json", space / "out.log"
    (workdir / "app.py").write_text(APP)
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "u"
cmd = ["/usr/bin/python3", "app.py", "{report}", "{out}", "{target}"]
user = "{user}"
ready = "notify"
ready_timeout = "5s"
out_file = "{out}"
env_inherit = ["EXTRA_*"]
""")
    shell = {"GITHUB_TOKEN": "ghp_rootSECRET", "FROM_ROOTS_SHELL": "x", "EXTRA_OK": "1"}
    old_umask = os.umask(0o077)  # a strict admin's umask: the user's notify socket must stay reachable
    try:
        corral.run("start", str(workdir / "corral.toml"), env=shell)
    finally:
        os.umask(old_umask)
    corral.wait_status("u", "online", timeout=15)
    assert any(e["kind"] == "ready" for e in corral.events("u"))
    seen = json.loads(report.read_text())
    expected_groups = sorted(set(os.getgrouplist(user, pw.pw_gid)))
    assert (seen["uid"], seen["euid"], seen["gid"], seen["egid"]) == (pw.pw_uid,) * 2 + (pw.pw_gid,) * 2
    assert seen["groups"] == expected_groups
    assert grp.getgrnam(group).gr_gid in seen["groups"] and 0 not in seen["groups"]
    env = seen["env"]
    assert {k: env.get(k) for k in ("HOME", "USER", "LOGNAME", "SHELL")} == {
        "HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "SHELL": pw.pw_shell}
    assert env["EXTRA_OK"] == "1" and env["PATH"]
    assert not {"GITHUB_TOKEN", "FROM_ROOTS_SHELL", "CORRAL_HOME"} & set(env)
    notify = env["NOTIFY_SOCKET"]
    assert notify.startswith("/run/corral/") and os.stat(notify).st_uid == pw.pw_uid
    st = out.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o600)
    assert "hello from" in out.read_text()

    corral.run("signal", "SIGUSR1", "u")  # the app swaps its log for a link, then crashes
    failures = wait_until(lambda: [e["message"] for e in corral.events("u") if e["kind"] == "spawn_failed"],
                          what="the restart to be refused")
    assert failures == [f"log file {out} is a symbolic link: corral does not write through links"]
    assert target.read_bytes() == SECRET and out.is_symlink()

    corral.run("kill")
    assert not os.path.exists(os.path.dirname(notify))  # the daemon cleans up its user sockets
    wait_until(lambda: not _processes_of(pw.pw_uid), what="every process of the user to be gone")
