"""corral.app.logging: one redacted JSON object per line, with exception classification."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from corral.app.logging import JsonFormatter, JsonHandler
from corral.app.redact import Redactor


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.app_logging.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = JsonHandler(stream)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_basic_fields(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("hello %s", "world")
    (rec,) = records(stream)
    assert list(rec)[:4] == ["ts", "level", "logger", "message"]
    assert rec["level"] == "info" and rec["message"] == "hello world" and rec["logger"] == logger.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", rec["ts"])
    assert datetime.fromisoformat(rec["ts"]).tzinfo is not None
    assert "exc_type" not in rec


def test_extra_fields_are_redacted(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.warning("login for %s with password=%s", "bob", "hunter2", extra={
        "user": "bob", "password": "hunter2", "headers": {"Authorization": "Bearer abcdefgh12345678"},
        "items": [{"api_key": "k", "qty": 2}], "card": "4111 1111 1111 1111", "order": 42,
    })
    (rec,) = records(stream)
    assert rec["message"] == "login for bob with password=REDACTED"
    assert rec["password"] == "REDACTED"
    assert rec["headers"] == {"Authorization": "REDACTED"}
    assert rec["items"] == [{"api_key": "REDACTED", "qty": 2}]
    assert rec["card"] == "REDACTED"
    assert rec["order"] == 42 and rec["user"] == "bob"
    assert "hunter2" not in stream.getvalue()


def test_non_json_values_and_name_clashes(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    class Thing:
        def __str__(self) -> str:
            return "thing token=abc"

    logger.info("x", extra={"obj": Thing(), "tags": {"b"}, "level": "mine", "when": datetime(2026, 1, 2),
                            "nested": {1: ("a", None)}})
    (rec,) = records(stream)
    assert rec["obj"] == "thing token=REDACTED"
    assert rec["tags"] == ["b"]
    assert rec["level"] == "info" and rec["level_"] == "mine"
    assert rec["when"] == "2026-01-02 00:00:00"
    assert rec["nested"] == {"1": ["a", None]}


def test_exception_fields_code_bug(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    (rec,) = records(stream)
    assert rec["level"] == "error"
    assert rec["exc_type"] == "KeyError" and rec["exc_message"] == "'missing'"
    assert rec["classification"] == "code_bug" and rec["is_code_bug"] is True
    assert rec["traceback"].startswith("Traceback (most recent call last):")
    assert rec["traceback"].endswith("KeyError: 'missing'")


def test_exception_fields_real_httpx_errors(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    request = httpx.Request("GET", "http://example.test/?token=abc")
    for status in (503, 404):
        try:
            httpx.Response(status, request=request).raise_for_status()
        except httpx.HTTPStatusError:
            logger.error("upstream", exc_info=True)
    external, user = records(stream)
    assert external["exc_type"] == "httpx.HTTPStatusError"
    assert (external["classification"], external["is_code_bug"]) == ("external", False)
    assert (user["classification"], user["is_code_bug"]) == ("user_error", False)
    assert "token=abc" not in stream.getvalue()  # the URL in the message is redacted too


def test_exc_info_tuple_and_stack_info(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    error = ConnectionResetError("peer went away")
    logger.error("net", exc_info=(type(error), error, None))
    logger.info("where", stack_info=True)
    net, where = records(stream)
    assert net["classification"] == "external" and net["traceback"] == "ConnectionResetError: peer went away"
    assert where["stack"].startswith("Stack (most recent call last):")


def test_each_record_is_one_line(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("multi\nline\nmessage", extra={"text": "a\nb"})
    assert len(stream.getvalue().splitlines()) == 1
    assert records(stream)[0]["message"] == "multi\nline\nmessage"


def test_custom_redactor() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(redactor=Redactor(extra_keys=["ssn"]), ensure_ascii=True))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "ünï ssn=123", None, None)
    handler.emit(record)
    rec = json.loads(stream.getvalue())
    assert rec["message"] == "ünï ssn=REDACTED"
    assert "\\u00fc" in stream.getvalue()


def test_handler_defaults_to_stderr() -> None:
    assert JsonHandler().stream is sys.stderr


def test_app_logging_imports_only_stdlib_and_corral() -> None:
    code = ("import sys; before = set(sys.modules); import corral.app.logging; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(m for m in new if m not in sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['corral']"
