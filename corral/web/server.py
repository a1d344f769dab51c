"""The web process: one handler for the API, the event stream and the dashboard's files.

Run by the daemon as the app ``corral-web`` (``corral web`` starts it): ``python -m corral.web
--listen HOST:PORT [--cert F --key F] [--insecure] [--allow-host NAME]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, AsyncGenerator

from corral.paths import Home
from corral.web import api, auth, upstream
from corral.web.httpd import HTTPError, Request, Response, error_response, json_response

STATIC = os.path.join(os.path.dirname(__file__), "static")
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/static/app.css": ("app.css", "text/css; charset=utf-8")}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SSE_KEEPALIVE = 15.0
MAX_STREAMS = 32  # event streams open at once (each holds a subscription in the daemon)
MAX_LOG_LINES = 5000


class Web:
    def __init__(self, home: Home, hosts: set[str]) -> None:
        self.home, self.hosts = home, hosts
        self.keys = auth.Keys(home)
        self._files: dict[str, bytes] = {}
        self.streams = 0

    async def handle(self, request: Request) -> Response:
        if not auth.host_allowed(request.headers.get("host", ""), self.hosts):
            return error_response(403, f"host {request.headers.get('host', '')[:80]!r} is not one this server answers to")
        try:
            return await self._route(request)
        except HTTPError as exc:
            return error_response(exc.status, exc.message)
        except (api.BadArgs, api.protocol.RemoteError, api.protocol.ProtocolError, upstream.Unavailable) as exc:
            return api.status_of(exc)
        except Exception as exc:  # noqa: BLE001 - one request fails, never the server
            import traceback

            traceback.print_exc()
            return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    async def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path in FILES:
            if method not in ("GET", "HEAD"):
                raise HTTPError(405, "GET only")
            return self._file(path)
        if path == "/api/login" and method == "POST":
            return api.login(request, self.keys)
        if path == "/api/logout" and method == "POST":
            return api.logout(request)
        role, via_cookie = api.who(request, self.keys)
        if path == "/api/session":
            return json_response(200, auth.describe(role, self.keys))
        if path == "/api/ops":
            return json_response(200, api.routes())
        if path == "/api/stream":
            return self._stream(request)
        if path == "/api/logs":
            return await self._logs(request)
        op = api.op_of(path)
        if op is None:
            raise HTTPError(404, f"no such route: {path[:80]} (GET /api/ops lists them)")
        return await self._op(request, op, role, via_cookie)

    async def _op(self, request: Request, op: str, role: str, via_cookie: bool) -> Response:
        reads = op in api.READ_ONLY
        if request.method == "GET" and reads:
            args = api.query_args(op, request.query)
        elif request.method == "POST":
            if not reads:
                api.check_write(request, role, via_cookie, self.keys)
            args = api.body_args(op, request)
        else:
            raise HTTPError(405, f"{op} changes things: POST it with a JSON body" if not reads else "GET or POST")
        if not reads and role != auth.FULL:
            raise HTTPError(403, f"{op}: this token is read-only (`corral web token` prints the full one)")
        result = await upstream.call(self.home, op, args, raw=True)
        if isinstance(result, upstream.Raw):  # the daemon's JSON as it is: no decoding, no encoding
            return Response(200, bytes(result), [("Content-Type", "application/json")])
        return json_response(200, result)

    def _file(self, path: str) -> Response:
        name, kind = FILES[path]
        if name not in self._files:
            with open(os.path.join(STATIC, name), "rb") as f:
                self._files[name] = f.read()
        return Response(200, self._files[name], [("Content-Type", kind), ("Content-Security-Policy", CSP),
                                                 ("X-Frame-Options", "DENY")])

    async def _logs(self, request: Request) -> Response:
        """``?target=&lines=&grep=&stream=out|err``: the last lines of apps' log files; with
        ``follow=1``, as Server-Sent Events (``line``), then every new line as it is written."""
        target = request.query.get("target") or "all"
        try:
            lines = max(0, min(MAX_LOG_LINES, int(request.query.get("lines") or 100)))
        except ValueError:
            raise HTTPError(400, "logs: lines is not a whole number") from None
        entries = await upstream.call(self.home, "log_paths", {"target": target})
        stream = request.query.get("stream")
        if stream in ("out", "err"):
            entries = [e for e in entries if e["stream"] in (stream, "both")]
        from corral.web import logview

        grep = request.query.get("grep") or ""
        if request.query.get("follow", "").lower() in api.TRUE:  # SSE: the last lines, then the new ones
            logview.keep_filter(grep)  # a bad pattern is a 400 now, not a broken stream
            return Response(200, b"", [("Content-Type", "text/event-stream"), ("X-Accel-Buffering", "no")],
                            stream=logview.follow(entries, lines, grep))
        return json_response(200, await asyncio.to_thread(logview.last_lines, entries, lines, grep))

    def _stream(self, request: Request) -> Response:
        """Server-Sent Events: ``event`` (the daemon's events, as ``events --json``), ``metrics``
        (the latest samples every ``metrics`` seconds, default 2; 0: none) and ``dropped``."""
        target = request.query.get("target") or None
        try:
            history = max(0, min(1000, int(request.query.get("history") or 0)))
            every = float(request.query.get("metrics") or 2)
        except ValueError:
            raise HTTPError(400, "stream: history and metrics are numbers") from None
        if target:
            from corral.control.ops import check_request

            check_request("subscribe", {"target": target})
        if self.streams >= MAX_STREAMS:
            raise HTTPError(503, f"too many event streams open (at most {MAX_STREAMS})")
        headers = [("Content-Type", "text/event-stream"), ("X-Accel-Buffering", "no")]
        return Response(200, b"", headers, stream=self._events(target, history, max(0.0, every)))

    async def _events(self, target: str | None, history: int, every: float) -> AsyncGenerator[bytes, None]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=2000)
        self.streams += 1
        tasks = [asyncio.create_task(self._pump_events(queue, target, history))]
        if every > 0:
            tasks.append(asyncio.create_task(self._pump_metrics(queue, target, max(0.5, every))))
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    async with asyncio.timeout(SSE_KEEPALIVE):
                        kind, data = await queue.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
                if kind == "error":
                    return
        finally:
            self.streams -= 1
            for task in tasks:
                task.cancel()

    async def _pump_events(self, queue: asyncio.Queue[tuple[str, Any]], target: str | None, history: int) -> None:
        try:
            async for message in upstream.subscribe(self.home, target, history):
                if "event" in message:
                    await queue.put(("event", message["event"]))
                elif "dropped" in message:
                    await queue.put(("dropped", message["dropped"]))
        except (upstream.Unavailable, api.protocol.RemoteError, api.protocol.ProtocolError) as exc:
            await queue.put(("error", {"error": str(exc)}))

    async def _pump_metrics(self, queue: asyncio.Queue[tuple[str, Any]], target: str | None, every: float) -> None:
        args = {"target": target, "since": 1}  # the latest samples; the page loads the history once
        last: Any = None
        while True:
            try:
                report = await upstream.call(self.home, "metrics", args)
                instances = report.get("instances", [])
                seen = [(i.get("app"), i.get("instance"), i.get("uptime"), i.get("cpu_seconds")) for i in instances]
                if seen != last:  # a new sample (the monitor samples every monitor_interval): one point each
                    last = seen
                    await queue.put(("metrics", {"now": report.get("now", time.time()), "host": report.get("host"),
                                                 "instances": instances}))
            except (upstream.Unavailable, api.protocol.RemoteError, api.protocol.ProtocolError) as exc:
                await queue.put(("metrics", {"error": str(exc)}))
            await asyncio.sleep(every)
