"""``corral run``: foreground mode for containers, with prefixed output, signals and PID-1 duties."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, app, pid_alive, processes_with_env, wait_until


def start_run(toml: Path, *prefix: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CORRAL_RUN_TEST": str(toml), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "corral", "run", str(toml)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env, cwd=ROOT,
    )


def read_until(proc: subprocess.Popen[bytes], *needles: str, timeout: float = 20.0) -> list[str]:
    """Read stdout until every needle has been seen (in any order), with a deadline."""
    import select
    import time

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        text = data.decode(errors="replace")
        if all(n in text for n in needles):
            return text.splitlines()
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"{needles} never all printed; got {text!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"output ended before {needles}; got {text!r}")
        data += chunk


def test_run_prefixes_output_and_stops_gracefully_on_sigterm(workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(f"""
[[apps]]
name = "rec"
script = "{app('record.py')}"
args = ["{workdir / 'rec.jsonl'}"]
[[apps]]
name = "fam"
script = "{app('family.py')}"
args = ["{workdir / 'pids'}", "--child-ignores-term"]
kill_timeout = "500ms"
""")
    proc = start_run(toml)
    try:
        read_until(proc, "fam | family ready", "rec | record started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"SIGTERM: stopping 2 app(s)" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.communicate()
        leftovers = processes_with_env("CORRAL_RUN_TEST", str(toml))
        for pid in leftovers:  # a failed test must not leave the apps behind
            os.kill(pid, signal.SIGKILL)
    assert leftovers == []


def test_run_exits_non_zero_when_an_app_ends_errored(workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(f"""
[[apps]]
name = "bad"
script = "{app('crash.py')}"
args = ["9", "0"]
autorestart = false
[[apps]]
name = "good"
script = "{app('crash.py')}"
args = ["0", "0"]
autorestart = false
""")
    proc = start_run(toml)
    out, err = (b.decode() for b in proc.communicate(timeout=30))
    assert proc.returncode == 1
    assert "bad | crash app pid running, exiting with 9" in out
    assert "ended errored: bad[0]" in err


def test_run_as_pid_1_reaps_orphans_and_keeps_app_exit_codes(workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text("""
[[apps]]
name = "orphaner"
cmd = ["sh", "-c", "(sleep 0.2 &); sleep 0.6; echo checkpoint; sleep 1; exit 3"]
autorestart = false
""")
    proc = start_run(toml, "unshare", "--pid", "--fork", "--mount-proc")
    try:
        read_until(proc, "orphaner | checkpoint")
        corral_pid = wait_until(lambda: [p for p in processes_with_env("CORRAL_RUN_TEST", str(toml))
                                         if b"corral" in Path(f"/proc/{p}/cmdline").read_bytes()
                                         and b"unshare" not in Path(f"/proc/{p}/cmdline").read_bytes()],
                                what="the corral process")[0]
        zombies = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == corral_pid and fields[0] == "Z":
                    zombies.append(int(name))
        assert zombies == [], "the orphaned sleep was not reaped by corral as PID 1"
        out, err = (b.decode() for b in proc.communicate(timeout=30))
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 1
    assert "exit code 3" in err and "ended errored: orphaner[0]" in err
    assert not pid_alive(corral_pid)
