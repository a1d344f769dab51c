"""Converters for cluster settings: listen addresses, readiness, watchdog, dependencies, reload.

Kept apart from :mod:`corral.config.convert` because they belong to one concept
(running N instances behind shared sockets), declared in :mod:`corral.config.fields`.
"""

from __future__ import annotations

from typing import Any

from corral.config import limits
from corral.config.addresses import parse_listen
from corral.config.convert import Invalid, to_cmd, to_duration, to_name

LISTEN_HINT = '(use "tcp://127.0.0.1:8000", "tcp://[::1]:8000", "unix:/path/app.sock", or a list of them)'


def _one_listen(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    if limits.text_problem(value) is not None or len(value) > limits.PATH_MAX:
        raise ValueError("not text")
    kind, host, where = parse_listen(value.strip())
    if kind == "unix":
        size = len(str(where).encode("utf-8", "surrogateescape"))
        if size > limits.MAX_SOCKET_PATH:
            raise Invalid(f"is a unix socket path of {size} bytes (at most {limits.MAX_SOCKET_PATH}: the kernel's "
                          "limit; use a shorter path)")
        return f"unix:{where}"
    return f"tcp://[{host}]:{where}" if ":" in host else f"tcp://{host}:{where}"


def to_listen(value: Any) -> list[str]:
    """One address or a list of them, normalized (``tcp://host:port`` or ``unix:/path``)."""
    items = value if isinstance(value, list) else [value]
    if len(items) > limits.MAX_LIST:
        raise Invalid(f"is not a listen address {LISTEN_HINT}")
    try:
        return [_one_listen(item) for item in items]
    except ValueError:
        raise Invalid(f"is not a listen address {LISTEN_HINT}") from None


MIN_PROBE_SECONDS = 0.01
READY_HINT = ('(use "notify", { http = "/healthz" }, { tcp = true }, or { cmd = ["check"] }, '
              'with optional status, interval and timeout)')


def to_ready(value: Any) -> dict[str, Any]:
    """Readiness: ``"notify"`` or a probe table ``{http|tcp|cmd, status, interval, timeout}``."""
    if value == "notify":
        return {"kind": "notify"}
    if not isinstance(value, dict):
        raise Invalid(f"is not a readiness setting {READY_HINT}")
    kinds = [k for k in ("http", "tcp", "cmd") if k in value]
    unknown = set(value) - {"http", "tcp", "cmd", "status", "interval", "timeout", "host", "port"}
    if len(kinds) != 1 or unknown:
        raise Invalid(f"is not a readiness setting {READY_HINT}")
    kind = kinds[0]
    probe: dict[str, Any] = {"kind": kind, "interval": 0.1, "timeout": 2.0}
    for key in ("interval", "timeout"):
        if key in value:
            probe[key] = to_duration(value[key])
            if probe[key] < MIN_PROBE_SECONDS:
                raise Invalid(f"is not a readiness setting: {key} takes a duration of at least 10ms")
    if kind == "http":
        path = value["http"]
        if not isinstance(path, str) or not path.startswith("/") or not path.isprintable() or len(path) > 4096:
            raise Invalid(f"is not a readiness setting: http takes a path like \"/healthz\" {READY_HINT}")
        probe["path"] = path
        status = value.get("status", 200)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise Invalid("is not a readiness setting: status takes an HTTP status like 200")
        probe["status"] = status
    elif kind == "cmd":
        probe["cmd"] = to_cmd(value["cmd"])
    else:
        probe["address"] = None if value["tcp"] is True else _probe_address(value["tcp"])
    _probe_host_port(value, probe)
    return probe


TCP_HINT = 'is not a readiness setting: tcp takes true (the app\'s listen address) or "host:port"'


def _probe_address(value: Any) -> str:
    """``"host:port"`` (or ``tcp://host:port``, ``unix:/path``), normalized as a listen address."""
    if not isinstance(value, str):
        raise Invalid(TCP_HINT)
    text = value.strip()
    try:
        return _one_listen(text if text.startswith(("tcp://", "unix:")) else f"tcp://{text}")
    except ValueError:
        raise Invalid(TCP_HINT) from None


def _probe_host_port(value: dict[str, Any], probe: dict[str, Any]) -> None:
    """A probe's own ``port`` (1-65535) and ``host`` (default 127.0.0.1), checked now rather than
    failing at every probe."""
    if "port" in value:
        port = value["port"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise Invalid("is not a readiness setting: port takes a TCP port like 8000")
        probe["port"] = port
    if "host" in value:
        host = value["host"]
        if not isinstance(host, str) or not host.strip() or not host.isprintable() or len(host) > 255:
            raise Invalid('is not a readiness setting: host takes a host name or address like "127.0.0.1"')
        probe["host"] = host.strip()


def to_depends(value: Any) -> list[str]:
    """A list of app names (one name is a one-element list)."""
    items = value if isinstance(value, list) else [value]
    try:
        if len(items) > limits.MAX_LIST:
            raise Invalid("too many")
        return [to_name(item) for item in items]
    except Invalid:
        raise Invalid("is not a list of app names (use [\"db\", \"cache\"])") from None


def to_reload_mode(value: Any) -> str:
    if value in ("rolling", "restart"):
        return str(value)
    raise Invalid('is not a reload mode (use "rolling" or "restart")')


def to_exec_mode(value: Any) -> str:
    """PM2's ``exec_mode``: ``"fork"`` or ``"cluster"`` (PM2's own spellings ``"fork_mode"`` and
    ``"cluster_mode"`` too)."""
    if isinstance(value, str):
        text = value.strip().lower()
        text = text[:-5] if text.endswith("_mode") else text
        if text in ("fork", "cluster"):
            return text
    raise Invalid('is not an exec mode (use "cluster" or "fork")')


def to_env_name(value: Any) -> str:
    if isinstance(value, str) and value and len(value) <= 256 and (value[0].isalpha() or value[0] == "_") and \
            all(c.isalnum() or c == "_" for c in value):
        return value
    raise Invalid('is not an environment variable name (like "PORT")')



HEALTH_HINT = '(use { http = "/healthz" }, { tcp = true } or { cmd = ["check"] }, with interval, timeout, failures, start_period)'
HEALTH_DEFAULTS = {"interval": 10.0, "timeout": 2.0, "failures": 3, "start_period": 30.0}


def to_health(value: Any) -> dict[str, Any]:
    """Liveness: a probe like ``ready``'s plus ``failures`` (consecutive, 1-100, default 3) and
    ``start_period`` (failures in it do not count; default 30 s); interval 10 s, timeout 2 s."""
    if not isinstance(value, dict):
        raise Invalid(f"is not a liveness setting {HEALTH_HINT}")
    own = {k: v for k, v in value.items() if k not in ("failures", "start_period")}
    try:
        probe = to_ready(own) if own.keys() & {"http", "tcp", "cmd"} else None
    except Invalid as exc:
        raise Invalid(str(exc).replace("readiness setting", "liveness setting")
                      .replace(READY_HINT, HEALTH_HINT)) from None
    if probe is None or probe["kind"] == "notify":
        raise Invalid(f"is not a liveness setting {HEALTH_HINT}")
    for key in ("interval", "timeout"):
        if key not in own:
            probe[key] = HEALTH_DEFAULTS[key]
    failures = value.get("failures", HEALTH_DEFAULTS["failures"])
    if not isinstance(failures, int) or isinstance(failures, bool) or not 1 <= failures <= 100:
        raise Invalid("is not a liveness setting: failures takes a count from 1 to 100")
    probe["failures"] = failures
    start = to_duration(value["start_period"]) if "start_period" in value else HEALTH_DEFAULTS["start_period"]
    if start < 0:
        raise Invalid("is not a liveness setting: start_period takes a duration")
    probe["start_period"] = start
    return probe
