"""Table tests for corral.app.errors, mostly on REAL exceptions raised by the libraries themselves."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pydantic
import pytest
import requests
import starlette.exceptions
import werkzeug.exceptions

from corral.app.errors import classify, classify_name, classify_status, is_code_bug


def raised(fn: Callable[[], object]) -> BaseException:
    """Run ``fn`` and return what it raised (fail if it raised nothing)."""
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the point is to capture anything
        return exc
    raise AssertionError("expected an exception")


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """A listening socket that accepts into its backlog and never answers (for read timeouts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def _requests_response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "http://example.test/"
    response.reason = "Reason"
    return response


def _pydantic_error() -> None:
    class Model(pydantic.BaseModel):
        x: int

    Model(x="not a number")  # type: ignore[arg-type]


def _pydantic_user_error() -> None:
    class Model(pydantic.BaseModel):
        x: int

        @pydantic.field_validator("missing_field")
        @classmethod
        def check(cls, value: int) -> int:
            return value


def _broken_pipe() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        os.write(write_fd, b"x")
    finally:
        os.close(write_fd)


def _recurse() -> None:
    _recurse()


def _unbound() -> None:
    if False:  # noqa: SIM108
        value = 1
    print(value)  # noqa: F821


def _with_cause(cause: BaseException, outer: type[BaseException] = RuntimeError) -> BaseException:
    return raised(lambda: _raise_from(outer("wrapped"), cause))


def _raise_from(exc: BaseException, cause: BaseException) -> None:
    raise exc from cause


def _flagged(exc: BaseException, flag: bool) -> BaseException:
    exc.is_code_bug = flag  # type: ignore[attr-defined]
    return exc


def _fake_redis() -> types.ModuleType:
    """Classes shaped like redis-py's (RedisError base; its ConnectionError subclass)."""
    module = types.ModuleType("redis.exceptions")
    redis_error = type("RedisError", (Exception,), {"__module__": module.__name__})
    module.RedisError = redis_error  # type: ignore[attr-defined]
    module.ConnectionError = type("ConnectionError", (redis_error,), {"__module__": module.__name__})  # type: ignore[attr-defined]
    module.ResponseError = type("ResponseError", (redis_error,), {"__module__": module.__name__})  # type: ignore[attr-defined]
    return module


REDIS = _fake_redis()
REQ = httpx.Request("GET", "http://example.test/")


def _cases(closed_port: int, silent_server: str) -> list[tuple[str, BaseException, str]]:
    refused_url = f"http://127.0.0.1:{closed_port}/"
    return [
        # --- code bugs: real Python errors
        ("KeyError", raised(lambda: {}["x"]), "code_bug"),
        ("IndexError", raised(lambda: [][1]), "code_bug"),  # noqa: PLE0643 (raising is the point)
        ("AttributeError", raised(lambda: None.x), "code_bug"),  # type: ignore[attr-defined]
        ("NameError", raised(lambda: eval("undefined_name")), "code_bug"),
        ("UnboundLocalError", raised(_unbound), "code_bug"),
        ("TypeError", raised(lambda: len(5)), "code_bug"),  # type: ignore[arg-type]
        ("ZeroDivisionError", raised(lambda: 1 / 0), "code_bug"),
        ("ModuleNotFoundError", raised(lambda: __import__("no_such_module_xyz")), "code_bug"),
        ("SyntaxError", raised(lambda: compile("def (", "<x>", "exec")), "code_bug"),
        ("AssertionError", raised(lambda: exec("assert False")), "code_bug"),
        ("RecursionError", raised(_recurse), "code_bug"),
        ("NotImplementedError", NotImplementedError(), "code_bug"),
        ("FileNotFoundError (ENOENT)", raised(lambda: open("/nonexistent/dir/file")), "code_bug"),
        ("IsADirectoryError", raised(lambda: open("/")), "code_bug"),
        ("PermissionError EACCES", PermissionError(errno.EACCES, "denied"), "code_bug"),
        ("OSError ENOSPC", OSError(errno.ENOSPC, "full"), "code_bug"),
        ("OSError EMFILE", OSError(errno.EMFILE, "too many"), "code_bug"),
        ("sqlite3 OperationalError", raised(lambda: sqlite3.connect(":memory:").execute("select * from t")),
         "code_bug"),
        ("sqlite3 IntegrityError", raised(lambda: sqlite3.connect(":memory:").executescript(
            "create table t(a unique); insert into t values (1); insert into t values (1);")), "code_bug"),
        ("pydantic PydanticUserError", raised(_pydantic_user_error), "code_bug"),
        ("redis-shaped ResponseError", REDIS.ResponseError("WRONGTYPE"), "code_bug"),
        ("werkzeug 500 wrapping KeyError", werkzeug.exceptions.InternalServerError(
            original_exception=KeyError("k")), "code_bug"),
        # --- external: real network failures
        ("socket ECONNREFUSED", raised(lambda: socket.create_connection(("127.0.0.1", closed_port))), "external"),
        ("httpx ConnectError", raised(lambda: httpx.get(refused_url)), "external"),
        ("httpx ReadTimeout", raised(lambda: httpx.get(silent_server, timeout=0.05)), "external"),
        ("httpx 503", raised(lambda: httpx.Response(503, request=REQ).raise_for_status()), "external"),
        ("httpx 502", raised(lambda: httpx.Response(502, request=REQ).raise_for_status()), "external"),
        ("httpx 429", raised(lambda: httpx.Response(429, request=REQ).raise_for_status()), "external"),
        ("httpx 408", raised(lambda: httpx.Response(408, request=REQ).raise_for_status()), "external"),
        ("httpx 413", raised(lambda: httpx.Response(413, request=REQ).raise_for_status()), "external"),
        ("requests ConnectionError", raised(lambda: requests.get(refused_url)), "external"),
        ("requests ReadTimeout", raised(lambda: requests.get(silent_server, timeout=0.05)), "external"),
        ("requests HTTPError 500", raised(lambda: _requests_response(500).raise_for_status()), "external"),
        ("urllib URLError refused", raised(lambda: urllib.request.urlopen(refused_url)), "external"),
        ("urllib HTTPError 503", urllib.error.HTTPError("http://x", 503, "busy", None, None), "external"),  # type: ignore[arg-type]
        ("socket.gaierror", raised(lambda: socket.getaddrinfo("localhost", "no-such-service-xyz")), "external"),
        ("ssl.SSLError", raised(lambda: ssl.create_default_context().load_verify_locations(cadata="x")),
         "external"),
        ("BrokenPipeError (EPIPE)", raised(_broken_pipe), "external"),
        ("OSError ENETUNREACH", OSError(errno.ENETUNREACH, "unreachable"), "external"),
        ("asyncio timeout", raised(lambda: asyncio.run(asyncio.wait_for(asyncio.Event().wait(), 0.001))),
         "external"),
        ("builtin TimeoutError", TimeoutError(), "external"),
        ("redis-shaped ConnectionError", REDIS.ConnectionError("closed"), "external"),
        ("starlette 503", starlette.exceptions.HTTPException(503), "external"),
        ("werkzeug abort(503)", raised(lambda: werkzeug.exceptions.abort(503)), "external"),
        ("werkzeug TooManyRequests", werkzeug.exceptions.TooManyRequests(), "external"),
        ("smtp 421", smtplib.SMTPResponseException(421, b"try later"), "external"),
        ("smtp disconnected", smtplib.SMTPServerDisconnected(), "external"),
        ("message: connection closed", RuntimeError("Connection closed unexpectedly"), "external"),
        ("cause is external", _with_cause(ConnectionResetError()), "external"),
        # --- user errors
        ("pydantic ValidationError", raised(_pydantic_error), "user_error"),
        ("httpx 404", raised(lambda: httpx.Response(404, request=REQ).raise_for_status()), "user_error"),
        ("httpx 401", raised(lambda: httpx.Response(401, request=REQ).raise_for_status()), "user_error"),
        ("httpx 400", raised(lambda: httpx.Response(400, request=REQ).raise_for_status()), "user_error"),
        ("httpx UnsupportedProtocol", raised(lambda: httpx.get("ftp://example.test/")), "user_error"),
        ("requests HTTPError 403", raised(lambda: _requests_response(403).raise_for_status()), "user_error"),
        ("requests MissingSchema", raised(lambda: requests.get("no-scheme")), "user_error"),
        ("requests JSONDecodeError", raised(lambda: _requests_response(200).json()), "user_error"),
        ("starlette 404", starlette.exceptions.HTTPException(404), "user_error"),
        ("starlette 422", starlette.exceptions.HTTPException(422, detail="bad"), "user_error"),
        ("werkzeug abort(404)", raised(lambda: werkzeug.exceptions.abort(404)), "user_error"),
        ("werkzeug BadRequest", werkzeug.exceptions.BadRequest(), "user_error"),
        ("urllib HTTPError 404", urllib.error.HTTPError("http://x", 404, "nf", None, None), "user_error"),  # type: ignore[arg-type]
        ("json JSONDecodeError", raised(lambda: json.loads("{")), "user_error"),
        ("ValueError int()", raised(lambda: int("x")), "user_error"),
        ("plain RuntimeError", RuntimeError("boom"), "user_error"),
        ("plain Exception", Exception(), "user_error"),
        ("smtp 550", smtplib.SMTPResponseException(550, b"no such user"), "user_error"),
        ("cause is a code bug (wrapped on purpose)", _with_cause(KeyError("k")), "user_error"),
        # --- explicit flag
        ("is_code_bug=True on ValueError", _flagged(ValueError(), True), "code_bug"),
        ("is_code_bug=False on TypeError", _flagged(TypeError(), False), "user_error"),
        ("is_code_bug=False on ENOENT", _flagged(FileNotFoundError(errno.ENOENT, "x"), False), "user_error"),
        ("is_code_bug=False on ConnectionError", _flagged(ConnectionError(), False), "external"),
        # --- groups
        ("group with a bug", ExceptionGroup("g", [ValueError(), KeyError()]), "code_bug"),
        ("group external+user", ExceptionGroup("g", [ConnectionError(), ValueError()]), "external"),
        ("group of user errors", ExceptionGroup("g", [ValueError()]), "user_error"),
    ]


def test_classification_table(closed_port: int, silent_server: str) -> None:
    cases = _cases(closed_port, silent_server)
    assert len(cases) >= 40
    wrong = [(label, type(exc).__module__ + "." + type(exc).__qualname__, classify(exc), want)
             for label, exc, want in cases if classify(exc) != want]
    assert wrong == []
    for _, exc, want in cases:
        assert is_code_bug(exc) is (want == "code_bug")


def test_real_exception_types_are_the_ones_meant(closed_port: int, silent_server: str) -> None:
    """Guard the table against a library changing what it raises."""
    by_label = {label: exc for label, exc, _ in _cases(closed_port, silent_server)}
    assert type(by_label["httpx ConnectError"]) is httpx.ConnectError
    assert type(by_label["httpx ReadTimeout"]) is httpx.ReadTimeout
    assert type(by_label["httpx 503"]) is httpx.HTTPStatusError
    assert type(by_label["requests ConnectionError"]) is requests.exceptions.ConnectionError
    assert type(by_label["requests ReadTimeout"]) is requests.exceptions.ReadTimeout
    assert type(by_label["pydantic ValidationError"]) is pydantic.ValidationError
    assert type(by_label["socket ECONNREFUSED"]) is ConnectionRefusedError
    assert type(by_label["werkzeug abort(404)"]) is werkzeug.exceptions.NotFound


def test_errors_module_imports_no_third_party_library() -> None:
    code = ("import sys; import corral.app.errors, corral.logs.tracebacks, corral.app.redact; "
            "bad = {'httpx', 'requests', 'pydantic', 'starlette', 'werkzeug', 'aiohttp', 'django'} "
            "& set(sys.modules); print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_broken_attributes_do_not_break_classification() -> None:
    class Weird(Exception):
        @property
        def response(self) -> object:
            raise RuntimeError("no response")

        def __str__(self) -> str:
            raise RuntimeError("no str")

    assert classify(Weird()) == "user_error"


@pytest.mark.parametrize(("err", "want"), [
    ({"name": "TypeError", "message": "x is not a function"}, "code_bug"),
    ({"name": "Error", "code": "ECONNRESET"}, "external"),
    ({"name": "Error", "code": "EACCES"}, "code_bug"),
    ({"name": "Error", "code": "SQLITE_BUSY"}, "code_bug"),
    ({"name": "Error", "message": "x", "isCodeBug": True}, "code_bug"),
    ({"name": "TypeError", "isCodeBug": False, "message": "GET / took longer than 10s"}, "user_error"),
    ({"name": "Error", "syscall": "spawn"}, "code_bug"),
    ({"name": "Error", "syscall": "getHostByAddr", "code": "EACCES"}, "external"),
    ({"name": "Error", "isBoom": True, "output": {"statusCode": 429}}, "external"),
    ({"name": "Error", "isBoom": True, "output": {"statusCode": 404}}, "user_error"),
    ({"name": "Error", "temporary": True}, "external"),
    ({"name": "Error", "responseCode": 421}, "external"),
    ({"name": "ValidationError"}, "user_error"),
])
def test_serialised_error_dicts(err: dict[str, object], want: str) -> None:
    assert classify(err) == want


@pytest.mark.parametrize(("name", "message", "code", "want"), [
    ("KeyError", "'x'", None, "code_bug"),
    ("builtins.AttributeError", "", None, "code_bug"),
    ("httpx.ConnectTimeout", "", None, "external"),
    ("httpx.ReadError", "", None, "external"),
    ("requests.exceptions.ConnectionError", "Max retries exceeded", None, "external"),
    ("requests.exceptions.HTTPError", "503 Server Error: Service Unavailable for url: http://x", None,
     "external"),
    ("requests.exceptions.HTTPError", "404 Client Error: Not Found for url: http://x", None, "user_error"),
    ("httpx.HTTPStatusError", "Client error '404 Not Found' for url 'http://x'", None, "user_error"),
    ("urllib.error.HTTPError", "HTTP Error 503: Service Unavailable", None, "external"),
    ("pydantic_core._pydantic_core.ValidationError", "1 validation error for M", None, "user_error"),
    ("sqlite3.OperationalError", "database is locked", None, "code_bug"),
    ("ConnectionRefusedError", "[Errno 111] Connection refused", None, "external"),
    ("RuntimeError", "boom", None, "user_error"),
    ("RuntimeError", "connection timed out", None, "external"),
    ("TooManyRequests", "", None, "external"),
    ("TypeError", "o.f is not a function", None, "code_bug"),
    ("ReferenceError", "x is not defined", None, "code_bug"),
    ("RangeError", "Invalid array length", None, "code_bug"),
    ("SyntaxError", "Unexpected token", None, "code_bug"),
    ("Uncaught TypeError", "x", None, "code_bug"),
    ("Error [ERR_MODULE_NOT_FOUND]", "Cannot find package", None, "code_bug"),
    ("Error", "Cannot find module 'x'", "MODULE_NOT_FOUND", "code_bug"),
    ("Error", "connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED", "external"),
    ("Error", "read ECONNRESET", "ECONNRESET", "external"),
    ("Error", "getaddrinfo ENOTFOUND x", "ENOTFOUND", "external"),
    ("Error", "getaddrinfo EAI_AGAIN x", "EAI_AGAIN", "external"),
    ("Error", "write EPIPE", "EPIPE", "external"),
    ("Error", "", "ETIMEDOUT", "external"),
    ("Error", "open '/x'", "EACCES", "code_bug"),
    ("TypeError", "fetch failed", None, "external"),
    ("AbortError", "This operation was aborted", None, "external"),
    ("DOMException [AbortError]", "This operation was aborted", None, "external"),
    ("FetchError", "request to http://x failed", None, "external"),
    ("TimeoutError", "", None, "external"),
    ("SqliteError", "no such table", None, "code_bug"),
    ("MongoServerSelectionError", "", None, "code_bug"),
    ("ValidationError", "name is required", None, "user_error"),
    ("Error", "Not Found", "404", "user_error"),
    ("Error", "Too Many Requests", "429", "external"),
    ("Error", "plain", None, "user_error"),
])
def test_classify_name(name: str, message: str, code: str | None, want: str) -> None:
    assert classify_name(name, message, code) == want


def test_classify_name_status_keyword() -> None:
    assert classify_name("Error", "Not Found", status=404) == "user_error"
    assert classify_name("Error", "Bad Gateway", status=502) == "external"


@pytest.mark.parametrize(("status", "want"), [
    (400, "user_error"), (401, "user_error"), (403, "user_error"), (404, "user_error"), (422, "user_error"),
    (408, "external"), (413, "external"), (429, "external"), (500, "external"), (503, "external"),
])
def test_classify_status(status: int, want: str) -> None:
    assert classify_status(status) == want
