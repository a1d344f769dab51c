"""A full disk, for real: an app writes to a log file on a small tmpfs that fills up.

What the user relies on (issue 8): every line is either in the file, whole, or counted as dropped
(per app, in ``ls`` and ``describe``; bytes too); the app is never blocked; the daemon says once
in daemon.log that it drops lines, and never dies; when space returns (a filler file deleted),
writing resumes by itself and a ``log_dropped`` event says how many lines were lost and since
when.  The test mounts the tmpfs, so it runs as root and skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Corral, app, wait_until
from tests.logfiles import STAMP

COUNT = 4000  # "fill" lines written while the disk fills (about 900 fit)
MORE = 100  # "more" lines written after space returns
PAD = "p" * 100
DISK = 512 * 1024
FILLER = 384 * 1024


@pytest.fixture
def small_disk(workdir: Path) -> Any:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = workdir / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def landed(path: Path, word: str) -> list[int]:
    """The numbers of the ``word`` lines in the log file, each checked to be whole (its stamp, its
    number, its whole padding), in file order."""
    numbers = []
    for line in path.read_text().splitlines():
        body = STAMP.sub("", line, count=1)
        assert STAMP.match(line) and re.fullmatch(r"(fill|more) \d+ " + PAD, body), f"a cut line: {line[:80]!r}"
        if body.startswith(word + " "):
            numbers.append(int(body.split()[1]))
    return numbers


def line_bytes(word: str, number: int) -> int:
    return len(f"{word} {number} {PAD}\n")


def test_a_full_disk_drops_and_counts_lines_and_reports_them_when_space_returns(
        corral: Corral, workdir: Path, small_disk: Path, record_property: Any) -> None:
    (small_disk / "filler").write_bytes(b"\0" * FILLER)
    log, result = small_disk / "fill.log", workdir / "result.json"
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "fill"
script = "{app('diskfill.py')}"
args = ["{COUNT}", "{MORE}", "{result}"]
out_file = "{log}"
""")
    corral.run("start", str(workdir / "corral.toml"))
    wrote = wait_until(lambda: result.exists() and json.loads(result.read_text()), 30, "the app to write its lines")
    assert wrote["fill"] == COUNT
    assert wrote["slowest"] < 1.0, f"the app was blocked for {wrote['slowest']:.2f} s on a full disk"

    # every line is in the file (whole) or counted, lines and bytes
    seen: dict[str, Any] = {}

    def accounted() -> bool:
        seen["row"], seen["fill"] = corral.row("fill"), landed(log, "fill")
        return seen["row"]["log_loss"]["dropped_lines"] + len(seen["fill"]) == COUNT

    wait_until(accounted, 20, "every line written or counted")
    fill, loss = seen["fill"], seen["row"]["log_loss"]
    assert 0 < len(fill) < COUNT and fill == sorted(set(fill))
    lost = set(range(COUNT)) - set(fill)
    assert loss == {"dropped_lines": len(lost), "dropped_bytes": sum(line_bytes("fill", n) for n in lost),
                    "withheld_lines": 0}
    table = corral.run("ls").stdout
    assert re.search(r"fill .* \d+(\.\d)?k? dropped", table), table
    info = json.loads(corral.run("describe", "fill", "--json").stdout)
    [dropping] = info["log_loss"]["dropping"]
    assert (dropping["instance"], dropping["stream"], dropping["path"]) == (0, "out", str(log))
    assert dropping["error"] == "No space left on device" and dropping["lines"] == len(lost)
    assert "log lines not written: " + str(len(lost)) in corral.run("describe", "fill").stdout
    assert not [e for e in corral.events("fill") if e["kind"] == "log_dropped"]

    # space returns: the next lines are written, and the event tells what was lost
    (small_disk / "filler").unlink()
    corral.run("signal", "SIGUSR1", "fill")
    wait_until(lambda: json.loads(result.read_text())["more"] == MORE, 30, "the app to write its other lines")
    [event] = wait_until(lambda: [e for e in corral.events("fill") if e["kind"] == "log_dropped"], 20,
                         "the log_dropped event")
    more = landed(log, "more")
    skipped = MORE - len(more)  # written within a second of the last failure: dropped, counted
    assert more == list(range(skipped, MORE)) and skipped < MORE
    final = corral.row("fill")["log_loss"]
    assert final["dropped_lines"] == len(lost) + skipped
    assert final["dropped_bytes"] == loss["dropped_bytes"] + sum(line_bytes("more", n) for n in range(skipped))
    assert event["instance"] == 0 and event["data"]["lines"] == final["dropped_lines"]
    assert event["data"]["bytes"] == final["dropped_bytes"]
    assert event["data"]["since"] == dropping["since"] and event["data"]["error"] == "No space left on device"
    assert f"{final['dropped_lines']} line(s)" in event["message"] and str(log) in event["message"]
    assert "log_dropped" in corral.run("events", "fill").stdout
    info = json.loads(corral.run("describe", "fill", "--json").stdout)
    assert info["log_loss"]["dropping"] == []

    daemon_log = (Path(corral.home) / "daemon.log").read_text()
    assert daemon_log.count("fill[0]: cannot write its stdout log") == 1, daemon_log[-3000:]
    assert daemon_log.count("fill[0]: writing its stdout log again") == 1
    assert "Traceback" not in daemon_log
    assert len(corral.daemons) == 1  # never died
    record_property("fuzz", f"disk full: {COUNT + MORE} lines written, {len(fill)} + {len(more)} landed whole "
                            "(full, then space back), "
                            f"{final['dropped_lines']} dropped and counted, 0 lost uncounted, 0 daemon deaths, "
                            f"slowest app write {wrote['slowest'] * 1000:.1f} ms")
    corral.run("delete", "fill")  # closes the file before the tmpfs goes
