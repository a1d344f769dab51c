"""The pure parts of profiling: retention, the summaries and the flame graph, the ptrace
diagnosis, the once-an-hour rule; the exec shim's --ptracer; the app library's heap handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import pytest

from corral.cli.parser import UsageError
from corral.cli.profile import duration_of
from corral.clock import ManualClock
from corral.process.limits import needs_ptracer
from corral.profile import artifacts, cpu, rights
from corral.profile.service import AutoLimit, deadline_for

DAY = 86400.0
SHIM = Path(__file__).resolve().parents[2] / "corral" / "process" / "exec_shim.py"


def test_retention_keeps_the_newest_twenty_and_nothing_older_than_a_week() -> None:
    now = 100 * DAY
    files = [(f"cpu-0-1-{i:02d}.svg", now - i * 60.0) for i in range(25)]  # minutes apart, i=0 newest
    doomed = artifacts.to_prune(files, now)
    assert doomed == [f"cpu-0-1-{i:02d}.svg" for i in range(24, 19, -1)]  # oldest first
    old = [("heap-0-1-a.txt", now - 8 * DAY), ("heap-0-1-b.txt", now - 6 * DAY)]
    assert artifacts.to_prune(old, now) == ["heap-0-1-a.txt"]
    assert artifacts.to_prune(old, now, keep=0) == ["heap-0-1-a.txt", "heap-0-1-b.txt"]
    assert artifacts.to_prune([], now) == []


def test_prune_removes_only_corrals_files(tmp_path: Path) -> None:
    for name in ("cpu-0-1-x.svg", "notes.txt", "heap-0-1-y.tracemalloc"):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (1.0, 1.0))  # 1970: far older than a week
    assert sorted(artifacts.prune(str(tmp_path))) == ["cpu-0-1-x.svg", "heap-0-1-y.tracemalloc"]
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    assert artifacts.prune(str(tmp_path / "missing")) == []


SPEEDSCOPE = {
    "shared": {"frames": [{"name": "<module>", "file": "a.py", "line": 9}, {"name": "hot", "file": "a.py", "line": 3},
                          {"name": "hot", "file": "a.py", "line": 3, "col": 1}, {"name": "cold", "file": "a.py", "line": 5}]},
    "profiles": [{"samples": [[0, 1], [0, 2], [0, 1], [0, 3]], "weights": [0.01] * 4},
                 {"samples": [[0], [0, 1]], "weights": [0.01, 0.01]}],
}


def test_top_functions_by_self_time_in_a_speedscope_file() -> None:
    top = cpu.speedscope_top(SPEEDSCOPE)
    assert [(r["function"], r["where"], r["samples"], r["share"]) for r in top] == [
        ("hot", "a.py:3", 4, 66.7), ("cold", "a.py:5", 1, 16.7), ("<module>", "a.py:9", 1, 16.7)]
    assert cpu.speedscope_top(SPEEDSCOPE, 1)[0]["function"] == "hot"
    assert cpu.speedscope_top({}) == []


def test_top_functions_of_a_v8_cpuprofile() -> None:
    doc = {"nodes": [{"id": 1, "callFrame": {"functionName": "(root)", "url": "", "lineNumber": -1}},
                     {"id": 2, "callFrame": {"functionName": "hotKnownFunction", "url": "file:///h.js", "lineNumber": 0}},
                     {"id": 3, "callFrame": {"functionName": "", "url": "file:///h.js", "lineNumber": 4}}],
           "samples": [2, 2, 2, 3, 1]}
    top = cpu.cpuprofile_top(doc)
    assert [(r["function"], r["where"], r["samples"]) for r in top] == [
        ("hotKnownFunction", "file:///h.js:1", 3), ("(anonymous)", "file:///h.js:5", 1), ("(root)", "", 1)]


def test_the_flame_graph_is_svg_with_every_function_and_its_samples() -> None:
    svg = cpu.flamegraph_svg(SPEEDSCOPE, "app[0] <pid 1>")
    dom = xml.dom.minidom.parseString(svg)
    titles = [t.firstChild.data for t in dom.getElementsByTagName("title")]
    assert "hot (4 samples)" in titles and "<module> (6 samples)" in titles and "cold (1 samples)" in titles
    assert "app[0] &lt;pid 1&gt; (6 samples)" in svg
    xml.dom.minidom.parseString(cpu.flamegraph_svg({}, "empty"))


@pytest.mark.parametrize(("scope", "cap", "container", "error", "says"), [
    (None, False, True, "Permission Denied", "no CAP_SYS_PTRACE; run the container with --cap-add SYS_PTRACE"),
    (2, False, False, "Operation not permitted (os error 1)", "no CAP_SYS_PTRACE; run the daemon as root"),
    (3, True, False, "Permission Denied", "kernel.yama.ptrace_scope is 3"),
    (1, False, False, "Permission Denied", "kernel.yama.ptrace_scope is 1 and the app did not allow the daemon"),
    (None, True, False, "Failed to find python version from target process", "cannot trace pid 7: Failed to find"),
])
def test_a_tracing_failure_is_one_line_with_the_fix(scope: int | None, cap: bool, container: bool, error: str,
                                                    says: str) -> None:
    line = rights.diagnose(7, error, scope, cap, container)
    assert says in line and "\n" not in line and line.startswith("cannot trace pid 7: ")


def test_the_shim_names_the_daemon_only_under_yama_scope_1_without_the_capability() -> None:
    assert needs_ptracer(1, False)
    assert not needs_ptracer(1, True) and not needs_ptracer(None, False) and not needs_ptracer(0, False)
    assert not needs_ptracer(2, False) and not needs_ptracer(3, False)  # PR_SET_PTRACER cannot help there


def test_the_shim_with_ptracer_still_runs_the_program() -> None:
    done = subprocess.run([sys.executable, "-I", "-S", str(SHIM), "--ptracer", str(os.getpid()), "--",
                           "sh", "-c", "echo ran $$"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout.startswith("ran ") and done.stderr == ""


def test_automatic_snapshots_once_an_hour_per_app() -> None:
    clock, limit = ManualClock(), AutoLimit()
    assert limit.allow("api", clock.monotonic())
    clock.advance(3599)
    assert not limit.allow("api", clock.monotonic())
    assert limit.allow("worker", clock.monotonic())  # per app
    clock.advance(1)
    assert limit.allow("api", clock.monotonic())


def test_the_helper_deadlines_bound_each_capture() -> None:
    assert deadline_for({"what": "evidence", "timeout": 3.0}) == 5.0  # never holds a replacement long
    assert deadline_for({"what": "cpu", "duration": 10}) == 70.0


def test_durations_of_the_cli() -> None:
    assert duration_of("3s") == 3 and duration_of("2m") == 120 and duration_of("30") == 30
    for bad in ("abc", "0s", "2h", ""):
        with pytest.raises(UsageError):
            duration_of(bad)


APP = """
import os, signal, sys
import corral.app
print(signal.getsignal(signal.SIGUSR2) not in (signal.SIG_DFL, None))
"""


def test_the_app_library_answers_sigusr2_only_under_corral_and_only_when_free(tmp_path: Path) -> None:
    def handled(env: dict[str, str], prelude: str = "") -> str:
        code = prelude + APP
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                              env={**os.environ, **env}).stdout.strip()

    base = {k: v for k, v in os.environ.items() if k != "CORRAL_PROFILE_DIR"}
    assert handled({"CORRAL_PROFILE_DIR": str(tmp_path)}) == "True"
    os.environ.pop("CORRAL_PROFILE_DIR", None)
    assert subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=30, check=True,
                          env=base).stdout.strip() == "False"
    mine = "import signal\nsignal.signal(signal.SIGUSR2, lambda *a: None)\nold = signal.getsignal(signal.SIGUSR2)\n"
    code = mine + APP.replace("print(", "print(signal.getsignal(signal.SIGUSR2) is old, ")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                         env={**base, "CORRAL_PROFILE_DIR": str(tmp_path)}).stdout.split()
    assert out[0] == "True"  # the app's own handler stays


def test_the_app_library_writes_a_snapshot_and_a_report(tmp_path: Path) -> None:
    code = f"""
import tracemalloc
tracemalloc.start(1)
from corral.app import heap
held = [bytearray(4096) for _ in range(300)]  # the leaking line
(tmp_path / ".request-1")
paths = heap.write_snapshot({str(tmp_path)!r})
print(paths)
"""
    code = code.replace('(tmp_path / ".request-1")\n', "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[0].endswith(".tracemalloc") and files[1].endswith(".txt"), (files, done)
    report = (tmp_path / files[1]).read_text().splitlines()
    assert report[0].startswith("top ") and "<string>:5" in report[1] and "KiB" in report[1]
    assert json.dumps(report)  # plain text
