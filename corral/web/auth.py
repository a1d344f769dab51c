"""Who may do what: the web tokens (a full one and a read-only one), the browser's cookie and
CSRF value derived from them, and the Host and Origin checks.  Pure, but for the token file.

The tokens live in ``CORRAL_HOME/web-tokens.json``, mode 0600, created on first use and never
opened through a link.  A cookie and a CSRF value are HMACs of their token: rotating a token
(``corral web token --rotate``) ends every browser session made with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Any

from corral.paths import Home
from corral.exceptions import UserMistake

FULL, READ_ONLY = "full", "read-only"
ROLES = (FULL, READ_ONLY)
TOKEN_FILE = "web-tokens.json"
COOKIE = "corral_session"
CSRF_HEADER = "x-corral-csrf"
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class TokenFileError(UserMistake):
    """The token file cannot be read or written (one line)."""


def token_path(home: Home) -> str:
    return os.path.join(home.root, TOKEN_FILE)


def _read(path: str) -> dict[str, str] | None:
    try:
        fd = os.open(path, _OPEN)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenFileError(f"{path}: {exc.strerror or exc} (it must be a plain file, not a link)") from None
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise TokenFileError(f"{path}: must be yours and mode 0600 (it is {st.st_mode & 0o777:o})")
        try:
            data = json.loads(f.read(4096))
        except ValueError:
            raise TokenFileError(f"{path}: not a token file (delete it to make new tokens)") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(r), str) and len(data[r]) >= 32 for r in ROLES):
        raise TokenFileError(f"{path}: not a token file (delete it to make new tokens)")
    return {r: data[r] for r in ROLES}


def _write(path: str, tokens: dict[str, str]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with open(fd, "w") as f:
            json.dump(tokens, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(home: Home, create: bool = True) -> dict[str, str]:
    """Both tokens, made (0600) when there are none yet."""
    path = token_path(home)
    tokens = _read(path)
    if tokens is None:
        if not create:
            raise TokenFileError(f"{path}: no web tokens yet (`corral web` or `corral web token` makes them)")
        home.ensure()
        tokens = {role: secrets.token_urlsafe(32) for role in ROLES}
        try:
            _write(path, tokens)
        except FileExistsError:  # another process made them at the same time
            return load(home, create=False)
    return tokens


def rotate(home: Home, role: str) -> dict[str, str]:
    tokens = load(home)
    tokens[role] = secrets.token_urlsafe(32)
    _write(token_path(home), tokens)
    return tokens


def _mac(token: str, what: str) -> str:
    return hmac.new(token.encode(), what.encode(), hashlib.sha256).hexdigest()


class Keys:
    """The tokens as the server checks them, read again whenever the file changes."""

    def __init__(self, home: Home) -> None:
        self.path = token_path(home)
        self.home = home
        self._stamp: tuple[int, int, int] | None = None
        self.tokens = load(home)
        self._refresh()

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self.tokens = load(self.home, create=False)
            self._stamp = stamp

    def role_of_bearer(self, token: str) -> str | None:
        self._refresh()
        for role in ROLES:
            if hmac.compare_digest(token.encode(), self.tokens[role].encode()):
                return role
        return None

    def cookie(self, role: str) -> str:
        return f"{role}.{_mac(self.tokens[role], 'cookie')}"

    def csrf(self, role: str) -> str:
        return _mac(self.tokens[role], "csrf")

    def role_of_cookie(self, value: str) -> str | None:
        self._refresh()
        role, _, mac = value.partition(".")
        if role in ROLES and hmac.compare_digest(mac.encode(), _mac(self.tokens[role], "cookie").encode()):
            return role
        return None


def cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            out.setdefault(name, value)
    return out


def host_name(host: str) -> str:
    """``example.com:9616`` -> ``example.com``; ``[::1]:9616`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: set[str]) -> bool:
    return bool(host) and host_name(host) in allowed


def origin_allowed(origin: str | None, host: str, scheme: str) -> bool:
    """No Origin (not a browser, or a same-origin GET) passes; else it must be this very site."""
    if origin is None:
        return True
    return origin.lower() == f"{scheme}://{host.lower()}"


def is_loopback(address: str) -> bool:
    name = host_name(address)
    return name in ("localhost", "::1") or name.startswith("127.")


def allowed_hosts(listen: str, extra: list[str]) -> set[str]:
    names = {"localhost", "127.0.0.1", "::1", host_name(listen)} | {n.lower() for n in extra}
    names.discard("0.0.0.0")
    names.discard("::")
    return names


def session_headers(keys: Keys, role: str, secure: bool) -> list[tuple[str, str]]:
    flags = "; Secure" if secure else ""
    return [("Set-Cookie", f"{COOKIE}={keys.cookie(role)}; Path=/; HttpOnly; SameSite=Strict{flags}")]


def describe(role: str, keys: Keys) -> dict[str, Any]:
    return {"role": role, "csrf": keys.csrf(role)}
