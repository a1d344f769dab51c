"""The built-in maintenance tasks, run as a job (a subprocess of the daemon, so the daemon never
holds their code or their IO): ``python -m corral.jobs.cleanup cleanup-tmp | prune | disk``.

What to do comes in ``CORRAL_MAINTENANCE`` (JSON, from :mod:`corral.jobs.maintenance`):
``home``, ``tmp`` (the system temp directory), ``patterns``, ``max_age``, ``threshold``,
``profile_age``, ``logs`` (for the log prune, :mod:`corral.logs.prune`).

* **cleanup-tmp**: the top-level entries of the temp directory whose name matches a pattern (stale
  ``.html`` renders, heap snapshots, CPU profiles, browser profile directories), older than 24 h and
  owned by the user corral runs as; and everything in corral's own temp directory past 24 h.
* **prune**: rotated logs past ``log_retain``/``log_max_age`` (``corral.logs.prune``), profiles and
  snapshots in corral's ``profiles`` directory past their retention.
* **disk**: each real mount over the disk threshold (75 %): cleanup-tmp and prune, measured again;
  exit 1 (the job fails: an alert) when one is still over, saying what was freed.

Symbolic links are never followed: entries are looked at with ``lstat`` relative to an open
directory (``dir_fd``), a symlink itself is removed, never what it points to, and directories are
removed by ``shutil.rmtree`` on file descriptors (``rmtree.avoids_symlink_attacks``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
import sys
import time
from typing import Any

DEFAULT_PATTERNS = ["*.html", "*.heapsnapshot", "*.cpuprofile", "puppeteer_dev_chrome_profile*",
                    "puppeteer_dev_profile*", ".org.chromium.Chromium*", ".com.google.chrome.for.testing*"]
DAY = 86400.0
PSEUDO = frozenset(("proc", "sysfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs", "securityfs",
                    "pstore", "bpf", "autofs", "configfs", "fusectl", "hugetlbfs", "devtmpfs", "nsfs",
                    "binfmt_misc", "ramfs", "squashfs", "rpc_pipefs", "efivarfs", "selinuxfs", "tmpfs"))


def _size(fd: int, name: str, st: os.stat_result) -> int:
    if not stat.S_ISDIR(st.st_mode):
        return st.st_blocks * 512
    total = 0
    try:
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return 0
    try:
        for entry in os.scandir(sub):
            try:
                total += _size(sub, entry.name, entry.stat(follow_symlinks=False))
            except OSError:
                pass
    finally:
        os.close(sub)
    return total


def clean_dir(path: str, patterns: list[str] | None, max_age: float, now: float, uid: int | None) -> tuple[int, int]:
    """Remove the top-level entries of ``path`` matching ``patterns`` (None: every entry) last
    modified more than ``max_age`` ago and owned by ``uid`` (None: anyone's); (entries, bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0, 0
    except OSError as exc:  # a symlink (O_NOFOLLOW: ELOOP or ENOTDIR), not a directory: never walked
        print(f"{path}: not cleaned: {exc.strerror or exc} (a symbolic link is never followed)", file=sys.stderr)
        return 0, 0
    removed = freed = 0
    try:
        for entry in os.scandir(fd):
            name = entry.name
            if patterns is not None and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if (uid is not None and st.st_uid != uid) or now - st.st_mtime <= max_age:
                    continue
                size = _size(fd, name, st)
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)  # a symlink: the link itself, never its target
            except FileNotFoundError:
                continue
            except OSError as exc:
                print(f"cannot remove {os.path.join(path, name)}: {exc.strerror or exc}", file=sys.stderr)
                continue
            removed += 1
            freed += size
            print(f"removed {os.path.join(path, name)} ({_human(size)})")
    finally:
        os.close(fd)
    return removed, freed


def cleanup_tmp(conf: dict[str, Any], now: float) -> int:
    patterns = conf.get("patterns") or DEFAULT_PATTERNS
    max_age = float(conf.get("max_age") or DAY)
    freed = clean_dir(conf.get("tmp") or "/tmp", patterns, max_age, now, os.geteuid())[1]
    freed += clean_dir(os.path.join(conf["home"], "tmp"), None, max_age, now, None)[1]
    return freed


def prune(conf: dict[str, Any], now: float) -> int:
    freed = clean_dir(os.path.join(conf["home"], "profiles"), None, float(conf.get("profile_age") or 7 * DAY),
                      now, None)[1]
    if conf.get("logs"):
        import subprocess

        done = subprocess.run([sys.executable, "-m", "corral.logs.prune"], stdout=subprocess.PIPE, check=False)
        sys.stdout.write(done.stdout.decode(errors="replace"))
        for line in done.stdout.decode(errors="replace").splitlines():
            if line.startswith("freed "):
                freed += int(line.split()[1])
    return freed


def mounts() -> list[str]:
    """The real mounts (no proc, sysfs, tmpfs ...), each once."""
    found: list[str] = []
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] not in PSEUDO:
                    point = parts[1].replace("\\040", " ")
                    if point not in found:
                        found.append(point)
    except OSError:
        found = ["/"]
    return found


def usage(point: str) -> float | None:
    """Percent used, as df shows it (reserved blocks count as used), or None."""
    try:
        st = os.statvfs(point)
    except OSError:
        return None
    used = st.f_blocks - st.f_bfree
    total = used + st.f_bavail
    return 100.0 * used / total if total > 0 else None


def disk(conf: dict[str, Any], now: float) -> int:
    threshold = float(conf["threshold"] if conf.get("threshold") is not None else 75.0)
    over = {p: u for p in conf.get("mounts") or mounts() if (u := usage(p)) is not None and u >= threshold}
    if not over:
        print(f"every mount below {threshold:g}%")
        return 0
    print("over the disk threshold: " + ", ".join(f"{p} {u:.1f}%" for p, u in over.items()) + ": cleaning up")
    freed = cleanup_tmp(conf, now) + prune(conf, now)
    still = {p: u for p in over if (u := usage(p)) is not None and u >= threshold}
    if still:
        print("disk: " + ", ".join(f"{p} is {u:.1f}% full" for p, u in still.items())
              + f" after cleanup (freed {_human(freed)}; threshold {threshold:g}%)")
        return 1
    print(f"disk: below {threshold:g}% after cleanup (freed {_human(freed)})")
    return 0


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def main(argv: list[str]) -> int:
    tasks = {"cleanup-tmp": cleanup_tmp, "prune": prune, "disk": disk}
    if len(argv) != 1 or argv[0] not in tasks:
        print(f"usage: python -m corral.jobs.cleanup {'|'.join(tasks)}", file=sys.stderr)
        return 2
    conf = json.loads(os.environ.get("CORRAL_MAINTENANCE") or "{}")
    conf.setdefault("home", os.environ.get("CORRAL_HOME") or os.path.expanduser("~/.corral"))
    now = time.time()
    result = tasks[argv[0]](conf, now)
    if argv[0] != "disk":
        print(f"freed {_human(result)}")
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
