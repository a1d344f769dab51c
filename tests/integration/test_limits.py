"""Resource limits: core dumps off by default, an app's own ``limits``, the daemon's raised nofile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


from tests.conftest import PYTHON, Corral, wait_until

UNLIMITED = "unlimited"


def limits_of(pid: int) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits as {"Max open files": (soft, hard)}."""
    out = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        out[name] = (soft, hard)
    return out


def test_core_dumps_are_off_by_default(corral: Corral) -> None:
    corral.run("start", "--name", "plain", "--", "sleep", "300")
    pid = corral.wait_status("plain", "online")["pid"]
    assert limits_of(pid)["Max core file size"][0] == "0"
    daemon = corral.daemon_pid()
    assert daemon and limits_of(daemon)["Max core file size"][0] == "0"  # nor the daemon (secrets in memory)


def test_an_app_gets_its_own_limits_before_its_program_runs(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text("""
[[apps]]
name = "limited"
cmd = ["sleep", "300"]
limits = { nofile = 4096, core = "unlimited", nproc = "1000:2000", fsize = "1GB" }
""")
    corral.run("start", str(workdir / "corral.toml"))
    pid = corral.wait_status("limited", "online")["pid"]
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"  # the shim exec'd it: same pid
    got = limits_of(pid)
    assert got["Max open files"] == ("4096", "4096")
    assert got["Max core file size"] == (UNLIMITED, UNLIMITED)
    assert got["Max processes"] == ("1000", "2000")
    assert got["Max file size"] == (str(1024**3), str(1024**3))
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert any(e.startswith(b"CORRAL_INSTANCE_ID=") for e in environ)


def test_limits_and_shared_sockets_share_the_shim(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text("""
[[apps]]
name = "served"
cmd = ["sleep", "300"]
listen = "tcp://127.0.0.1:0"
limits = { nofile = 2048 }
""")
    corral.run("start", str(workdir / "corral.toml"))
    pid = corral.wait_status("served", "online")["pid"]
    assert limits_of(pid)["Max open files"] == ("2048", "2048")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"LISTEN_PID={pid}".encode() in environ and b"LISTEN_FDS=1" in environ
    assert os.path.exists(f"/proc/{pid}/fd/3")


def may_raise_hard_nofile() -> int | None:
    """A hard nofile limit above ours that a process here may set (root with CAP_SYS_RESOURCE), or None."""
    hard = int(limits_of(os.getpid())["Max open files"][1])
    wanted = min(hard * 2, int(Path("/proc/sys/fs/nr_open").read_text()))
    probe = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({wanted}, {wanted}))"
    ok = wanted > hard and subprocess.run([PYTHON, "-c", probe], capture_output=True).returncode == 0
    return wanted if ok else None


def test_a_hard_limit_above_the_daemons_is_raised_by_root_or_refused_in_one_line(corral: Corral,
                                                                                 workdir: Path) -> None:
    wanted = may_raise_hard_nofile()
    hard = int(limits_of(os.getpid())["Max open files"][1])
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "many"
cmd = ["sleep", "300"]
limits = {{ nofile = {wanted or hard * 2} }}
""")
    result = corral.run("start", str(workdir / "corral.toml"), check=False)
    if wanted is None:  # not root, or root without CAP_SYS_RESOURCE (a container)
        assert result.returncode == 1
        assert "many[0]: limits: nofile: " in result.stderr and str(hard * 2) in result.stderr
        assert corral.row("many")["status"] == "errored"
        return
    pid = corral.wait_status("many", "online")["pid"]
    assert limits_of(pid)["Max open files"] == (str(wanted), str(wanted))


def test_a_bad_limit_is_one_clear_line(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text('[[apps]]\nname = "x"\ncmd = ["true"]\nlimits = { nofile = "lots" }\n')
    result = corral.run("start", str(workdir / "corral.toml"), check=False)
    assert result.returncode == 2
    assert 'limits.nofile: "lots" is not a limit (open files' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_daemon_raises_its_soft_nofile_limit_and_apps_inherit_it(corral: Corral, workdir: Path) -> None:
    """A daemon started with a soft nofile limit of 128 runs 60 instances (about 240 descriptors)."""
    hard = limits_of(os.getpid())["Max open files"][1]
    (workdir / "corral.toml").write_text('[[apps]]\nname = "many"\ncmd = ["sleep", "300"]\ninstances = 60\n')
    low = ("import resource, runpy, sys; "
           "resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
           "sys.argv = ['corral', 'start', sys.argv[1]]; runpy.run_module('corral', run_name='__main__')")
    subprocess.run([PYTHON, "-c", low, str(workdir / "corral.toml")], env=corral.env, check=True,
                   capture_output=True, timeout=60)
    corral._note_daemon()
    daemon = corral.daemon_pid()
    assert daemon and limits_of(daemon)["Max open files"] == (hard, hard)
    wait_until(lambda: [r["status"] for r in corral.ls()] == ["online"] * 60, 30, "60 instances online")
    assert len(os.listdir(f"/proc/{daemon}/fd")) > 128
    pid = corral.row("many", 59)["pid"]
    assert limits_of(pid)["Max open files"] == (hard, hard)
