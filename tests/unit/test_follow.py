"""`logs --follow` across rotations, with the rotations done by hand (no daemon, no timing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.cli import logs
from corral.cli.logs import Source
from corral.logs.rotation import rotated_name


def rotate(path: Path, now: float) -> None:
    """As the daemon does: hard link to the rotated name, then a new file renamed over the path."""
    taken = set(os.listdir(path.parent))
    os.link(path, rotated_name(str(path), now, taken))
    fresh = path.with_suffix(".tmp")
    fresh.write_bytes(b"")
    os.rename(fresh, path)


def test_lines_of_files_rotated_between_two_polls_all_come_in_order(tmp_path: Path) -> None:
    path = tmp_path / "app-out.log"
    path.write_bytes(b"a1\na2\n")
    source = Source({"path": str(path)}, "app")
    assert source.new_lines() == [b"a1", b"a2"]
    with open(path, "ab") as f:
        f.write(b"a3\n")
    rotate(path, 1_000_000.0)
    path.write_bytes(b"b1\n")
    rotate(path, 1_000_000.0)  # the same second: a ".1" name
    path.write_bytes(b"c1\nc2\n")
    assert source.new_lines() == [b"a3", b"b1", b"c1", b"c2"]


def test_a_rotation_right_after_the_follower_lists_rotated_files_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app-out.log"
    path.write_bytes(b"a1\n")
    source = Source({"path": str(path)}, "app")
    assert source.new_lines() == [b"a1"]
    rotate(path, 1_000_000.0)
    path.write_bytes(b"b1\n")
    rotate(path, 1_000_000.0)
    path.write_bytes(b"c1\n")
    real = logs._rotated
    rotations = []

    def list_then_rotate(p: str) -> list[object]:
        found = real(p)
        if not rotations:  # the writer rotates again just after the listing
            rotations.append(1)
            rotate(path, 1_000_001.0)
            path.write_bytes(b"d1\n")
        return found

    monkeypatch.setattr(logs, "_rotated", list_then_rotate)
    got = source.new_lines()
    got += source.new_lines()
    assert got == [b"b1", b"c1", b"d1"]
