"""Crash reports (spec E2): what kind of failure ended an instance, published as a ``crash`` event.

The supervisor calls :func:`crash_event` when an instance's main process exits; it makes a
report when the exit was a failure (non-zero code not in ``stop_exit_codes``, or a signal) and
nobody asked for it (the instance was not stopping).  The report is parsed from the last lines
of the instance's stderr (:func:`corral.logs.tracebacks.parse_crash`: the last Python traceback or Node
stack), redacted like the logs, and stored with the exit::

    {"code": 1, "signal": null, "pid": 4242, "language": "python", "exc_type": "KeyError",
     "message": "'user'", "classification": "code_bug", "is_code_bug": true,
     "frames": [...], "tail": [...the last 50 stderr lines...]}

The event's message reads ``KeyError: 'user' (code_bug; exit code 1)``.
"""

from __future__ import annotations

from typing import Any

from corral.events import InstanceCrashed
from corral.logs.tracebacks import parse_crash
from corral.logs.lines import budget, redactor_of
from corral.app.errors import CODE_BUG
from corral.lifecycle.exits import describe_exit
from corral.lifecycle.instance import RUNNING

__all__ = ["crash_event", "crash_report", "last_crash"]

TAIL_LINES = 50
MAX_MESSAGE = 500


def crash_report(tail: list[str], code: int | None, sig: str | None, pid: int | None,
                 redactor: Any = None) -> dict[str, Any]:
    """The report for one failed exit, from the last stderr lines (pure).  ``redactor``: a
    ``Redactor``, or its ``redact_chunk`` (``corral.logs.lines.redactor_of``); a line it cannot
    redact in time is withheld, as in the log file."""
    if redactor is not None and tail:
        redact = redactor if callable(redactor) else redactor.redact_chunk
        data = "\n".join(tail).encode("utf-8", "surrogateescape") + b"\n"
        text, _ = redact(data, budget(len(data)))
        tail = text.decode("utf-8", "surrogateescape").split("\n")[:-1]
    parsed = parse_crash(tail)
    report: dict[str, Any] = {"code": code, "signal": sig, "pid": pid, "language": None, "exc_type": None,
                              "message": None, "classification": None, "is_code_bug": None, "frames": []}
    if parsed is not None:
        report.update({
            "language": parsed["language"], "exc_type": parsed["exc_type"],
            "message": parsed["message"][:MAX_MESSAGE], "code_name": parsed.get("code"),
            "classification": parsed["classification"],
            "is_code_bug": parsed["classification"] == CODE_BUG, "frames": parsed["frames"],
        })
    report["tail"] = tail[-TAIL_LINES:]
    return report


def describe(report: dict[str, Any]) -> str:
    """One line: ``KeyError: 'user' (code_bug; exit code 1)``."""
    how = describe_exit(report.get("code"), report.get("signal"))
    if not report.get("exc_type"):
        return f"{how} (no traceback in stderr)"
    text = f"{report['exc_type']}: {report['message']}" if report.get("message") else report["exc_type"]
    if len(text) > 200:
        text = text[:199] + "…"
    return f"{text} ({report['classification']}; {how})"


def crash_event(slot: Any, code: int | None, sig: str | None) -> InstanceCrashed | None:
    """The ``crash`` event for ``slot`` if this exit is an unrequested failure (else None).

    Called by the supervisor before it feeds the exit to the lifecycle (so ``slot.status`` is
    still the status the instance had while it ran)."""
    if slot.status not in RUNNING:
        return None  # stopping on request, or not running at all
    if slot.app.policy.is_clean(code, sig):
        return None
    tail = slot.stderr.tail_lines(TAIL_LINES) if slot.stderr is not None else []
    pid = slot.child.pid if slot.child is not None else None
    report = crash_report(tail, code, sig, pid, redactor_of(slot.app.spec))
    return InstanceCrashed(app=slot.app.name, instance=slot.index, report=report, message=describe(report))


def last_crash(store: Any, app: str) -> dict[str, Any] | None:
    """The newest ``crash`` event of ``app`` (with ``ts``, ``instance`` and the report), or None."""
    for event in reversed(store.events(app, 200)):
        if event["kind"] == "crash":
            return {"ts": event["ts"], "instance": event["instance"], "summary": event["message"],
                    **event["data"]}
    return None
