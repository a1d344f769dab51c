"""Deploy IO on this host: the lock, fetching a release, shared paths, hooks, the atomic switch.

Every failure is a :class:`DeployError` with one line; nothing here touches ``current`` except
:func:`switch`, which renames a new symlink over it (``rename(2)``: there is no moment without a
``current``, unlike ``ln -sfn``).  Runs in the ``corral deploy`` process, never in the daemon.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from corral.deploy import releases
from corral.exceptions import UserMistake

LOCK_NAME = ".corral-deploy.lock"
LOG_NAME = "deploy.log"
GIT_TIMEOUT = 300.0


class DeployError(UserMistake):
    """A deploy step that failed: one line; the live release is untouched."""


class Layout:
    """The deploy root: ``releases/``, ``shared/``, ``current`` and ``deploy.log``."""

    def __init__(self, path: str) -> None:
        self.root = Path(path)
        self.releases = self.root / "releases"
        self.shared = self.root / "shared"
        self.current = self.root / "current"
        self.log_path = self.root / LOG_NAME

    def prepare(self) -> bool:
        """Create the directories; True when this is the first deploy here (``pre-setup`` runs)."""
        first = not self.releases.is_dir()
        try:
            for folder in (self.root, self.releases, self.shared):
                folder.mkdir(mode=0o755, exist_ok=True)
            probe = self.root / f".corral-write-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise DeployError(f"deploy: path {self.root} is not writable: {exc.strerror or exc}") from None
        return first

    def names(self) -> list[str]:
        try:
            return releases.ordered(p.name for p in self.releases.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def live(self) -> str | None:
        """The release ``current`` points at (None before the first deploy)."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = os.path.basename(target.rstrip("/"))
        return name if releases.is_release(name) else None

    def bad(self) -> list[str]:
        return [n for n in self.names() if (self.releases / n / releases.BAD_MARK).exists()]

    def mark_bad(self, name: str, reason: str) -> None:
        try:
            (self.releases / name / releases.BAD_MARK).write_text(f"{time.strftime('%FT%TZ', time.gmtime())} "
                                                                   f"{getpass.getuser()}: {reason}\n")
        except OSError:
            pass

    def log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            for line in text.splitlines() or [""]:
                f.write(f"{time.strftime('%FT%TZ', time.gmtime())} {line}\n")


# -- one deploy at a time ------------------------------------------------------------------
class Lock:
    """An exclusive ``flock`` on ``<path>/.corral-deploy.lock``, which says who holds it (the
    kernel drops it when the holder dies: no stale locks)."""

    def __init__(self, layout: Layout, what: str) -> None:
        self.path = layout.root / LOCK_NAME
        self.what = what
        self.fd: int | None = None

    def __enter__(self) -> Lock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DeployError(f"deploy: another deploy is running here ({holder}); nothing was changed") from None
        os.ftruncate(fd, 0)
        since = time.strftime("%FT%TZ", time.gmtime())
        os.pwrite(fd, f"{self.what} by {getpass.getuser()}@{socket.gethostname()}, pid {os.getpid()}, "
                      f"since {since}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


# -- fetching ------------------------------------------------------------------------------
def _git(args: list[str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DeployError("deploy: git is not installed (a plain directory works as repo too)") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"deploy: git {args[0]} took more than {GIT_TIMEOUT:g}s") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch(layout: Layout, repo: str, ref: str) -> tuple[Path, str]:
    """The source at REF in ``releases/.incoming-<pid>``, and its revision (a git commit, or
    ``dir`` for a plain directory)."""
    incoming = layout.releases / f".incoming-{os.getpid()}"
    shutil.rmtree(incoming, ignore_errors=True)
    source = os.path.expanduser(repo)
    if os.path.isdir(source) and not _is_git(source):
        try:
            shutil.copytree(source, incoming, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        except (OSError, shutil.Error) as exc:
            shutil.rmtree(incoming, ignore_errors=True)
            raise DeployError(f"deploy: cannot copy {repo}: {exc}") from None
        return incoming, "dir"
    if "://" not in repo and ":" not in repo and not os.path.exists(source):
        raise DeployError(f"deploy: repo {repo} does not exist")
    done = _git(["clone", "--quiet", "--no-checkout", repo, str(incoming)])
    if done.returncode != 0:
        shutil.rmtree(incoming, ignore_errors=True)
        raise DeployError(f"deploy: cannot fetch {repo}: {_last_line(done.stderr)}")
    revision = ""
    for candidate in (ref, f"origin/{ref}"):
        found = _git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], cwd=str(incoming))
        if found.returncode == 0:
            revision = found.stdout.strip()
            break
    if not revision:
        shutil.rmtree(incoming, ignore_errors=True)
        raise DeployError(f'deploy: ref "{ref}" does not exist in {repo}')
    done = _git(["checkout", "--quiet", "--detach", revision], cwd=str(incoming))
    if done.returncode != 0:
        shutil.rmtree(incoming, ignore_errors=True)
        raise DeployError(f"deploy: cannot check out {ref}: {_last_line(done.stderr)}")
    return incoming, revision


def _is_git(path: str) -> bool:
    return os.path.exists(os.path.join(path, ".git")) or os.path.exists(os.path.join(path, "HEAD"))


def place(layout: Layout, incoming: Path, revision: str, wall: float) -> str:
    """Name the fetched source as a release (``REVISION`` written inside); its name."""
    name = releases.release_name(wall, revision, layout.names())
    (incoming / "REVISION").write_text(revision + "\n")
    os.rename(incoming, layout.releases / name)
    return name


def link_shared(layout: Layout, release: str, paths: tuple[str, ...]) -> None:
    """Each shared path of the release becomes a symlink into ``shared/``; a path the release has
    and ``shared/`` does not yet is moved there first (its first deploy seeds it)."""
    root = layout.releases / release
    for item in paths:
        rel = item.strip("/")
        inside, kept = root / rel, layout.shared / rel
        kept.parent.mkdir(parents=True, exist_ok=True)
        if not kept.exists():
            if inside.exists() and not inside.is_symlink():
                shutil.move(str(inside), str(kept))
            elif item.endswith("/"):
                kept.mkdir()
            else:
                raise DeployError(f"deploy: shared file {rel} is neither in {layout.shared} nor in the release "
                                  "(create it there, or end the path with / for a directory)")
        if inside.is_symlink() or inside.is_file():
            inside.unlink()
        elif inside.is_dir():
            shutil.rmtree(inside)
        inside.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(kept, inside.parent), inside)


def run_hooks(layout: Layout, what: str, commands: tuple[str, ...], cwd: Path, timeout: float,
              env: dict[str, str] | None = None) -> None:
    """Run each shell command in CWD, its output appended to ``deploy.log``; the first that fails or
    outlives TIMEOUT (its whole process group is killed) is a DeployError."""
    for command in commands:
        layout.log(f"{what}: $ {command}")
        with open(layout.log_path, "ab") as log:
            code = _run(command, cwd, timeout, log, env)
        if code is None:
            raise DeployError(f"deploy: {what} `{command}` took more than {timeout:g}s and was killed "
                              f"(its output is in {layout.log_path})")
        if code != 0:
            raise DeployError(f"deploy: {what} `{command}` failed with exit status {code} "
                              f"(its output is in {layout.log_path})")


def _run(command: str, cwd: Path, timeout: float, log: IO[bytes], env: dict[str, str] | None) -> int | None:
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return None


# -- switching -----------------------------------------------------------------------------
def switch(layout: Layout, release: str) -> None:
    """Point ``current`` at RELEASE with one ``rename(2)`` of a new relative symlink over it."""
    if not (layout.releases / release).is_dir():
        raise DeployError(f"deploy: release {release} does not exist in {layout.releases}")
    staging = layout.root / f".current-{os.getpid()}"
    try:
        staging.unlink()
    except FileNotFoundError:
        pass
    os.symlink(f"releases/{release}", staging)
    os.replace(staging, layout.current)
    layout.log(f"current -> releases/{release}")


def prune(layout: Layout, keep: int) -> list[str]:
    """Delete the releases beyond KEEP (never the live one nor the previous one)."""
    gone = releases.to_prune(layout.names(), layout.live(), keep, layout.bad())
    for name in gone:
        shutil.rmtree(layout.releases / name, ignore_errors=True)
    if gone:
        layout.log(f"pruned {', '.join(gone)}")
    return gone


def discard(layout: Layout, path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
