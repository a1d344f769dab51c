"""The web process's pure parts: routes generated from the declared operations, query arguments,
the request-head parser, the Host/Origin rules, cookies and the token file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.control.ops import NOT_OVER_HTTP, OPS, READ_ONLY
from corral.paths import Home
from corral.web import api, auth
from corral.web.httpd import HTTPError, parse_head


def test_every_operation_has_a_route_and_only_reads_are_gets() -> None:
    routes = api.routes()
    assert set(routes) == {f"/api/{name}" for name in OPS if name not in NOT_OVER_HTTP}
    for path, route in routes.items():
        reads = route["op"] in READ_ONLY
        assert route["methods"] == (["GET", "POST"] if reads else ["POST"]), path
        assert route["role"] == (auth.READ_ONLY if reads else auth.FULL)
        assert [a["name"] for a in route["args"]] == [a.name for a in OPS[route["op"]].args]
    assert api.op_of("/api/apps") == "ls" and api.op_of("/api/kill") is None and api.op_of("/api/nope") is None


def test_query_arguments_are_typed_by_their_declaration() -> None:
    assert api.query_args("events", {"target": "api", "limit": "20"}) == {"target": "api", "limit": 20}
    assert api.query_args("subscribe", {"all": "true"}) == {"all": True}
    with pytest.raises(HTTPError, match=r"events: limit: 'x' is not a whole number"):
        api.query_args("events", {"limit": "x"})
    with pytest.raises(HTTPError, match=r"ls: unknown argument 'x' \(ls takes no arguments\)"):
        api.query_args("ls", {"x": "1"})
    with pytest.raises(HTTPError, match="goes in a POST's JSON body"):
        api.query_args("start", {"apps": "[]"})


def test_request_heads() -> None:
    req = parse_head(b"GET /api/events?target=a%20b&limit=3 HTTP/1.1\r\nHost: x:1\r\nX-A:  v \r\n\r\n", "http")
    assert (req.method, req.path, req.query, req.headers) == ("GET", "/api/events", {"target": "a b", "limit": "3"},
                                                              {"host": "x:1", "x-a": "v"})
    for bad in (b"GET /\r\n\r\n", b"GET api HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
                b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n", b"\x16\x03\x01\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 9\r\n\r\n"):
        with pytest.raises(HTTPError) as err:
            parse_head(bad, "http")
        assert err.value.status == 400
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(HTTPError) as err:
        parse_head(many, "http")
    assert err.value.status == 431


def test_host_and_origin_rules() -> None:
    allowed = auth.allowed_hosts("0.0.0.0:9616", ["Dash.Example.com"])
    assert allowed == {"localhost", "127.0.0.1", "::1", "dash.example.com"}
    assert auth.host_allowed("dash.example.com:9616", allowed) and auth.host_allowed("[::1]:9616", allowed)
    assert not auth.host_allowed("evil.example:9616", allowed) and not auth.host_allowed("", allowed)
    assert auth.origin_allowed(None, "127.0.0.1:9616", "http")
    assert auth.origin_allowed("http://127.0.0.1:9616", "127.0.0.1:9616", "http")
    assert not auth.origin_allowed("https://127.0.0.1:9616", "127.0.0.1:9616", "http")
    assert not auth.origin_allowed("null", "127.0.0.1:9616", "http")
    assert auth.is_loopback("127.0.0.2:1") and auth.is_loopback("[::1]:1") and not auth.is_loopback("10.0.0.1:1")
    assert auth.cookies("a=1; corral_session=full.x; b") == {"a": "1", "corral_session": "full.x"}


def test_tokens_roles_cookies_and_rotation(tmp_path: Path) -> None:
    home = Home(str(tmp_path / "home"))
    keys = auth.Keys(home)
    path = auth.token_path(home)
    assert os.stat(path).st_mode & 0o777 == 0o600
    full, ro = keys.tokens[auth.FULL], keys.tokens[auth.READ_ONLY]
    assert full != ro and keys.role_of_bearer(full) == auth.FULL and keys.role_of_bearer(ro) == auth.READ_ONLY
    assert keys.role_of_bearer(full[:-1]) is None
    cookie = keys.cookie(auth.READ_ONLY)
    assert keys.role_of_cookie(cookie) == auth.READ_ONLY
    assert keys.role_of_cookie(cookie.replace("read-only", "full")) is None  # a role is not claimed, it is proven
    assert keys.csrf(auth.FULL) != keys.csrf(auth.READ_ONLY)
    auth.rotate(home, auth.READ_ONLY)
    assert keys.role_of_cookie(cookie) is None and keys.role_of_bearer(ro) is None  # seen without a restart
    assert keys.role_of_bearer(full) == auth.FULL
    os.chmod(path, 0o644)
    with pytest.raises(auth.TokenFileError, match="mode 0600"):
        auth.load(home)
    os.unlink(path)
    os.symlink(str(tmp_path / "elsewhere"), path)
    with pytest.raises(auth.TokenFileError, match="not a link"):
        auth.load(home)
    assert not (tmp_path / "elsewhere").exists()
