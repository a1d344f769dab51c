"""corral.logs.tracebacks on real stderr: `python -c` and `node -e` snippets are actually run here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from typing import Any

import pytest

from corral.logs.tracebacks import parse_crash

NODE = shutil.which("node") or "/usr/bin/node"


def py_stderr(code: str) -> list[str]:
    """stderr lines of ``python -c code`` (the venv's python, so httpx & co import)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stderr
    return proc.stderr.splitlines()


def node_stderr(code: str, *flags: str) -> list[str]:
    proc = subprocess.run([NODE, *flags, "-e", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stderr
    return proc.stderr.splitlines()


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(report: dict[str, Any] | None, language: str, exc_type: str, classification: str,
          message: str | None = None) -> dict[str, Any]:
    assert report is not None
    assert (report["language"], report["exc_type"], report["classification"]) == (
        language, exc_type, classification), report
    if message is not None:
        assert report["message"] == message
    assert report["traceback"], report
    return report


# -- Python ---------------------------------------------------------------------------------------
PYTHON_CASES = [
    ("{}['x']", "KeyError", "code_bug", "'x'"),
    ("None.x", "AttributeError", "code_bug", "'NoneType' object has no attribute 'x'"),
    ("import no_such_module_xyz", "ModuleNotFoundError", "code_bug", "No module named 'no_such_module_xyz'"),
    ("def f():\n    f()\nf()", "RecursionError", "code_bug", None),
    ("int('x')", "ValueError", "user_error", "invalid literal for int() with base 10: 'x'"),
    ("open('/nonexistent/x')", "FileNotFoundError", "code_bug", None),
    ("import sqlite3; sqlite3.connect(':memory:').execute('select * from t')",
     "sqlite3.OperationalError", "code_bug", "no such table: t"),
    ("raise TimeoutError('slow upstream')", "TimeoutError", "external", "slow upstream"),
    ("import pydantic\nclass M(pydantic.BaseModel):\n    x: int\nM(x='a')",
     "pydantic_core._pydantic_core.ValidationError", "user_error", "1 validation error for M"),
    ("import httpx; httpx.Response(503, request=httpx.Request('GET', 'http://x')).raise_for_status()",
     "httpx.HTTPStatusError", "external", None),
    ("import httpx; httpx.Response(404, request=httpx.Request('GET', 'http://x')).raise_for_status()",
     "httpx.HTTPStatusError", "user_error", None),
    ("import requests\nr = requests.Response(); r.status_code = 502; r.url = 'http://x'; r.reason = 'Bad'\n"
     "r.raise_for_status()", "requests.exceptions.HTTPError", "external", None),
    ("import starlette.exceptions as e; raise e.HTTPException(404)", "starlette.exceptions.HTTPException",
     "user_error", None),
]


@pytest.mark.parametrize(("code", "exc_type", "classification", "message"), PYTHON_CASES)
def test_python_tracebacks(code: str, exc_type: str, classification: str, message: str | None) -> None:
    report = check(parse_crash(py_stderr(code)), "python", exc_type, classification, message)
    assert report["traceback"][0] == "Traceback (most recent call last):"
    assert report["frames"] and all(f.startswith('File "') for f in report["frames"])
    assert len(report["frames"]) <= 5
    assert report["code"] is None


def test_python_real_connection_refused_reports_the_last_of_the_chain(closed_port: int) -> None:
    lines = py_stderr(f"import httpx; httpx.get('http://127.0.0.1:{closed_port}/')")
    assert sum(line.startswith("Traceback") for line in lines) >= 2  # httpcore error, then httpx's
    report = check(parse_crash(lines), "python", "httpx.ConnectError", "external")
    assert report["traceback"][0] == "Traceback (most recent call last):"
    assert any("The above exception was the direct cause" in line for line in report["traceback"])
    assert report["traceback"][-1].startswith("httpx.ConnectError")


def test_python_chained_exception() -> None:
    code = "try:\n    {}['x']\nexcept KeyError as e:\n    raise RuntimeError('wrapped') from e"
    report = check(parse_crash(py_stderr(code)), "python", "RuntimeError", "user_error", "wrapped")
    assert "KeyError: 'x'" in report["traceback"]  # the whole chain is kept
    assert report["traceback"][-1] == "RuntimeError: wrapped"


def test_python_during_handling_chain() -> None:
    code = "try:\n    1/0\nexcept ZeroDivisionError:\n    None.x"
    report = check(parse_crash(py_stderr(code)), "python", "AttributeError", "code_bug")
    assert any(line.startswith("ZeroDivisionError") for line in report["traceback"])


def test_python_multiline_message_is_kept_in_traceback() -> None:
    code = "import pydantic\nclass M(pydantic.BaseModel):\n    x: int\nM(x='a')"
    report = parse_crash(py_stderr(code))
    assert report is not None
    assert any("Input should be a valid integer" in line for line in report["traceback"])


def test_python_syntax_error_without_traceback_header() -> None:
    report = check(parse_crash(py_stderr("def (")), "python", "SyntaxError", "code_bug", "invalid syntax")
    assert report["frames"] == ['File "<string>", line 1']


@pytest.mark.parametrize("code", ["import sys; sys.exit('fatal: config missing')", "raise SystemExit(3)"])
def test_system_exit_has_no_traceback(code: str) -> None:
    assert parse_crash(py_stderr(code)) is None


@pytest.mark.parametrize(("code", "classification"), [
    ("raise ExceptionGroup('many', [ValueError('a'), TypeError('b'), ExceptionGroup('inner', [KeyError('k')])])",
     "code_bug"),
    ("raise ExceptionGroup('net', [ConnectionResetError('a'), ValueError('b')])", "external"),
    ("import asyncio\nasync def bad():\n    raise ValueError('x')\nasync def main():\n"
     "    async with asyncio.TaskGroup() as tg:\n        tg.create_task(bad())\nasyncio.run(main())", "user_error"),
])
def test_python_exception_groups(code: str, classification: str) -> None:
    report = check(parse_crash(py_stderr(code)), "python", "ExceptionGroup", classification)
    assert "sub-exception" in report["message"]


def test_python_last_traceback_wins_after_a_logged_one() -> None:
    code = ("import logging\ntry:\n    1/0\nexcept Exception:\n    logging.exception('handled')\n"
            "print('carrying on', file=__import__('sys').stderr)\n[][3]")
    check(parse_crash(py_stderr(code)), "python", "IndexError", "code_bug", "list index out of range")


def test_python_output_after_the_traceback() -> None:
    code = "import atexit, sys; atexit.register(lambda: print('bye', file=sys.stderr)); {}['x']"
    check(parse_crash(py_stderr(code)), "python", "KeyError", "code_bug", "'x'")


def test_timestamp_prefix_is_stripped() -> None:
    lines = ["2026-11-22T10:00:00.123+00:00 " + line for line in py_stderr("{}['x']")]
    lines.insert(0, "2026-11-22T09:59:59.999Z starting")
    check(parse_crash(lines), "python", "KeyError", "code_bug", "'x'")
    assert parse_crash(lines, strip_prefix=None) is None


def test_custom_prefix() -> None:
    lines = ["[web-0] " + line for line in py_stderr("{}['x']")]
    check(parse_crash(lines, strip_prefix=r"^\[[\w-]+\] "), "python", "KeyError", "code_bug")


def test_truncated_or_empty_tails() -> None:
    lines = py_stderr("{}['x']")
    assert parse_crash(lines[:-1]) is None  # the exception line is not written yet
    assert parse_crash([]) is None
    assert parse_crash(["just a log line", "Error: not a crash", "INFO: fine"]) is None


# -- Node -----------------------------------------------------------------------------------------
NODE_CASES = [
    ("const o = {}; o.f()", "TypeError", "code_bug", "o.f is not a function", None),
    ("undefinedVariable + 1", "ReferenceError", "code_bug", "undefinedVariable is not defined", None),
    ("new Array(-1)", "RangeError", "code_bug", "Invalid array length", None),
    ("JSON.parse('{')", "SyntaxError", "code_bug", None, None),
    ("async function main(){ await null; null.x } main()", "TypeError", "code_bug",
     "Cannot read properties of null (reading 'x')", None),
    ("require('nonexistent-mod-xyz')", "Error", "code_bug", None, "MODULE_NOT_FOUND"),
    ("Promise.reject('oops')", "UnhandledPromiseRejection", "user_error", None, "ERR_UNHANDLED_REJECTION"),
    ("class ValidationError extends Error { constructor(m) { super(m); this.name = 'ValidationError' } }\n"
     "setTimeout(() => { throw new ValidationError('email is required') }, 0)",
     "ValidationError", "user_error", "email is required", None),
    ("const e = new Error('Not Found'); e.isBoom = true; e.output = {statusCode: 404, payload: {}}; throw e",
     "Error", "user_error", "Not Found", None),
    ("const e = new Error('Unavailable'); e.isBoom = true; e.output = {statusCode: 503, payload: {}}; throw e",
     "Error", "external", "Unavailable", None),
    ("const ac = new AbortController(); ac.abort(); fetch('http://127.0.0.1:1/', {signal: ac.signal})",
     "AbortError", "external", "This operation was aborted", None),
]


@pytest.mark.parametrize(("code", "exc_type", "classification", "message", "err_code"), NODE_CASES)
def test_node_errors(code: str, exc_type: str, classification: str, message: str | None,
                     err_code: str | None) -> None:
    report = check(parse_crash(node_stderr(code)), "node", exc_type, classification, message)
    assert report["code"] == err_code
    assert report["frames"] and all(f.startswith("at ") for f in report["frames"])
    assert len(report["frames"]) <= 5


def test_node_socket_econnrefused(closed_port: int) -> None:
    report = check(parse_crash(node_stderr(f"require('net').connect({closed_port}, '127.0.0.1')")),
                   "node", "Error", "external", f"connect ECONNREFUSED 127.0.0.1:{closed_port}")
    assert report["code"] == "ECONNREFUSED"
    assert report["frames"][0].startswith("at TCPConnectWrap.afterConnect")


def test_node_fetch_failed_is_classified_by_its_cause(closed_port: int) -> None:
    report = check(parse_crash(node_stderr(f"fetch('http://127.0.0.1:{closed_port}/').then(() => {{}})")),
                   "node", "TypeError", "external", "fetch failed")
    assert any("[cause]" in line for line in report["traceback"])


def test_node_esm_error_code_in_brackets() -> None:
    report = check(parse_crash(node_stderr("import x from 'nopkg-xyz'", "--input-type=module")),
                   "node", "Error", "code_bug")
    assert report["code"] == "ERR_MODULE_NOT_FOUND"


def test_node_thrown_string() -> None:
    report = check(parse_crash(node_stderr("throw 'str'")), "node", "Uncaught", "user_error", "str")
    assert report["frames"] == []


def test_node_repl_uncaught_form() -> None:
    proc = subprocess.run([NODE, "-i"], input="null.x\n", capture_output=True, text=True, timeout=60)
    report = parse_crash(proc.stdout.splitlines())
    check(report, "node", "TypeError", "code_bug", "Cannot read properties of null (reading 'x')")


def test_last_of_python_and_node_wins() -> None:
    py, node = py_stderr("{}['x']"), node_stderr("undefinedVariable")
    check(parse_crash(py + node), "node", "ReferenceError", "code_bug")
    check(parse_crash(node + py), "python", "KeyError", "code_bug")


def test_node_with_timestamp_prefix() -> None:
    lines = ["2026-11-22T10:00:00.123+00:00 " + line for line in node_stderr("const o = {}; o.f()")]
    check(parse_crash(lines), "node", "TypeError", "code_bug", "o.f is not a function")
