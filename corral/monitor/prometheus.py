"""``GET /metrics`` in Prometheus' text exposition format (0.0.4), when ``metrics_listen`` is set.

Loaded only then (the monitor imports it on the setting): no HTTP library, ``asyncio.start_server``
and a request parser that reads at most :data:`MAX_HEAD` bytes within :data:`READ_TIMEOUT`
seconds, at most :data:`MAX_CLIENTS` connections at once; anything but ``GET /metrics`` is a
404, a bad request a 400, and none of it costs the daemon more than that connection.

A token (``metrics_token``) is required as ``Authorization: Bearer <token>`` whenever one is set
(the file must set one to listen beyond loopback: ``corral.config.host``); compared in constant
time.  A new ``metrics_listen`` rebinds; a bind that fails is one daemon.log line and a
``metrics_listen_failed`` event, and the daemon goes on without the endpoint.

Names follow Prometheus' conventions (``corral_`` prefix, base units, ``_total`` on counters,
ratios 0-1 rather than percents).  Where corral differs: the ``instance`` label is corral's
instance number (the issue's name for it); Prometheus attaches its own ``instance`` (the scrape
target), so a server without ``honor_labels`` shows corral's as ``exported_instance``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING, Any

from corral.events import Note

from corral.feature_events import Alert, AlertDelivery

if TYPE_CHECKING:
    from corral.daemon.core import Core
    from corral.monitor.service import Monitor

log = logging.getLogger("corral.daemon")

MAX_HEAD = 8192  # bytes of a request's line and headers
READ_TIMEOUT = 5.0  # seconds a client has to send them
WRITE_TIMEOUT = 10.0  # seconds it has to take the answer
MAX_CLIENTS = 8  # connections at once; more are closed at once
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]
#: name -> (type, help); the order of the output
FAMILIES: dict[str, tuple[str, str]] = {
    "corral_instance_up": ("gauge", "1 when the instance is online, else 0"),
    "corral_instance_ready": ("gauge", "1 when the instance was proven ready (probe passed or listening)"),
    "corral_instance_restarts_total": ("counter", "restarts of the instance"),
    "corral_instance_start_time_seconds": ("gauge", "when the instance's process started (Unix time)"),
    "corral_instance_cpu_seconds_total": ("counter", "CPU time used by the instance's process tree"),
    "corral_instance_memory_bytes": ("gauge", "resident memory of the instance's process tree"),
    "corral_instance_threads": ("gauge", "threads of the instance's process tree"),
    "corral_instance_open_fds": ("gauge", "open file descriptors of the instance's process tree"),
    "corral_instance_processes": ("gauge", "processes in the instance's tree"),
    "corral_log_dropped_lines_total": ("counter", "log lines the app's log files never got (since the daemon started)"),
    "corral_log_dropped_bytes_total": ("counter", "bytes of the log lines the app's log files never got"),
    "corral_log_withheld_lines_total": ("counter", "log lines withheld because their redaction failed"),
    "corral_host_cpu_ratio": ("gauge", "host CPU busy over the last sample interval, all cores (0-1)"),
    "corral_host_memory_available_bytes": ("gauge", "host memory available (MemAvailable)"),
    "corral_host_memory_total_bytes": ("gauge", "host memory (MemTotal)"),
    "corral_host_load1": ("gauge", "1-minute load average"),
    "corral_host_load5": ("gauge", "5-minute load average"),
    "corral_host_load15": ("gauge", "15-minute load average"),
    "corral_filesystem_used_ratio": ("gauge", "used share of a mounted filesystem, as df counts it (0-1)"),
    "corral_filesystem_free_bytes": ("gauge", "bytes free for unprivileged users on a mounted filesystem"),
    "corral_filesystem_size_bytes": ("gauge", "size of a mounted filesystem"),
    "corral_monitor_samples_total": ("counter", "monitor readings taken"),
    "corral_monitor_sample_failures_total": ("counter", "monitor readings that failed"),
    "corral_monitor_last_sample_timestamp_seconds": ("gauge", "when the latest monitor reading was taken (Unix time)"),
    "corral_alerts_total": ("counter", "alerts raised, by kind and severity (since the endpoint started)"),
    "corral_alert_deliveries_total": ("counter", "final outcomes of alert deliveries, by sink and outcome"),
}


def escape(value: str) -> str:
    """A label value as the format writes it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(families: dict[str, list[Sample]]) -> str:
    """The exposition text: HELP and TYPE for every family in :data:`FAMILIES` that has samples."""
    out: list[str] = []
    for name, (kind, text) in FAMILIES.items():
        samples = families.get(name)
        if not samples:
            continue
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            shown = ",".join(f'{key}="{escape(str(val))}"' for key, val in labels.items())
            out.append(f"{name}{{{shown}}} {number(value)}" if shown else f"{name} {number(value)}")
    return "\n".join(out) + "\n"


def collect(core: Core, monitor: Monitor | None, alerts: dict[tuple[str, str], int],
            deliveries: dict[tuple[str, str], int]) -> dict[str, list[Sample]]:
    """Every family's samples, from the core's view and latest samples and the monitor's reading."""
    fam: dict[str, list[Sample]] = {name: [] for name in FAMILIES}
    latest: dict[tuple[str, int], dict[str, Any]] = getattr(core, "latest", {})
    for app in core.view().apps:
        own = {"app": app.name, "namespace": app.namespace}
        fam["corral_log_dropped_lines_total"].append((own, app.log_dropped))
        fam["corral_log_dropped_bytes_total"].append((own, app.log_dropped_bytes))
        fam["corral_log_withheld_lines_total"].append((own, app.log_withheld))
        for inst in app.instances:
            labels = {"app": app.name, "instance": str(inst.index), "namespace": app.namespace}
            fam["corral_instance_up"].append((labels, inst.status == "online" and inst.pid is not None))
            fam["corral_instance_ready"].append((labels, inst.ready and inst.pid is not None))
            fam["corral_instance_restarts_total"].append((labels, inst.restarts))
            if inst.pid is None:
                continue
            if inst.started_at:
                fam["corral_instance_start_time_seconds"].append((labels, round(inst.started_at, 3)))
            sample = latest.get((app.name, inst.index))
            if sample is None or sample.get("pid") != inst.pid:
                continue  # not sampled yet (or the sample is of the process before)
            fam["corral_instance_cpu_seconds_total"].append((labels, sample.get("cpu_seconds", 0.0)))
            fam["corral_instance_memory_bytes"].append((labels, sample["rss"]))
            fam["corral_instance_threads"].append((labels, sample["threads"]))
            fam["corral_instance_open_fds"].append((labels, sample["fds"]))
            fam["corral_instance_processes"].append((labels, sample["procs"]))
    if monitor is not None:
        _host(fam, monitor)
    for (kind, severity), n in sorted(alerts.items()):
        fam["corral_alerts_total"].append(({"kind": kind, "severity": severity}, n))
    for (sink, outcome), n in sorted(deliveries.items()):
        fam["corral_alert_deliveries_total"].append(({"sink": sink, "outcome": outcome}, n))
    return fam


def _host(fam: dict[str, list[Sample]], monitor: Monitor) -> None:
    fam["corral_monitor_samples_total"].append(({}, monitor.ticks))
    fam["corral_monitor_sample_failures_total"].append(({}, monitor.failed))
    host = monitor.sampler.last_host
    if not host:
        return
    fam["corral_monitor_last_sample_timestamp_seconds"].append(({}, round(monitor.last_ts, 3)))
    fam["corral_host_cpu_ratio"].append(({}, round(host["cpu"] / 100, 4)))
    fam["corral_host_memory_available_bytes"].append(({}, host["memory_available_bytes"]))
    fam["corral_host_memory_total_bytes"].append(({}, host["memory_total"]))
    for name, value in zip(("corral_host_load1", "corral_host_load5", "corral_host_load15"), host["load"]):
        fam[name].append(({}, value))
    for path, mount in sorted(monitor.sampler.last_mounts.items()):
        fam["corral_filesystem_used_ratio"].append(({"mount": path}, round(mount["used"] / 100, 4)))
        fam["corral_filesystem_free_bytes"].append(({"mount": path}, mount["free"]))
        fam["corral_filesystem_size_bytes"].append(({"mount": path}, mount["size"]))


def loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers with lower-case names) of a request head; ValueError when it is none."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("not an HTTP/1 request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError("a malformed header")
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], headers


def answer(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8",
           extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra}\r\n")
    return head.encode("latin-1") + body


class Exporter:
    """The endpoint: bound to ``metrics_listen`` (``configure``), serving :func:`collect`."""

    def __init__(self, core: Core, monitor: Monitor | None = None) -> None:
        self.core = core
        self.monitor = monitor
        self.listen: str | None = None
        self.server: asyncio.AbstractServer | None = None
        self.clients = 0
        self.scrapes = 0
        self.refused = 0  # requests answered with an error (or connections closed: too many)
        self.alerts: dict[tuple[str, str], int] = {}
        self.deliveries: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sub = core.subscribe(Alert, AlertDelivery, name="prometheus")
        self._spawn(self._count())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self) -> None:
        async for event in self._sub:
            if isinstance(event, Alert):
                key = (event.alert_kind, event.severity)
                self.alerts[key] = self.alerts.get(key, 0) + 1
            elif isinstance(event, AlertDelivery) and event.outcome in ("delivered", "undelivered"):
                key = (event.sink, event.outcome)
                self.deliveries[key] = self.deliveries.get(key, 0) + 1

    def configure(self) -> None:
        """The settings changed (or the daemon starts): bind to a new ``metrics_listen``."""
        listen = self.core.settings().get("metrics_listen")
        if listen != self.listen:
            self.listen = listen
            self._spawn(self._bind(listen))

    async def _bind(self, listen: str | None) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if not listen:
            return
        if not loopback(listen) and not self.core.settings().get("metrics_token"):
            self._failed(listen, "not a loopback address and no metrics_token is set")
            return
        host, _, port = listen.rpartition(":")
        try:
            server = await asyncio.start_server(self._serve, host.strip("[]"), int(port), limit=MAX_HEAD,
                                                reuse_address=True)
        except (OSError, ValueError) as exc:
            self._failed(listen, getattr(exc, "strerror", None) or str(exc))
            return
        if self.listen != listen:  # changed again meanwhile
            server.close()
            return
        self.server = server
        log.info("metrics: serving GET /metrics on %s", listen)

    def _failed(self, listen: str, why: str) -> None:
        log.warning("metrics: cannot listen on %s: %s (no /metrics endpoint)", listen, why)
        self.core.publish(Note(app="", kind="metrics_listen_failed", message=f"cannot listen on {listen}: {why}",
                               data={"listen": listen, "error": why}))

    def close(self) -> None:
        self.listen = None
        if self.server is not None:
            self.server.close()
            self.server = None
        self._sub.close()
        for task in list(self._tasks):
            task.cancel()

    # -- one connection ----------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.clients >= MAX_CLIENTS:
            self.refused += 1
            writer.transport.abort()
            return
        self.clients += 1
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            except (asyncio.LimitOverrunError, ValueError):
                reply = self._error("431 Request Header Fields Too Large", "request head too large\n")
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                self.refused += 1
                return  # gone, or too slow: closed without an answer
            else:
                reply = self.respond(head)
            writer.write(reply)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except Exception as exc:  # a client's trouble never reaches the daemon
            log.debug("metrics: a connection failed: %r", exc)
        finally:
            self.clients -= 1
            writer.close()

    def _error(self, status: str, text: str, extra: str = "") -> bytes:
        self.refused += 1
        return answer(status, text.encode(), extra=extra)

    def respond(self, head: bytes) -> bytes:
        """The answer to one request head (its line and headers, through the blank line)."""
        try:
            method, path, headers = parse_head(head)
        except ValueError:
            return self._error("400 Bad Request", "bad request\n")
        if method != "GET" or path.split("?", 1)[0] != "/metrics":
            return self._error("404 Not Found", "only GET /metrics is served here\n")
        token = self.core.settings().get("metrics_token")
        if token:
            given = headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), str(token).encode()):
                return self._error("401 Unauthorized", "a bearer token is required\n",
                                   extra='WWW-Authenticate: Bearer realm="corral"\r\n')
        try:
            body = render(collect(self.core, self.monitor, self.alerts, self.deliveries)).encode()
        except Exception:
            log.exception("metrics: cannot render /metrics")
            return self._error("500 Internal Server Error", "cannot render the metrics (see daemon.log)\n")
        self.scrapes += 1
        return answer("200 OK", body, CONTENT_TYPE)

    def status(self) -> dict[str, Any]:
        return {"listen": self.listen, "serving": self.server is not None, "scrapes": self.scrapes,
                "refused": self.refused, "clients": self.clients}
