"""Symlink swaps against a real daemon: an app (or anyone who can write its log folder) replaces its
log file with a link, then crashes, restarts, rotates or is flushed.  The link's target is never
written, truncated or created; the instance fails with one line instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Corral, app, wait_until

SECRET = b"root:secret-hash:19000:0:99999:7:::\n"

SWAP_AND_CRASH = """
import os, sys
out, target = sys.argv[1], sys.argv[2]
print("started", flush=True)
os.unlink(out)
os.symlink(target, out)   # the log file is a link now
print("after the swap", flush=True)
sys.exit(1)
"""


@pytest.fixture
def target(workdir: Path) -> Path:
    folder = workdir / "secret"
    folder.mkdir(mode=0o700)
    path = folder / "shadow"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


def spawn_failures(corral: Corral, name: str) -> list[str]:
    return [e["message"] for e in corral.events(name) if e["kind"] == "spawn_failed"]


@pytest.mark.parametrize("dangling", [False, True], ids=["link-to-a-root-only-file", "dangling-link"])
def test_an_app_that_swaps_its_log_for_a_link_and_crashes(corral: Corral, workdir: Path, target: Path,
                                                          dangling: bool) -> None:
    out = workdir / "logs" / "app.log"
    aim = target.parent / "created-by-root" if dangling else target
    (workdir / "swap.py").write_text(SWAP_AND_CRASH)
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "swap"
script = "swap.py"
args = ["{out}", "{aim}"]
out_file = "{out}"
""")
    corral.run("start", str(workdir / "corral.toml"))
    failures = wait_until(lambda: spawn_failures(corral, "swap"), what="the restart to be refused")
    assert failures == [f"log file {out} is a symbolic link: corral does not write through links"]
    corral.wait_status("swap", "errored")
    assert target.read_bytes() == SECRET
    assert out.is_symlink() and not (target.parent / "created-by-root").exists()
    assert os.listdir(target.parent) == ["shadow"]


def test_rotation_after_a_swap_moves_the_link_aside_and_never_writes_the_target(
        corral: Corral, workdir: Path, target: Path) -> None:
    out = workdir / "t.log"
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "t"
script = "{app('ticker.py')}"
args = ["2"]
out_file = "{out}"
log_max_size = "4KB"
""")
    corral.run("start", str(workdir / "corral.toml"))
    wait_until(lambda: out.exists() and out.stat().st_size > 0, what="first lines")
    out.unlink()
    out.symlink_to(target)
    wait_until(lambda: out.exists() and not out.is_symlink() and out.stat().st_size > 0,
               what="a rotation to put a fresh file in place of the link")
    assert target.read_bytes() == SECRET
    moved = [p for p in workdir.iterdir() if p.name.startswith("t__")]
    assert any(p.is_symlink() for p in moved)  # the link itself, moved aside as it is
    corral.run("stop", "t")
    assert target.read_bytes() == SECRET


def test_flush_never_truncates_through_a_link(corral: Corral, workdir: Path, target: Path) -> None:
    out = workdir / "f.log"
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "f"
script = "{app('crash.py')}"
args = ["0"]
out_file = "{out}"
autorestart = false
""")
    corral.run("start", str(workdir / "corral.toml"))
    corral.wait_status("f", "stopped")
    out.unlink()
    out.symlink_to(target)
    result = corral.run("flush", "f")
    assert target.read_bytes() == SECRET and out.is_symlink()
    assert str(out) not in result.stdout
