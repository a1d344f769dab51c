"""Log files opened safely (corral.logs.safeopen, files): never through a link, by folder descriptor.

The attacker is an app's user who can write the folder of its log file: it swaps the file for a
symbolic link (to a root-only file, or to nothing), or for a hard link, at any moment.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from corral.logs.files import LogWriters
from corral.logs.rotation import RotationPolicy, rotated_files
from corral.logs.safeopen import LogFileError
from tests.conftest import wait_until

SECRET = b"root:secret-hash:19000:0:99999:7:::\n"


def policy(max_size: int = 0, compress: bool = False) -> RotationPolicy:
    return RotationPolicy(max_size=max_size, schedule=None, retain=10, max_age=None, compress=compress)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A file the attacker wants written, in a folder of its own."""
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir(mode=0o700)
    path = secret_dir / "shadow"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


def untouched(target: Path) -> bool:
    return target.read_bytes() == SECRET


def test_a_link_in_place_of_the_file_is_refused_and_its_target_untouched(tmp_path: Path, target: Path) -> None:
    log = tmp_path / "app-out.log"
    log.symlink_to(target)
    with pytest.raises(LogFileError) as err:
        LogWriters().acquire(str(log), policy())
    assert str(err.value) == f"log file {log} is a symbolic link: corral does not write through links"
    assert untouched(target)


def test_a_dangling_link_creates_nothing(tmp_path: Path) -> None:
    log, where = tmp_path / "app-out.log", tmp_path / "created-by-root"
    log.symlink_to(where)
    with pytest.raises(LogFileError):
        LogWriters().acquire(str(log), policy())
    assert not where.exists() and log.is_symlink()


def test_a_folder_a_fifo_and_a_hard_link_are_refused_with_one_line(tmp_path: Path, target: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    os.mkfifo(tmp_path / "fifo.log")
    os.link(target, tmp_path / "hard.log")
    writers = LogWriters()
    messages = []
    for name in ("dir.log", "fifo.log", "hard.log"):
        with pytest.raises(LogFileError) as err:
            writers.acquire(str(tmp_path / name), policy())  # the FIFO must not block
        messages.append(str(err.value))
    assert messages == [f"log file {tmp_path}/dir.log is a folder",
                        f"log file {tmp_path}/fifo.log is not a regular file (a FIFO or a socket)",
                        f"log file {tmp_path}/hard.log has 2 hard links: corral does not write through links"]
    assert untouched(target)


def test_a_nul_in_the_path_is_one_line() -> None:
    with pytest.raises(LogFileError, match="embedded null"):
        LogWriters().acquire("/tmp/a\0b.log", policy())


def test_new_files_are_0600(tmp_path: Path) -> None:
    f = LogWriters().acquire(str(tmp_path / "a.log"), policy())
    f.write(b"x\n", 0.0)
    assert stat.S_IMODE((tmp_path / "a.log").stat().st_mode) == 0o600


def test_rotation_after_a_swap_never_writes_the_target(tmp_path: Path, target: Path) -> None:
    log = tmp_path / "app-out.log"
    f = LogWriters().acquire(str(log), policy(max_size=100))
    f.write(b"a" * 60 + b"\n", 1_000_000.0)
    log.unlink()
    log.symlink_to(target)  # the app's user swaps the file
    f.write(b"b" * 60 + b"\n", 1_000_001.0)  # rotates: moves the link aside, a fresh file in place
    f.write(b"c\n", 1_000_002.0)
    assert untouched(target)
    assert not log.is_symlink() and log.read_bytes() == b"b" * 60 + b"\nc\n"
    rotated = rotated_files(str(log))
    assert [Path(r.path).is_symlink() for r in rotated] == [True]  # the link itself, moved, not followed


def test_a_log_file_deleted_under_the_writer_is_replaced_at_the_next_rotation(tmp_path: Path) -> None:
    log = tmp_path / "app-out.log"
    f = LogWriters().acquire(str(log), policy(max_size=100))
    f.write(b"a" * 80 + b"\n", 1_000_000.0)
    log.unlink()
    f.write(b"b" * 80 + b"\n", 1_000_001.0)
    assert log.read_bytes() == b"b" * 80 + b"\n"


def test_flush_of_an_open_file_after_a_swap_truncates_only_what_it_holds(tmp_path: Path, target: Path) -> None:
    log = tmp_path / "app-out.log"
    writers = LogWriters()
    f = writers.acquire(str(log), policy())
    f.write(b"line\n", 0.0)
    log.unlink()
    log.symlink_to(target)
    writers.flush(str(log))
    assert untouched(target)


def test_flush_of_a_closed_file_never_truncates_through_a_link(tmp_path: Path, target: Path) -> None:
    log = tmp_path / "app-out.log"
    log.symlink_to(target)
    touched = LogWriters().flush(str(log))
    assert touched == [] and untouched(target)
    log.unlink()
    log.write_bytes(b"old\n")
    assert LogWriters().flush(str(log)) == [str(log)] and log.read_bytes() == b""


def test_a_file_with_a_rotated_twin_is_reopened(tmp_path: Path) -> None:
    """A daemon killed between a rotation's link and rename leaves two links of one file: ours."""
    log = tmp_path / "app-out.log"
    log.write_bytes(b"before\n")
    os.link(log, tmp_path / "app-out__2026-11-22_05-40-00.log")
    f = LogWriters().acquire(str(log), policy())
    f.write(b"after\n", 0.0)
    assert log.read_bytes() == b"before\nafter\n"


def test_dev_null_is_written_and_never_rotated_nor_truncated(tmp_path: Path) -> None:
    writers = LogWriters()
    f = writers.acquire("/dev/null", policy(max_size=10))
    for _ in range(5):
        f.write(b"x" * 20 + b"\n", 0.0)
    writers.flush("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [n for n in os.listdir("/dev") if n.startswith("null__")]


def test_a_swapped_folder_changes_nothing_for_an_open_file(tmp_path: Path, target: Path) -> None:
    """The folder is held open: renaming it and putting a link to the target's folder in its place
    does not make a rotation create or rename anything there."""
    logs = tmp_path / "logs"
    logs.mkdir()
    f = LogWriters().acquire(str(logs / "shadow"), policy(max_size=100))
    f.write(b"a" * 80 + b"\n", 1_000_000.0)
    logs.rename(tmp_path / "moved")
    logs.symlink_to(target.parent)
    f.write(b"b" * 80 + b"\n", 1_000_001.0)
    assert untouched(target) and os.listdir(target.parent) == ["shadow"]
    moved = sorted(os.listdir(tmp_path / "moved"))
    assert len(moved) == 2 and moved[0] == "shadow" and moved[1].startswith("shadow__")


def test_compression_keeps_mode_and_owner_and_skips_links(tmp_path: Path, target: Path) -> None:
    log = tmp_path / "app-out.log"
    writers = LogWriters()
    f = writers.acquire(str(log), policy(max_size=100, compress=True))
    f.write(b"a" * 80 + b"\n", 1_000_000.0)
    f.write(b"b" * 80 + b"\n", 1_000_001.0)
    wait_until(lambda: not writers.compressor.pending, 10, "the compression thread")
    gz = [Path(r.path) for r in rotated_files(str(log))]
    assert [p.suffix for p in gz] == [".gz"]
    assert stat.S_IMODE(gz[0].stat().st_mode) == 0o600
    # a rotated file swapped for a link before the thread gets to it: nothing is read through it
    from corral.logs.safeopen import gzip_at

    (tmp_path / "evil.log").symlink_to(target)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            gzip_at(dir_fd, "evil.log", 1)
    finally:
        os.close(dir_fd)
    assert not (tmp_path / "evil.log.gz").exists() and untouched(target)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
def test_new_files_belong_to_the_apps_user(tmp_path: Path) -> None:
    owner = (65534, 65534)  # nobody
    writers = LogWriters()
    f = writers.acquire(str(tmp_path / "a.log"), policy(max_size=10), owner)
    f.write(b"x" * 20 + b"\n", 1_000_000.0)
    f.write(b"y" * 20 + b"\n", 1_000_001.0)  # rotated: the fresh file too
    for path in [tmp_path / "a.log", *(Path(r.path) for r in rotated_files(str(tmp_path / "a.log")))]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == owner and stat.S_IMODE(st.st_mode) == 0o600
    writers.acquire(str(tmp_path / "new" / "sub" / "c.log"), policy(), owner)
    for folder in (tmp_path / "new", tmp_path / "new" / "sub"):  # folders it makes are the user's too
        st = folder.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (*owner, 0o700)
    existing = tmp_path / "b.log"
    existing.write_bytes(b"")
    writers.acquire(str(existing), policy(), owner)
    assert existing.stat().st_uid == os.geteuid()  # only files corral creates are handed over
