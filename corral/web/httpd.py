"""A small HTTP/1.1 server on asyncio: requests with bounded heads and bodies, keep-alive, slow
clients timed out, and streamed responses (Server-Sent Events).  TLS by the stdlib ``ssl``.

Every refusal is a 4xx with a one-line reason; a bad client never stops the server.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, AsyncGenerator, Awaitable, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from corral.exceptions import CorralError

MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024  # bytes of a request body (413 above)
HEAD_TIMEOUT = 10.0  # seconds to send a request's head (a slow client is dropped)
BODY_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may wait for its next request
MAX_CONNECTIONS = 256  # open at once; one more is answered 503 and closed
REASONS = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           411: "Length Required", 413: "Content Too Large", 421: "Misdirected Request",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable"}


class HTTPError(CorralError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Request:
    __slots__ = ("method", "target", "path", "query", "headers", "body", "scheme")

    def __init__(self, method: str, target: str, headers: dict[str, str], scheme: str) -> None:
        parts = urlsplit(target)
        self.method, self.target, self.headers, self.scheme = method, target, headers, scheme
        self.path = unquote(parts.path)
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.body = b""

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"the body is not JSON: {str(exc)[:120]}") from None
        except RecursionError:
            raise HTTPError(400, "the body is nested too deeply") from None


class Response:
    __slots__ = ("status", "headers", "body", "stream")

    def __init__(self, status: int = 200, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                 stream: AsyncGenerator[bytes, None] | None = None) -> None:
        self.status, self.body, self.headers, self.stream = status, body, list(headers or []), stream


def json_response(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, [("Content-Type", "application/json"), *(headers or [])])


def error_response(status: int, message: str) -> Response:
    return json_response(status, {"error": message.splitlines()[0] if message else REASONS.get(status, "")})


Handler = Callable[[Request], Awaitable[Response]]


async def _head(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    try:
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HTTPError(400, "the request ended before its headers did") from None
        return None
    except asyncio.LimitOverrunError:
        raise HTTPError(431, f"the request's head is over {MAX_HEAD} bytes") from None
    except TimeoutError:
        raise HTTPError(408, "the request's head did not come in time") from None
    return head


def parse_head(head: bytes, scheme: str) -> Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HTTPError(400, "bad request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise HTTPError(400, "bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HTTPError(400, "bad header line")
        key = name.lower()
        if key in ("content-length", "host") and key in headers:
            raise HTTPError(400, f"more than one {name} header")
        headers[key] = value.strip()
    if len(headers) > MAX_HEADERS:
        raise HTTPError(431, f"more than {MAX_HEADERS} headers")
    return Request(parts[0], parts[1], headers, scheme)


async def _body(reader: asyncio.StreamReader, request: Request, writer: asyncio.StreamWriter) -> None:
    if "transfer-encoding" in request.headers:
        raise HTTPError(411, "send a Content-Length (chunked bodies are not taken)")
    raw = request.headers.get("content-length", "0")
    if not raw.isdigit():
        raise HTTPError(400, "Content-Length is not a number")
    length = int(raw)
    if length > MAX_BODY:
        raise HTTPError(413, f"the body is {length} bytes, over the {MAX_BODY} allowed")
    if length:
        if request.headers.get("expect", "").lower() == "100-continue":  # curl waits for it (1 s) otherwise
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                request.body = await reader.readexactly(length)
        except (TimeoutError, asyncio.IncompleteReadError):
            raise HTTPError(408, "the body did not come in time") from None


def _encode_head(status: int, headers: list[tuple[str, str]], keep: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += ["X-Content-Type-Options: nosniff", "Referrer-Policy: no-referrer", "Cache-Control: no-store",
              f"Connection: {'keep-alive' if keep else 'close'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(writer: asyncio.StreamWriter, response: Response, keep: bool, head_only: bool,
                reader: asyncio.StreamReader | None = None) -> None:
    if response.stream is not None:
        await _stream(writer, response.stream, response, reader)
        return
    headers = [*response.headers, ("Content-Length", str(len(response.body)))]
    writer.write(_encode_head(response.status, headers, keep) + (b"" if head_only else response.body))
    await writer.drain()


async def _stream(writer: asyncio.StreamWriter, stream: AsyncGenerator[bytes, None], response: Response,
                  reader: asyncio.StreamReader | None) -> None:
    """A streamed response, until it ends or the client hangs up (seen at once: its end of file)."""
    writer.write(_encode_head(response.status, response.headers, False))

    async def pump() -> None:
        await writer.drain()
        async for chunk in stream:
            writer.write(chunk)
            await writer.drain()

    async def hung_up() -> None:
        while reader is not None and await reader.read(4096):
            pass
        if reader is None:
            await asyncio.Event().wait()

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(hung_up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.aclose()


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler,
                           scheme: str) -> None:
    timeout = HEAD_TIMEOUT
    try:
        while True:
            keep, head_only = False, False
            try:
                head = await _head(reader, timeout)
                if head is None:
                    return
                request = parse_head(head, scheme)
                await _body(reader, request, writer)
                keep = request.headers.get("connection", "").lower() != "close"
                head_only = request.method == "HEAD"
                response = await handler(request)
            except HTTPError as exc:
                response = error_response(exc.status, exc.message)
            await _send(writer, response, keep, head_only, reader)
            if not keep or response.stream is not None:
                return
            timeout = IDLE_TIMEOUT
    except (ConnectionError, OSError, ssl.SSLError, asyncio.CancelledError):
        return
    finally:
        writer.close()


async def start(handler: Handler, host: str, port: int, tls: ssl.SSLContext | None) -> asyncio.Server:
    scheme = "https" if tls else "http"
    open_now = [0]

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if open_now[0] >= MAX_CONNECTIONS:
            busy = error_response(503, f"too many connections (at most {MAX_CONNECTIONS})")
            try:
                await _send(writer, busy, False, False)
            except (ConnectionError, OSError, ssl.SSLError):
                pass
            writer.close()
            return
        open_now[0] += 1
        try:
            await serve_connection(reader, writer, handler, scheme)
        finally:
            open_now[0] -= 1

    return await asyncio.start_server(on_connect, host, port, ssl=tls, limit=MAX_HEAD,
                                      ssl_handshake_timeout=HEAD_TIMEOUT if tls else None)
