"""deploy.switch on real files: the switch is atomic, the lock says who holds it, shared paths,
hooks killed with their children at the timeout, fetch errors are one line."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from corral.deploy.switch import DeployError, Layout, Lock, fetch, link_shared, place, run_hooks, switch


def layout_with(tmp_path: Path, *names: str) -> Layout:
    layout = Layout(str(tmp_path / "srv"))
    layout.prepare()
    for name in names:
        (layout.releases / name).mkdir()
    return layout


def test_current_never_goes_missing_while_it_is_switched(tmp_path: Path) -> None:
    a, b = "20261130070000-aaaaaaa", "20261130070001-bbbbbbb"
    layout = layout_with(tmp_path, a, b)
    switch(layout, a)
    missing: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(os.readlink(layout.current))
            except OSError as exc:
                missing.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(2000):
            switch(layout, b if n % 2 == 0 else a)
    finally:
        stop.set()
        reader.join()
    assert missing == []
    assert seen == {f"releases/{a}", f"releases/{b}"}
    assert layout.live() == a and not list(layout.root.glob(".current-*"))
    with pytest.raises(DeployError, match="release 20261130070002-ccccccc does not exist"):
        switch(layout, "20261130070002-ccccccc")
    assert layout.live() == a


def test_the_lock_says_who_holds_it_and_is_free_again_after(tmp_path: Path) -> None:
    layout = layout_with(tmp_path)
    with Lock(layout, "deploy"):
        with pytest.raises(DeployError) as caught:
            with Lock(layout, "rollback"):
                pass
        message = str(caught.value)
        assert message.startswith("deploy: another deploy is running here (deploy by ")
        assert f"pid {os.getpid()}, since " in message and message.endswith("; nothing was changed")
    with Lock(layout, "rollback"):
        pass


def test_shared_paths_are_seeded_by_the_first_release_then_linked(tmp_path: Path) -> None:
    first, second = "20261130070000-aaaaaaa", "20261130070001-bbbbbbb"
    layout = layout_with(tmp_path, first, second)
    (layout.releases / first / ".env").write_text("A=1\n")
    link_shared(layout, first, (".env", "logs/", "var/cache/"))
    assert (layout.shared / ".env").read_text() == "A=1\n" and (layout.shared / "var" / "cache").is_dir()
    (layout.releases / second / ".env").write_text("A=from the repo\n")  # the shared one wins
    link_shared(layout, second, (".env", "logs/", "var/cache/"))
    for name in (first, second):
        assert (layout.releases / name / ".env").is_symlink()
        assert (layout.releases / name / ".env").read_text() == "A=1\n"
        assert os.path.realpath(layout.releases / name / "var" / "cache") == str(layout.shared / "var" / "cache")
    with pytest.raises(DeployError, match=r"^deploy: shared file secret.key is neither in "):
        link_shared(layout, second, ("secret.key",))


def gone(pid: int) -> bool:
    """No process PID, or only its zombie (killed, not reaped yet by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_hook_that_outlives_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    layout = layout_with(tmp_path)
    pidfile = tmp_path / "child"
    started = time.monotonic()
    with pytest.raises(DeployError) as caught:
        run_hooks(layout, "build", (f"sleep 60 & echo $! > {pidfile}; wait",), tmp_path, 1.0)
    assert time.monotonic() - started < 10
    assert str(caught.value).startswith("deploy: build `sleep 60 & echo $! > ")
    assert "took more than 1s and was killed" in str(caught.value)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not gone(child):
        assert time.monotonic() < deadline, f"the hook's child {child} outlived the hook"
        time.sleep(0.05)
    with pytest.raises(DeployError, match=r"^deploy: build `false` failed with exit status 1 \(its output is in "):
        run_hooks(layout, "build", ("echo one", "false", "echo never"), tmp_path, 10.0)
    log = layout.log_path.read_text()
    assert "build: $ echo one" in log and "\none\n" in log and "never" not in log.replace("echo never", "")


def test_fetch_a_git_ref_or_say_why_not(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "app.py").write_text("print('v1')\n")
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "v1"], check=True)
    subprocess.run([*git, "-C", str(repo), "tag", "v1"], check=True)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    layout = layout_with(tmp_path)
    for ref in ("main", "origin/main", "v1", sha[:10]):
        incoming, revision = fetch(layout, str(repo), ref)
        assert revision == sha and (incoming / "app.py").exists()
        name = place(layout, incoming, revision, time.time())
        assert f"-{sha[:7]}" in name
        assert (layout.releases / name / "REVISION").read_text() == sha + "\n"
    with pytest.raises(DeployError, match=f'^deploy: ref "nope" does not exist in {repo}$'):
        fetch(layout, str(repo), "nope")
    with pytest.raises(DeployError, match=f"^deploy: repo {tmp_path / 'gone'} does not exist$"):
        fetch(layout, str(tmp_path / "gone"), "main")
    assert not [p for p in layout.releases.iterdir() if p.name.startswith(".incoming")]
