"""Crash reports from a stderr tail: fields, one-line summary, redaction of the stored tail."""

from __future__ import annotations

from corral.logs.crashreport import crash_report, describe
from corral.app.redact import Redactor

TRACEBACK = [
    "2026-11-22T05:40:00.123+00:00 connecting with password=hunter2",
    "2026-11-22T05:40:00.124+00:00 Traceback (most recent call last):",
    '2026-11-22T05:40:00.124+00:00   File "/srv/app.py", line 3, in <module>',
    "2026-11-22T05:40:00.124+00:00     db.connect()",
    "2026-11-22T05:40:00.124+00:00 ConnectionRefusedError: [Errno 111] Connection refused",
]


def test_a_python_traceback() -> None:
    report = crash_report(TRACEBACK, 1, None, 42, Redactor())
    assert report["exc_type"] == "ConnectionRefusedError" and report["classification"] == "external"
    assert report["is_code_bug"] is False and report["language"] == "python"
    assert report["code"] == 1 and report["signal"] is None and report["pid"] == 42
    assert report["frames"] == ['File "/srv/app.py", line 3, in <module>']
    assert "hunter2" not in "\n".join(report["tail"]) and "REDACTED" in report["tail"][0]
    assert describe(report) == "ConnectionRefusedError: [Errno 111] Connection refused (external; exit code 1)"


def test_no_traceback_and_a_signal() -> None:
    report = crash_report(["just some output"], None, "SIGKILL", 7)
    assert report["exc_type"] is None and report["classification"] is None
    assert describe(report) == "killed by SIGKILL (no traceback in stderr)"


def test_a_long_message_is_shortened_in_the_summary() -> None:
    report = crash_report(["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
                           "KeyError: '" + "k" * 400 + "'"], 1, None, 1)
    assert report["classification"] == "code_bug" and report["is_code_bug"] is True
    line = describe(report)
    assert len(line) < 240 and line.endswith("(code_bug; exit code 1)")
