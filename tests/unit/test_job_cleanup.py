"""The built-in maintenance on real files with real ages (os.utime) in a test-made directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.jobs import cleanup
from corral.logs.prune import prune

DAY = 86400.0


def aged(path: Path, days: float, content: bytes = b"x" * 100) -> Path:
    path.write_bytes(content)
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def test_cleanup_tmp_removes_only_old_matching_files_of_this_user(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    old_html = aged(tmp / "render-1.html", 2)
    new_html = aged(tmp / "render-2.html", 0.5)
    old_snapshot = aged(tmp / "Heap-1.heapsnapshot", 3)
    old_profile = aged(tmp / "cpu.cpuprofile", 3)
    old_other = aged(tmp / "notes.txt", 30)
    profile = tmp / "puppeteer_dev_chrome_profile-abc"
    (profile / "Default").mkdir(parents=True)
    aged(profile / "Default" / "Cookies", 5)
    os.utime(profile, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    ours_old = aged(home / "tmp" / "anything.bin", 2)
    ours_new = aged(home / "tmp" / "fresh.bin", 0.1)
    freed = cleanup.cleanup_tmp({"home": str(home), "tmp": str(tmp)}, time.time())
    assert sorted(p.name for p in tmp.iterdir()) == ["notes.txt", "render-2.html"]
    assert not old_html.exists() and not old_snapshot.exists() and not old_profile.exists()
    assert new_html.exists() and old_other.exists()
    assert not ours_old.exists() and ours_new.exists()
    assert freed >= 5 * 100


def test_a_symlink_to_a_file_outside_is_never_followed(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = aged(outside / "precious.html", 10)
    precious_dir = outside / "keep"
    precious_dir.mkdir()
    inner = aged(precious_dir / "inner.html", 10)
    link = tmp / "stale.html"
    link.symlink_to(precious)
    dir_link = tmp / "puppeteer_dev_chrome_profile-link"
    dir_link.symlink_to(precious_dir)
    for path in (link, dir_link):
        os.utime(path, (time.time() - 5 * DAY,) * 2, follow_symlinks=False)
    cleanup.clean_dir(str(tmp), cleanup.DEFAULT_PATTERNS, DAY, time.time(), os.geteuid())
    assert precious.read_bytes() == b"x" * 100 and inner.exists()  # what the links pointed to is there
    assert not link.is_symlink() and not dir_link.is_symlink()  # the links themselves went


def test_a_directory_that_is_a_symlink_is_not_walked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    kept = aged(outside / "old.bin", 10)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "tmp").symlink_to(outside)  # corral's own tmp replaced by a link
    cleanup.cleanup_tmp({"home": str(tmp_path / "home"), "tmp": str(tmp_path / "none")}, time.time())
    assert kept.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_files_of_other_users_stay(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    theirs = aged(tmp / "theirs.html", 5)
    os.chown(theirs, 65534, 65534)
    cleanup.clean_dir(str(tmp), ["*.html"], DAY, time.time(), os.geteuid())
    assert theirs.exists()


def test_patterns_can_be_changed(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    html = aged(tmp / "a.html", 5)
    dump = aged(tmp / "core.dump", 5)
    (tmp_path / "home").mkdir()
    cleanup.cleanup_tmp({"home": str(tmp_path / "home"), "tmp": str(tmp), "patterns": ["*.dump"]}, time.time())
    assert html.exists() and not dump.exists()


def test_prune_keeps_log_retain_newest_rotated_files_and_never_a_symlink(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = aged(logs / "api-out.log", 0)
    rotated = [aged(logs / f"api-out__2026-11-2{i}_05-00-00.log", 0) for i in range(5)]
    outside = aged(tmp_path / "target.log", 0)
    trap = logs / "api-out__2026-11-19_05-00-00.log"
    trap.symlink_to(outside)
    prune([{"path": str(live), "retain": 2, "max_age": None}], time.time())
    assert sorted(p.name for p in logs.iterdir() if not p.is_symlink()) == [
        "api-out.log", "api-out__2026-11-23_05-00-00.log", "api-out__2026-11-24_05-00-00.log"]
    assert trap.is_symlink() and outside.exists()
    assert not rotated[0].exists()


def test_disk_cleans_first_then_fails_saying_what_was_freed(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    aged(tmp / "old.heapsnapshot", 5, b"y" * 8192)
    (tmp_path / "home").mkdir()
    conf = {"home": str(tmp_path / "home"), "tmp": str(tmp), "threshold": 0.0, "mounts": [str(tmp_path)]}
    done = subprocess.run([sys.executable, "-m", "corral.jobs.cleanup", "disk"], capture_output=True, text=True,
                          env={**os.environ, "CORRAL_MAINTENANCE": json.dumps(conf)}, check=False)
    assert done.returncode == 1  # still over a 0% threshold: the job fails, which alerts
    last = done.stdout.splitlines()[-1]
    assert last.startswith(f"disk: {tmp_path} is ") and "after cleanup (freed 8.0 KB; threshold 0%)" in last
    assert not (tmp / "old.heapsnapshot").exists()
    conf["threshold"] = 100.0
    done = subprocess.run([sys.executable, "-m", "corral.jobs.cleanup", "disk"], capture_output=True, text=True,
                          env={**os.environ, "CORRAL_MAINTENANCE": json.dumps(conf)}, check=False)
    assert done.returncode == 0 and done.stdout == "every mount below 100%\n"
