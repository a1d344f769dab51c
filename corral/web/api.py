"""The HTTP API's routes, generated from the declared operations (``control.ops``): every
operation is ``/api/<name>`` (GET with query arguments for the operations that only read, POST
with a JSON object for every one), so the CLI and the API cannot drift.  Plus ``/api/apps`` (``ls``),
``/api/logs``, ``/api/stream`` (Server-Sent Events), ``/api/ops`` and the session routes.
"""

from __future__ import annotations

from typing import Any

from corral.control import protocol
from corral.control.ops import OPS, READ_ONLY, NOT_OVER_HTTP, BadArgs
from corral.web import auth
from corral.web.httpd import HTTPError, Request, Response, error_response, json_response
from corral.web.upstream import Unavailable

ALIASES = {"apps": "ls"}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def routes() -> dict[str, dict[str, Any]]:
    """``/api/<op>`` -> what it takes: the table ``/api/ops`` serves and the CLI's remote mode reads."""
    out = {}
    for op in OPS.values():
        if op.name in NOT_OVER_HTTP:
            continue
        out[f"/api/{op.name}"] = {
            "op": op.name, "doc": op.doc, "methods": ["GET", "POST"] if op.name in READ_ONLY else ["POST"],
            "role": auth.READ_ONLY if op.name in READ_ONLY else auth.FULL, "long": op.long,
            "args": [{"name": a.name, "kind": a.kind, "doc": a.doc, "required": a.required} for a in op.args],
        }
    return out


def op_of(path: str) -> str | None:
    name = path[len("/api/"):] if path.startswith("/api/") else ""
    name = ALIASES.get(name, name)
    return name if name in OPS and name not in NOT_OVER_HTTP else None


def query_args(op: str, query: dict[str, str]) -> dict[str, Any]:
    """A GET's query string as the operation's arguments, typed by their declared kind."""
    kinds = {a.name: a.kind for a in OPS[op].args}
    args: dict[str, Any] = {}
    for name, raw in query.items():
        kind = kinds.get(name)
        if kind is None:
            raise HTTPError(400, f"{op}: unknown argument {name!r} ({op} takes {', '.join(kinds) or 'no arguments'})")
        if kind == "int":
            try:
                args[name] = int(raw)
            except ValueError:
                raise HTTPError(400, f"{op}: {name}: {raw[:40]!r} is not a whole number") from None
        elif kind == "bool":
            if raw.lower() not in TRUE | FALSE:
                raise HTTPError(400, f"{op}: {name}: {raw[:40]!r} is not true or false")
            args[name] = raw.lower() in TRUE
        elif kind in ("target", "text", "count"):
            args[name] = raw
        else:
            raise HTTPError(400, f"{op}: {name} goes in a POST's JSON body")
    return args


def body_args(op: str, request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise HTTPError(400, f"{op}: the body must be a JSON object of arguments")
    return data


def status_of(exc: Exception) -> Response:
    if isinstance(exc, BadArgs):
        return error_response(400, exc.message)
    if isinstance(exc, protocol.RemoteError):
        user = exc.code in (protocol.USER, protocol.BAD_REQUEST)
        return error_response(400 if user else 500, exc.message)
    if isinstance(exc, protocol.ProtocolError):
        return error_response(502, f"the daemon's reply: {exc}")
    if isinstance(exc, Unavailable):
        return error_response(503, str(exc))
    raise exc


def check_write(request: Request, role: str, via_cookie: bool, keys: auth.Keys) -> None:
    """A state change: the Origin must be this site; a browser session must send its CSRF value."""
    host = request.headers.get("host", "")
    if not auth.origin_allowed(request.headers.get("origin"), host, request.scheme):
        raise HTTPError(403, f"origin {request.headers.get('origin', '')[:80]!r} is not this site")
    if via_cookie:
        sent = request.headers.get(auth.CSRF_HEADER, "")
        import hmac

        if not hmac.compare_digest(sent.encode(), keys.csrf(role).encode()):
            raise HTTPError(403, f"a change from the browser needs the {auth.CSRF_HEADER} header")


def who(request: Request, keys: auth.Keys) -> tuple[str, bool]:
    """The caller's role and whether it came by cookie; 401 without valid credentials."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        role = keys.role_of_bearer(token.strip()) if scheme.lower() == "bearer" else None
        if role is None:
            raise HTTPError(401, "the token is not valid (Authorization: Bearer TOKEN; `corral web token` prints it)")
        return role, False
    value = auth.cookies(request.headers.get("cookie", "")).get(auth.COOKIE)
    role = keys.role_of_cookie(value) if value else None
    if role is None:
        raise HTTPError(401, "a token is needed (Authorization: Bearer TOKEN; `corral web token` prints it)")
    return role, True


def login(request: Request, keys: auth.Keys) -> Response:
    check_write(request, auth.FULL, False, keys)
    data = request.json()
    token = data.get("token") if isinstance(data, dict) else None
    role = keys.role_of_bearer(token) if isinstance(token, str) else None
    if role is None:
        return error_response(401, "the token is not valid")
    return json_response(200, auth.describe(role, keys),
                         auth.session_headers(keys, role, request.scheme == "https"))


def logout(request: Request) -> Response:
    flags = "; Secure" if request.scheme == "https" else ""
    return json_response(200, {"ok": True},
                         [("Set-Cookie", f"{auth.COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}")])
