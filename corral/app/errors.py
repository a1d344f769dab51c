"""Error classification: code bug, user error or external failure (spec E1, A3; reference §2).

The three classes and what they mean for an operator:

* ``code_bug`` - the program is wrong: TypeError, NameError, AttributeError, ImportError,
  SyntaxError, KeyError, IndexError, AssertionError, RecursionError, ZeroDivisionError,
  NotImplementedError, MemoryError, sqlite3 errors (busy/locked included, as the provider does),
  OSErrors with a *local* errno (EACCES, ENOENT, ENOSPC, EMFILE ... the provider's list), Node's
  TypeError/ReferenceError/SyntaxError/RangeError/URIError/EvalError and its Redis, Mongo and
  SQLite errors. Only these page someone.
* ``external`` - something outside failed and a retry may work: ConnectionError and subclasses,
  TimeoutError, DNS (gaierror/herror), TLS/SSL errors, OSErrors and Node codes with a *network*
  errno (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, EPIPE, EAI_AGAIN ...), HTTP 408, 413,
  429 and 5xx, SMTP 4xx, httpx/requests/aiohttp/urllib transport errors, cancellation and
  KeyboardInterrupt (stopped from outside), and messages the provider treats as socket or timeout
  failures ("connection closed", "timed out" ...).
* ``user_error`` - the input was refused: HTTP 4xx raised to or received from a client (400, 401,
  403, 404, 422 ...; the provider only retries 408/413/429, so an upstream's 401/404 is not
  external), pydantic/marshmallow/jsonschema/Django ``ValidationError`` and any class named
  ``*ValidationError``, SMTP 5xx rejections, unusable URLs (httpx ``InvalidURL``/
  ``UnsupportedProtocol``, requests ``MissingSchema``). Like the provider, anything that is neither
  a code bug nor external falls here too (``ValueError``, ``RuntimeError``, a plain ``Exception``):
  logged, not paged.

Precedence, first match wins: an explicit ``is_code_bug``/``isCodeBug`` attribute (True forces
``code_bug``; False classifies as usual but never answers ``code_bug``); an HTTP status; the class
names of the MRO, most derived first (so ``redis.exceptions.ConnectionError`` is external although
``RedisError`` is a code bug); errno/``code``/``syscall``; SMTP codes, ``temporary``; message
heuristics; an explicit ``__cause__`` that is external; else ``user_error``. Where the provider
counts an error as both code bug and retryable (Redis/Mongo/SQLite, ENOMEM) the code bug wins,
except EPIPE which is external (a closed peer). Undici's ``TypeError: fetch failed`` is external.

Nothing here imports httpx, requests, pydantic & co: classes are recognised by name and module
over the MRO and by attributes (``status_code``, ``response.status_code``, ``status``, ``code``).
Unlike the provider, nothing is written back on the exception: these functions are pure.
"""

from __future__ import annotations

import errno as _errno
import re
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["CODE_BUG", "USER_ERROR", "EXTERNAL", "Classification", "classify", "is_code_bug",
           "classify_name", "classify_status"]

Classification = Literal["code_bug", "user_error", "external"]
CODE_BUG: Classification = "code_bug"
USER_ERROR: Classification = "user_error"
EXTERNAL: Classification = "external"
_RANK = {USER_ERROR: 0, EXTERNAL: 1, CODE_BUG: 2}

_NAMES: dict[str, Classification] = {}
for _cls, _words in ((CODE_BUG, """
        TypeError NameError UnboundLocalError AttributeError ImportError ModuleNotFoundError
        SyntaxError IndentationError TabError KeyError IndexError LookupError AssertionError
        RecursionError ZeroDivisionError ArithmeticError OverflowError FloatingPointError
        NotImplementedError SystemError MemoryError ReferenceError
        RangeError URIError EvalError SqliteError sqlite3.Error _sqlite3.Error
        RedisError ReplyError MaxRetriesPerRequestError ClusterAllFailedError PyMongoError
        MongooseError DivergentArrayError DocumentNotFoundError MissingSchemaError MongoAPIError
        MongoBatchReExecutionError MongoBulkWriteError MongoCompatibilityError
        MongoCursorExhaustedError MongoCursorInUseError MongoError MongoExpiredSessionError
        MongoInvalidArgumentError MongoMissingCredentialsError MongoMissingDependencyError
        MongoNetworkError MongoNetworkTimeoutError MongoNotConnectedError MongoParseError
        MongoPoolClearedError MongoRuntimeError MongoServerClosedError MongoServerError
        MongoTailableCursorError MongoTopologyClosedError MongoTransactionError
        MongoWriteConcernError MongoWriteError MongooseBulkSaveIncompleteError
        MongooseServerSelectionError ObjectExpectedError ObjectParameterError OverwriteModelError
        ParallelSaveError PoolClearedOnNetworkError StrictModeError StrictPopulateError
        ValidatorError VersionError
        SchemaError PydanticUserError PydanticSchemaGenerationError ResponseValidationError
        httpx.LocalProtocolError FileNotFoundError PermissionError IsADirectoryError
        NotADirectoryError FileExistsError ProcessLookupError ChildProcessError InterruptedError
        BlockingIOError
    """), (EXTERNAL, """
        ConnectionError ConnectionResetError ConnectionRefusedError ConnectionAbortedError
        BrokenPipeError TimeoutError gaierror herror socket.timeout SSLError SSLZeroReturnError
        SSLEOFError SSLSyscallError SSLWantReadError SSLWantWriteError SSLCertVerificationError
        CertificateError httpx.TransportError TimeoutException ConnectTimeout ReadTimeout
        WriteTimeout PoolTimeout NetworkError ConnectError httpx.ReadError httpx.WriteError httpx.CloseError
        RemoteProtocolError ProxyError Timeout ChunkedEncodingError ContentDecodingError
        RetryError NewConnectionError ConnectTimeoutError ReadTimeoutError MaxRetryError
        ProtocolError IncompleteRead RemoteDisconnected http.client.HTTPException
        urllib.error.URLError URLError ClientConnectionError ClientConnectorError ClientOSError
        ServerDisconnectedError ServerTimeoutError ClientPayloadError ServerConnectionError
        ConnectionTimeoutError SocketTimeoutError IncompleteReadError CancelledError
        SMTPServerDisconnected SMTPConnectError ConnectionFailure AutoReconnect NetworkTimeout
        ServerSelectionTimeoutError ExecutionTimeout WTimeoutError KeyboardInterrupt
        AbortError FetchError SocketError ServerShutdownError HeadersTimeoutError
        BodyTimeoutError DOMException KnexTimeoutError
    """), (USER_ERROR, """
        ValidationError Http404 PermissionDenied SuspiciousOperation BadRequest ObjectDoesNotExist
        DoesNotExist JSONDecodeError httpx.InvalidURL httpx.UnsupportedProtocol InvalidURL
        MissingSchema InvalidSchema URLRequired
    """)):
    _NAMES.update(dict.fromkeys(_words.split(), _cls))

#: Names whose text message carries the HTTP status (``classify_name`` reads it from there).
_STATUS_IN_MESSAGE = frozenset({"HTTPStatusError", "HTTPError", "ClientResponseError", "HTTPException"})
#: Werkzeug/Django names that imply a status when only the name is known.
_NAME_STATUS = {"RequestTimeout": 408, "RequestEntityTooLarge": 413, "TooManyRequests": 429,
                "InternalServerError": 500, "NotImplemented": 501, "BadGateway": 502,
                "ServiceUnavailable": 503, "GatewayTimeout": 504}
_HTTP_MODULES = ("werkzeug", "starlette", "fastapi", "django", "aiohttp", "httpx", "requests",
                 "urllib.error", "tornado", "falcon", "sanic", "litestar", "flask")

#: The provider's local/POSIX codes (code bugs). EPIPE is left out: external wins for it.
LOCAL_CODES = frozenset("""
    E2BIG EACCES EAFNOSUPPORT EAGAIN EALREADY EBADF EBADMSG EBUSY ECHILD EDEADLK EDEADLOCK EDESTADDRREQ EDOM
    EDQUOT EEXIST EFAULT EFBIG EIDRM EILSEQ EINPROGRESS EINTR EINVAL EIO EISCONN EISDIR ELOOP EMFILE
    EMLINK EMSGSIZE EMULTIHOP ENAMETOOLONG ENFILE ENOBUFS ENODEV ENOENT ENOEXEC ENOLCK ENOLINK ENOMEM
    ENOMSG ENOPROTOOPT ENOSPC ENOSR ENOSTR ENOSYS ENOTDIR ENOTEMPTY ENOTSUP ENOTTY ENXIO EOPNOTSUPP
    EOVERFLOW EPERM EPROTONOSUPPORT EPROTOTYPE ERANGE EROFS ESPIPE ESRCH ESTALE ETIME ETXTBSY
    EWOULDBLOCK EXDEV
    MODULE_NOT_FOUND ERR_MODULE_NOT_FOUND ERR_REQUIRE_ESM ERR_HTTP_HEADERS_SENT ERR_INVALID_ARG_TYPE
    ERR_INVALID_ARG_VALUE ERR_UNKNOWN_FILE_EXTENSION
""".split())
#: The provider's HTTP, DNS and mail retry codes plus the network errnos it leaves out of LOCAL_CODES.
NETWORK_CODES = frozenset("""
    ETIMEDOUT ECONNABORTED ECONNRESET EADDRINUSE ECONNREFUSED EPIPE ENOTFOUND ENETUNREACH EHOSTUNREACH
    EHOSTDOWN EAI_AGAIN EAI_NONAME EAI_FAIL EADDRNOTAVAIL ENETDOWN ENETRESET ENOTCONN EPROTO ESHUTDOWN
    UND_ERR UND_ERR_CONNECT_TIMEOUT UND_ERR_HEADERS_TIMEOUT UND_ERR_HEADERS_OVERFLOW
    UND_ERR_BODY_TIMEOUT UND_ERR_INVALID_ARG UND_ERR_INVALID_RETURN_VALUE UND_ERR_ABORTED
    UND_ERR_DESTROYED UND_ERR_CLOSED UND_ERR_SOCKET UND_ERR_NOT_SUPPORTED
    UND_ERR_REQ_CONTENT_LENGTH_MISMATCH UND_ERR_RES_CONTENT_LENGTH_MISMATCH UND_ERR_INFO
    UND_ERR_RES_EXCEEDED_MAX_SIZE
    EADDRGETNETWORKPARAMS EBADFAMILY EBADFLAGS EBADHINTS EBADNAME EBADQUERY EBADRESP EBADSTR
    ECANCELED ECANCELLED EDESTRUCTION EFILE EFORMERR ELOADIPHLPAPI ENODATA ENONAME ENOTIMP
    ENOTINITIALIZED EOF EREFUSED ESERVFAIL ETIMEOUT ESOCKET ECONNECTION EDNS EPROTOCOL ETLS
    ABORT_ERR
""".split())
#: The provider's SYSCALLS: an error raised by one of these is a code bug.
SYSCALLS = frozenset("""
    spawn exec execve fork kill waitpid getpriority setpriority getuid setuid geteuid seteuid getgid
    setgid getegid setegid getrlimit setrlimit getpgid setpgid getsid setsid
""".split())

_TRANSIENT_MESSAGE = re.compile(
    r"connection (?:pool was )?closed|socket closed unexpectedly|unexpected socket close"
    r"|socket is already (?:destroyed|half-closed)|request took longer than|request aborted"
    r"|time-?out|timed out|connection refused|connection reset|temporarily unavailable"
    r"|temporary failure in name resolution|disconnected\s+before\s+secure\s+tls\s+connection"
    r"|ssl routines|ssl23_get_server_hello|/deps/openssl|ssl3_check"
    r"|^unsupported state or unable to authenticate data$", re.IGNORECASE)
_FIRST_STATUS = re.compile(r"\b([1-5][0-9][0-9])\b")
_NODE_NAME = re.compile(r"^(?:Uncaught\s+)?(?P<name>[^\s\[]+)(?:\s+\[(?P<tag>[^\]]+)\])?$")


def classify(exc: BaseException | Mapping[str, Any]) -> Classification:
    """Classify an exception, or a serialised error dict (``name``, ``message``, ``code`` ...)."""
    if isinstance(exc, Mapping):
        return _classify_mapping(exc)
    flag = _flag(exc)
    if flag is True:
        return CODE_BUG
    return _classify_exc(exc, flag is not False, 0)


def is_code_bug(exc: BaseException | Mapping[str, Any]) -> bool:
    """True when :func:`classify` says ``code_bug`` (the errors that should page someone)."""
    return classify(exc) == CODE_BUG


def classify_status(status: int) -> Classification:
    """HTTP status: 408, 413, 429 and 5xx are external; other 4xx are user errors."""
    if status in (408, 413, 429) or status >= 500:
        return EXTERNAL
    return USER_ERROR


def classify_name(name: str, message: str = "", code: str | None = None, *,
                  status: int | None = None, syscall: str | None = None) -> Classification:
    """Classify from text: a Python exception name (dotted or not) or a Node error name/code.

    ``name`` may be ``httpx.ConnectTimeout``, ``KeyError``, ``Uncaught TypeError``,
    ``Error [ERR_MODULE_NOT_FOUND]`` or ``DOMException [AbortError]``; ``code`` is a Node-style
    ``err.code`` (``ECONNREFUSED``) or a numeric HTTP status; ``status`` an HTTP status.
    """
    name, tag = _split_node_name(name.strip())
    if tag is not None:
        if re.fullmatch(r"[A-Z0-9_]+", tag):
            code = code or tag
        else:
            name = tag
    bare = name.rsplit(".", 1)[-1]
    if status is None and code is not None and str(code).isdigit():
        status = int(code)
        code = None
    if status is None:
        status = _NAME_STATUS.get(bare)
    if status is None and bare in _STATUS_IN_MESSAGE:
        found = _FIRST_STATUS.search(message or "")
        status = int(found.group(1)) if found else None
    if status is not None and 400 <= status <= 599:
        return classify_status(status)
    if bare == "TypeError" and message.strip() == "fetch failed":
        return EXTERNAL  # undici wraps every network failure of fetch() in a TypeError
    names = [(name, bare)]
    if name.startswith(("sqlite3.", "_sqlite3.")):
        names.append(("sqlite3.Error", "Error"))
    return _from_facts(names, str(code) if code else None, syscall, message or "", True) or USER_ERROR


def _split_node_name(name: str) -> tuple[str, str | None]:
    m = _NODE_NAME.match(name)
    if m is None:
        return name, None
    return m["name"], m["tag"]


def _classify_mapping(err: Mapping[str, Any]) -> Classification:
    flag = err.get("is_code_bug", err.get("isCodeBug"))
    if flag is True:
        return CODE_BUG
    output = err.get("output")
    status = err.get("status", err.get("statusCode", err.get("status_code")))
    if status is None and isinstance(output, Mapping):
        status = output.get("statusCode")
    if err.get("temporary") is True or err.get("responseCode") == 421:
        result = EXTERNAL
    else:
        result = classify_name(str(err.get("name") or err.get("type") or ""), str(err.get("message") or ""),
                               err.get("code") if isinstance(err.get("code"), str) else None,
                               status=status if _is_status(status) else None,
                               syscall=err.get("syscall") if isinstance(err.get("syscall"), str) else None)
    if flag is False and result == CODE_BUG:
        return EXTERNAL if _TRANSIENT_MESSAGE.search(str(err.get("message") or "")) else USER_ERROR
    return result


def _flag(exc: BaseException) -> bool | None:
    for attr in ("is_code_bug", "isCodeBug"):
        value = _attr(exc, attr)
        if isinstance(value, bool):
            return value
    return None


def _classify_exc(exc: BaseException, allow_bug: bool, depth: int) -> Classification:
    if isinstance(exc, BaseExceptionGroup):
        results = []
        for sub in exc.exceptions:
            flag = _flag(sub)
            if flag is True and allow_bug:
                results.append(CODE_BUG)
            else:
                results.append(_classify_exc(sub, allow_bug and flag is not False, depth + 1))
        return max(results, key=_RANK.__getitem__) if results else USER_ERROR
    status = _http_status(exc)
    if status is not None:
        inner = _attr(exc, "original_exception") or exc.__cause__
        if status >= 500 and isinstance(inner, BaseException) and depth < 8:
            return _classify_exc(inner, allow_bug, depth + 1)
        return classify_status(status)
    names = [(f"{cls.__module__}.{cls.__qualname__}", cls.__name__) for cls in type(exc).__mro__]
    result = _from_facts(names, _code_of(exc), _str_attr(exc, "syscall"), _message(exc), allow_bug)
    if result is None:
        result = _smtp_or_temporary(exc)
    cause = exc.__cause__
    if result is None and cause is not None and depth < 8 and _classify_exc(cause, allow_bug, depth + 1) == EXTERNAL:
        result = EXTERNAL
    return result or USER_ERROR


def _from_facts(names: list[tuple[str, str]], code: str | None, syscall: str | None,
                message: str, allow_bug: bool) -> Classification | None:
    """The shared rule table: names (most derived first), then code, syscall and message."""
    if syscall == "getHostByAddr":
        return EXTERNAL
    for qualified, bare in names:
        hit = _NAMES.get(qualified) or _NAMES.get(bare)
        if hit is None and bare.endswith("ValidationError"):
            hit = USER_ERROR
        elif hit is None and bare.startswith("Mongo"):
            hit = CODE_BUG  # every MongoDB driver error extends MongoError (the provider's chain rule)
        if hit is not None and (hit != CODE_BUG or allow_bug):
            return hit
    if code:
        upper = code.upper()
        if upper != "UND_ERR_RESPONSE_STATUS_CODE" and (
                upper in NETWORK_CODES or upper.startswith(("ERR_TLS_", "ERR_SSL_", "UND_ERR_"))):
            return EXTERNAL
        if allow_bug and (upper in LOCAL_CODES or upper.startswith(("SQLITE_", "UNKNOWN_SQLITE_ERROR_"))):
            return CODE_BUG
    if allow_bug and syscall in SYSCALLS:
        return CODE_BUG
    if message and _TRANSIENT_MESSAGE.search(message):
        return EXTERNAL
    return None


def _attr(obj: object, name: str) -> Any:
    """getattr that never raises (some exceptions have properties that do)."""
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a broken property must not break classification
        return None


def _str_attr(obj: object, name: str) -> str | None:
    value = _attr(obj, name)
    return value if isinstance(value, str) else None


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599


def _looks_http(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if "http" in cls.__name__.lower() or cls.__module__.startswith(_HTTP_MODULES):
            return True
    return False


def _http_status(exc: BaseException) -> int | None:
    """An HTTP error status carried by the exception, if any."""
    for attr in ("status_code", "status", "statusCode"):
        value = _attr(exc, attr)
        if _is_status(value):
            return int(value)
    response = _attr(exc, "response")
    if response is not None:
        for attr in ("status_code", "status"):
            value = _attr(response, attr)
            if _is_status(value):
                return int(value)
    output = _attr(exc, "output")  # Boom-like
    if isinstance(output, Mapping) and _is_status(output.get("statusCode")):
        return int(output["statusCode"])
    code = _attr(exc, "code")
    if _is_status(code) and _looks_http(exc):
        return int(code)
    name = type(exc).__name__
    if name == "Http404":
        return 404
    if name == "PermissionDenied" and type(exc).__module__.startswith("django"):
        return 403
    return None


def _code_of(exc: BaseException) -> str | None:
    """A Node-style error code: ``exc.code`` when it is a string, else the errno's name."""
    code = _str_attr(exc, "code") or _str_attr(exc, "sqlite_errorname")
    if code:
        return code
    number = _attr(exc, "errno")
    if isinstance(exc, OSError) and isinstance(number, int) and number > 0:
        return _errno.errorcode.get(number)
    return None


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break classification
        return ""


def _smtp_or_temporary(exc: BaseException) -> Classification | None:
    if _attr(exc, "temporary") is True:
        return EXTERNAL
    code = _attr(exc, "smtp_code")
    if code is None:
        code = _attr(exc, "responseCode")
    if isinstance(code, int) and not isinstance(code, bool):
        if 400 <= code < 500:
            return EXTERNAL
        if 500 <= code < 600:
            return USER_ERROR
    return None
