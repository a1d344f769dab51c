"""JSON logging for managed Python programs (spec A2): one redacted JSON object per line.

Usage::

    import logging
    from corral.app.logging import JsonHandler

    logging.basicConfig(level=logging.INFO, handlers=[JsonHandler()])
    logging.getLogger("app").info("paid", extra={"order": 42, "card": "4111 1111 1111 1111"})
    # {"ts":"2026-11-22T10:00:00.123+00:00","level":"info","logger":"app","message":"paid",
    #  "order":42,"card":"REDACTED"}

Each line has ``ts`` (ISO 8601, UTC, milliseconds), ``level`` (lower-case level name),
``logger``, ``message`` and the record's ``extra`` fields (an extra field named like one of these
is written with a trailing ``_``). With ``exc_info`` it adds ``exc_type`` (module-qualified as in
a traceback's last line, e.g. ``httpx.ConnectError``), ``exc_message``, ``traceback`` (the
formatted text), ``classification`` and ``is_code_bug`` (see :mod:`corral.app.errors`); with
``stack_info`` it adds ``stack``. The whole object then goes through
:func:`corral.app.redact.redact_obj`: sensitive keys anywhere become ``REDACTED`` and secrets in
strings (bearer tokens, ``password=...``, card numbers) are masked. Values JSON cannot hold are
written as their ``str()``.

Only the standard library and ``corral.app.redact`` / ``corral.app.errors`` (both stdlib-only) are used.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, UTC
from typing import IO, Any

from corral.app.errors import CODE_BUG, classify
from corral.app.redact import Redactor, redact_obj

__all__ = ["JsonFormatter", "JsonHandler"]

_RESERVED = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName"}
_CORE = ("ts", "level", "logger", "message", "exc_type", "exc_message", "traceback",
         "classification", "is_code_bug", "stack")
_MAX_DEPTH = 32


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON object (see the module docstring)."""

    def __init__(self, *, redactor: Redactor | None = None, ensure_ascii: bool = False) -> None:
        super().__init__()
        self._redact = redactor.redact_obj if redactor is not None else redact_obj
        self._ensure_ascii = ensure_ascii

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key + "_" if key in _CORE else key] = _jsonable(value, 0)
        if record.exc_info and record.exc_info[1] is not None:
            payload.update(_exception_fields(record.exc_info[1]))
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(self._redact(payload), ensure_ascii=self._ensure_ascii,
                          separators=(",", ":"), default=str)


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` (stderr by default) with a :class:`JsonFormatter`."""

    def __init__(self, stream: IO[str] | None = None, *, redactor: Redactor | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter(redactor=redactor))


def _exception_fields(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    module = cls.__module__
    name = cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the log line
        message = f"<unprintable {cls.__name__}>"
    classification = classify(exc)
    return {
        "exc_type": name,
        "exc_message": message,
        "traceback": "".join(traceback.format_exception(exc)).rstrip("\n"),
        "classification": classification,
        "is_code_bug": classification == CODE_BUG,
    }


def _jsonable(value: Any, depth: int) -> Any:
    """A copy of ``value`` that json can write and the redactor can see into."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"
