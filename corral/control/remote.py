"""The control operations over another host's HTTP API (``corral --remote URL``, U7), and the
client class for scripts (``corral.web.client.RemoteClient`` is this one).

Standard library only (``http.client``, ``ssl``, ``json``), loaded only in remote mode: the local
CLI never imports it.  Errors are the CLI's own (``protocol.RemoteError``, ``OperationFailed``),
so a remote command fails exactly as a local one does: one line and the same exit status.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

from corral.control import protocol
from corral.control.ops import timeout_for
from corral.exceptions import OperationFailed, UserMistake

REMOTE_VAR, TOKEN_VAR, TOKEN_FILE_VAR, CA_VAR = "CORRAL_REMOTE", "CORRAL_TOKEN", "CORRAL_TOKEN_FILE", "CORRAL_CA_FILE"


class RemoteUnavailable(OperationFailed):
    """The remote API does not answer, or its daemon does not."""


class RemoteSetupError(UserMistake):
    """A remote URL or token that cannot be used (one line)."""


def from_env(environ: dict[str, str] | os._Environ[str] | None = None) -> RemoteClient | None:
    """The client ``CORRAL_REMOTE`` names, with ``CORRAL_TOKEN`` or the file ``CORRAL_TOKEN_FILE``."""
    env = os.environ if environ is None else environ
    url = env.get(REMOTE_VAR)
    if not url:
        return None
    token = env.get(TOKEN_VAR, "")
    if not token and env.get(TOKEN_FILE_VAR):
        path = env[TOKEN_FILE_VAR]
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read(4096).strip()
        except OSError as exc:
            raise RemoteSetupError(f"--token-file {path}: {exc.strerror or exc}") from None
    if not token:
        raise RemoteSetupError(f"--remote {url}: a token is needed (--token-file F or {TOKEN_VAR}; "
                               "`corral web token` on that host prints it)")
    return RemoteClient(url, token, ca_file=env.get(CA_VAR) or None)


class RemoteClient:
    """``RemoteClient("https://host:9616", token).call("ls")``: an operation's result, as the
    local ``Client.call`` returns it.  ``events(...)`` follows the event stream; ``logs(...)``."""

    def __init__(self, url: str, token: str, *, ca_file: str | None = None, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteSetupError(f"--remote {url!r}: use http(s)://HOST:PORT")
        self.url, self.token, self.ca_file = url.rstrip("/"), token, ca_file
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.timeout = timeout if timeout is not None else timeout_for("")

    def _connection(self, timeout: float) -> Any:
        import http.client

        if self.scheme == "https":
            import ssl

            ctx = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection(self.netloc, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.netloc, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """One request; the decoded JSON answer, or the error as the CLI reports it."""
        conn = self._connection(timeout or self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except TimeoutError:
            raise RemoteUnavailable(f"{self.url} did not answer {path} in time") from None
        except OSError as exc:
            raise RemoteUnavailable(f"cannot reach {self.url}: {getattr(exc, 'reason', None) or exc.strerror or exc}") from None
        finally:
            conn.close()
        return _answer(response.status, raw, self.url)

    def call(self, op: str, args: dict[str, Any] | None = None,
             on_progress: Callable[[Any], None] | None = None) -> Any:
        if op == "subscribe":
            for message in self.events(**(args or {})):
                if on_progress is not None:
                    on_progress(message)
            raise RemoteUnavailable(f"{self.url}: the event stream ended")
        args = {k: v for k, v in (args or {}).items() if v is not None}
        return self.request("POST", f"/api/{op}", args, timeout=max(self.timeout, 120.0))

    def logs(self, target: str = "all", lines: int = 15, grep: str = "", stream: str = "") -> list[dict[str, Any]]:
        query = {"target": target, "lines": lines, **({"grep": grep} if grep else {}), **({"stream": stream} if stream else {})}
        result: list[dict[str, Any]] = self.request("GET", f"/api/logs?{urlencode(query)}")
        return result

    def events(self, target: str | None = None, history: int = 0, all: bool = False,
               maxsize: int | None = None) -> Iterator[dict[str, Any]]:
        """The event stream's messages (``{"event": ROW}``, ``{"dropped": N}``) as they come."""
        query = {"history": history, "metrics": 0, **({"target": target} if target else {})}
        for kind, data in self._sse(f"/api/stream?{urlencode(query)}"):
            if kind in ("event", "dropped"):
                yield {kind: data}

    def follow_logs(self, target: str = "all", lines: int = 15, grep: str = "", stream: str = "") -> Iterator[dict[str, Any]]:
        """The last LINES lines, then every new one as it is written (``corral logs -f``)."""
        query = {"target": target, "lines": lines, "follow": 1, **({"grep": grep} if grep else {}),
                 **({"stream": stream} if stream else {})}
        for kind, data in self._sse(f"/api/logs?{urlencode(query)}"):
            if kind == "line":
                yield data

    def _sse(self, path: str) -> Iterator[tuple[str, Any]]:
        conn = self._connection(60.0)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            if response.status != 200:
                _answer(response.status, response.read(), self.url)
            kind = ""
            for raw in response:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if kind == "error":
                        raise RemoteUnavailable(f"{self.url}: {data.get('error')}")
                    yield kind, data
        except (TimeoutError, OSError) as exc:
            raise RemoteUnavailable(f"{self.url}: the stream broke: {exc}") from None
        finally:
            conn.close()


def _answer(status: int, raw: bytes, url: str) -> Any:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if 200 <= status < 300:
        return data
    message = data.get("error") if isinstance(data, dict) else None
    message = f"{url}: {message or f'HTTP {status}'}"
    if status in (400, 404, 405, 413):
        raise protocol.RemoteError(protocol.USER, message)
    if status in (401, 403):
        raise RemoteSetupError(message)
    if status in (502, 503):
        raise RemoteUnavailable(message)
    raise protocol.RemoteError(protocol.FAILED, message)
