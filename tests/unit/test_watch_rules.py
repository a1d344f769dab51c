"""What a file change concerns (the watch helper's pure rules), and the log targets PM2 files use:
``/dev/null`` one for every instance and never flushed, ``log_file`` getting both streams."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from corral.config.spec import AppSpec
from corral.logs.sinks import FileLogs
from corral.process.watcher import concerns, ignored, report

CWD = "/srv/app"


@pytest.mark.parametrize(("path", "patterns", "expected"), [
    # PM2's default (no ignore_watch): dot files and folders, node_modules
    ("/srv/app/server.js", None, False),
    ("/srv/app/.git/index", None, True),
    ("/srv/app/src/.env", None, True),
    ("/srv/app/node_modules/x/index.js", None, True),
    ("/srv/app/my_node_modules.js", None, False),
    # Python's bytecode cache, whatever the list says
    ("/srv/app/__pycache__/app.cpython-311.pyc", ["logs"], True),
    ("/srv/app/lib/util.pyc", [], True),
    # globs: the path, a folder it is in, or one name
    ("/srv/app/logs/out.log", ["*.log"], True),
    ("/srv/app/client/img/a.png", ["client/img"], True),
    ("/srv/app/client/imgs/a.png", ["client/img"], False),
    ("/srv/app/node_modules/a.js", ["logs"], False),  # a list of one's own replaces PM2's default
    ("/srv/app/tmp/a.js", ["tmp/"], True),
    # regular expressions (PM2's docs: "\\.git"; a RegExp in a .js file arrives as its source)
    ("/srv/app/.git/HEAD", ["\\.git"], True),
    ("/srv/app/src/a.test.js", [r"\.test\.js$"], True),
    ("/srv/app/src/a.js", [r"\.test\.js$"], False),
    # absolute paths
    ("/srv/app/data/x.db", ["/srv/app/data"], True),
    ("/srv/app/database.js", ["/srv/app/data"], False),
])
def test_ignored(path: str, patterns: list[str] | None, expected: bool) -> None:
    assert ignored(path, CWD, patterns) is expected


def test_concerns_and_report() -> None:
    rules = {"paths": ["/srv/app/src", "/etc/app.conf"], "cwd": CWD, "ignore": ["*.tmp"],
             "skip": ["/srv/app/src/out.log"]}
    assert concerns(rules, "/srv/app/src/a.js")
    assert concerns(rules, "/etc/app.conf")
    assert not concerns(rules, "/srv/app/README.md")  # not under a watched path
    assert not concerns(rules, "/srv/app/src/a.tmp")  # ignored
    assert not concerns(rules, "/srv/app/src/out.log")  # the app's own log file
    assert not concerns(rules, "/srv/app/srcs/a.js")
    other = {"paths": ["/srv/app"], "cwd": CWD, "ignore": None, "skip": []}
    changed = [f"/srv/app/src/{i}.js" for i in range(7)] + ["/srv/app/.git/HEAD"]
    assert report({"api": rules, "all": other, "none": {**rules, "paths": ["/nowhere"]}}, changed) == [
        {"app": "api", "paths": ["src/0.js", "src/1.js", "src/2.js", "src/3.js", "src/4.js"], "count": 7},
        {"app": "all", "paths": ["src/0.js", "src/1.js", "src/2.js", "src/3.js", "src/4.js"], "count": 7},
    ]


def _spec(tmp_path: Path, **changes: object) -> AppSpec:
    return AppSpec.from_dict({"name": "api", "script": str(tmp_path / "a.js"), "cwd": str(tmp_path), **changes})


def test_dev_null_is_one_device_for_every_instance(tmp_path: Path) -> None:
    logs = FileLogs(str(tmp_path / "logs"))
    spec = _spec(tmp_path, instances=3, out_file="/dev/null", error_file=str(tmp_path / "err.log"),
                 log_file="/dev/null")
    assert [logs.paths(spec, i) for i in range(3)] == [("/dev/null", str(tmp_path / f"err-{i}.log")) for i in range(3)]
    assert [logs.combined_path(spec, i) for i in range(3)] == ["/dev/null"] * 3


def test_dev_null_is_written_never_rotated_nor_flushed(tmp_path: Path) -> None:
    logs = FileLogs(str(tmp_path / "logs"))
    spec = _spec(tmp_path, out_file="/dev/null", error_file="/dev/null", log_max_size=1024, time=False)
    before = sorted(n for n in os.listdir("/dev") if n.startswith("null"))
    sinks = logs.open(spec, 0)
    for _ in range(100):
        sinks.out(b"x" * 100 + b"\n")
    assert logs.flush("/dev/null") == []  # open: left alone, nothing reported
    sinks.close()
    assert logs.flush("/dev/null") == []  # closed: the same
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert sorted(n for n in os.listdir("/dev") if n.startswith("null")) == before


def test_log_file_gets_both_streams(tmp_path: Path) -> None:
    logs = FileLogs(str(tmp_path / "logs"))
    spec = _spec(tmp_path, log_file=True, time=False)
    assert logs.combined_path(spec, 0) == str(tmp_path / "logs" / "api.log")
    sinks = logs.open(spec, 0)
    sinks.out(b"to out\n")
    sinks.err(b"to err\n")
    sinks.out(b"out again\n")
    sinks.close()
    folder = tmp_path / "logs"
    assert (folder / "api-out.log").read_text() == "to out\nout again\n"
    assert (folder / "api-error.log").read_text() == "to err\n"
    assert (folder / "api.log").read_text() == "to out\nto err\nout again\n"
    assert logs.flush(str(folder / "api.log")) == [str(folder / "api.log")]
    assert (folder / "api.log").read_text() == ""


def test_log_file_equal_to_out_file_is_written_once(tmp_path: Path) -> None:
    logs = FileLogs(str(tmp_path / "logs"))
    both = str(tmp_path / "all.log")
    spec = _spec(tmp_path, out_file=both, log_file=both, time=False)
    sinks = logs.open(spec, 0)
    sinks.out(b"one\n")
    sinks.err(b"two\n")
    sinks.close()
    assert Path(both).read_text() == "one\ntwo\n"
