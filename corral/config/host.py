"""The daemon-wide settings of an ecosystem file (its top level) and the threshold converters.

::

    monitor_interval = "10s"
    thresholds = { memory_available = "25%", cpu = "80%", disk = "75%", process_memory = "2GB", samples = 2 }
    metrics_listen = "127.0.0.1:9615"
    metrics_token = "..."
    sweep_interval = "20m"
    [[sinks]] ...

:func:`to_host` turns the top-level keys a file gives into one ``host`` settings dict (only the
keys given: a file that names none changes nothing), :func:`host_errors` says what is wrong with
them, one line each.  The CLI sends the dict with ``start``; the daemon checks it again with
:func:`to_host` (it trusts nothing), stores it and hands it to features (``Core.settings()``).

Per-app ``thresholds`` (``cpu``, ``process_memory``, ``samples``, ``window``) and
``max_memory_restart`` use :func:`to_app_thresholds` and :func:`to_memory_limit`.
"""

from __future__ import annotations

import re
from typing import Any

from corral.config.convert import Invalid, render
from corral.units import parse_duration, parse_size

#: Top-level keys that are daemon-wide settings -> what they hold (for the unknown-key hint).
HOST_KEYS: dict[str, str] = {
    "monitor_interval": "how often apps and the host are sampled",
    "thresholds": "host-wide alert thresholds",
    "metrics_listen": "the Prometheus endpoint's address",
    "metrics_token": "the bearer token of the Prometheus endpoint",
    "sweep_interval": "how often the health sweep runs",
    "sinks": "where alerts go",
    "metrics_retention": "how long samples are kept: { raw = \"24h\", averaged = \"14d\" }",
    "maintenance": "false: no built-in cleanup, prune and disk jobs",
    "maintenance_tmp_patterns": "the temp files corral:cleanup-tmp removes (glob patterns)",
    "web": "the HTTP API and dashboard (the app corral-web): { listen = \"127.0.0.1:9616\", cert, key, "
           "insecure, allow_hosts }",
}
#: Host-wide thresholds: name -> (kind, default).  ``percent`` metrics are 0-100.
HOST_THRESHOLDS: dict[str, tuple[str, Any]] = {
    "memory_available": ("percent", 25.0),  # alert when available memory is AT OR BELOW this
    "cpu": ("percent", 80.0),  # host CPU, all cores
    "disk": ("percent", 75.0),  # each real mount
    "process_memory": ("size", 2 * 1024**3),  # one instance's process tree
    "samples": ("count", 2),
    "window": ("count", None),  # "N of M": samples over the line within this many (None: consecutive)
}
#: What an app's own ``thresholds`` may say (the others are host-wide).
APP_THRESHOLDS = ("cpu", "process_memory", "samples", "window")
MIN_INTERVAL = 0.2  # seconds: tests sample fast; anything below costs CPU for nothing
MAX_INTERVAL = 3600.0
MAX_SAMPLES = 100
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


def to_percent(value: Any) -> float:
    """``"80%"`` (or a number, 0-100) -> 80.0; ``"85 %"`` is refused (no space)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (match := _PERCENT.match(value.strip())):
        number = float(match.group(1))
    else:
        raise Invalid('is not a percentage (write it like "80%", no space)')
    if not 0 <= number <= 100:
        raise Invalid("is not a percentage from 0% to 100%")
    return number


def to_memory_limit(value: Any) -> int:
    """Bytes, as PM2 writes them: ``"300M"``, ``"300MB"``, ``"1G"``, ``"200K"``, a number of bytes."""
    try:
        size = parse_size(value)
    except ValueError:
        raise Invalid('is not a memory size (write it like "300M", "300MB" or "1G")') from None
    if size < 1024 * 1024:
        raise Invalid('is below 1 MiB (a memory size like "300M"; a bare number is bytes)')
    if size > 1 << 50:
        raise Invalid("is more memory than any machine has")
    return size


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SAMPLES:
        return value
    raise Invalid(f"is not a number of samples from 1 to {MAX_SAMPLES}")


def _threshold(name: str, value: Any) -> Any:
    kind = HOST_THRESHOLDS[name][0]
    if kind == "percent":
        return to_percent(value)
    if kind == "size":
        return to_memory_limit(value)
    return _count(value)


def _thresholds(value: Any, allowed: tuple[str, ...], elsewhere: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"is not a table of thresholds ({', '.join(allowed)})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in allowed:
            hint = elsewhere if key in HOST_THRESHOLDS else f"known: {', '.join(allowed)}"
            raise Invalid(f"unknown threshold ({hint})", suffix=f".{key}", show_value=False)
        try:
            out[key] = _threshold(key, item)
        except Invalid as exc:
            raise Invalid(exc.text, suffix=f".{key}", value=item) from None
    if out.get("window") is not None and out["window"] < out.get("samples", 1):
        raise Invalid("window is smaller than samples (N of M: samples = N, window = M)", show_value=False)
    return out


def to_host_thresholds(value: Any) -> dict[str, Any]:
    return _thresholds(value, tuple(HOST_THRESHOLDS), "")


def to_app_thresholds(value: Any) -> dict[str, Any]:
    """An app's own thresholds: ``cpu`` (each instance's tree, % of one core), ``process_memory``,
    ``samples``, ``window``; the others are host-wide (the file's top-level ``thresholds``)."""
    return _thresholds(value, APP_THRESHOLDS, "a host-wide threshold: set it in the file's top-level thresholds")


def to_interval(value: Any) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise Invalid('is not a duration (try "10s")') from None
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise Invalid(f"is not an interval from {MIN_INTERVAL:g}s to {MAX_INTERVAL / 60:g}m")
    return seconds


def to_listen(value: Any) -> str:
    if isinstance(value, str) and re.match(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$", value.strip()):
        return value.strip()
    raise Invalid('is not an address to listen on (write it like "127.0.0.1:9615")')


def to_token(value: Any) -> str:
    if isinstance(value, str) and 16 <= len(value) <= 256 and value.isprintable() and " " not in value:
        return value
    raise Invalid("is not a token (16 to 256 printable characters, no spaces)", show_value=False)


def to_sinks(value: Any) -> list[dict[str, Any]]:
    from corral.config import sinks  # each sink checked in full (loaded only for a file with [[sinks]])

    return list(sinks.to_sinks(value))


def to_retention(value: Any) -> dict[str, float]:
    """``{ raw = "24h", averaged = "14d" }``: raw samples, then 1-minute averages, kept this long."""
    if not isinstance(value, dict) or set(value) - {"raw", "averaged"}:
        raise Invalid('is not a retention table ({ raw = "24h", averaged = "14d" })')
    out = {}
    for key, item in value.items():
        try:
            seconds = parse_duration(item)
        except ValueError:
            raise Invalid('is not a duration (try "24h")', suffix=f".{key}", value=item) from None
        if not 60 <= seconds <= 366 * 86400:
            raise Invalid("is not from 1m to 366d", suffix=f".{key}", value=item)
        out[key] = seconds
    return out


def to_maintenance(value: Any) -> bool:
    from corral.config.convert import to_bool

    return to_bool(value)


def to_tmp_patterns(value: Any) -> list[str]:
    """Glob patterns of file and directory names (``"*.heapsnapshot"``), no ``/``."""
    if (isinstance(value, list) and len(value) <= 100
            and all(isinstance(p, str) and 0 < len(p) <= 200 and "/" not in p and p.isprintable() for p in value)):
        return list(value)
    raise Invalid('is not a list of name patterns (like ["*.heapsnapshot", "puppeteer_dev_profile-*"], no "/")')


WEB_KEYS = ("listen", "cert", "key", "insecure", "allow_hosts")


def to_web(value: Any) -> dict[str, Any]:
    """``web = { listen = "127.0.0.1:9616" }``; off loopback it needs ``cert`` and ``key`` (TLS), or
    ``insecure = true`` (tokens in the clear: ``corral validate`` warns)."""
    if not isinstance(value, dict) or set(value) - set(WEB_KEYS):
        raise Invalid(f'is not a web table ({{ listen = "127.0.0.1:9616" }}; keys: {", ".join(WEB_KEYS)})')
    out: dict[str, Any] = {"listen": to_listen(value.get("listen", "127.0.0.1:9616"))}
    for key in ("cert", "key"):
        if key in value:
            if not isinstance(value[key], str) or not value[key]:
                raise Invalid("is not a file path", suffix=f".{key}", value=value[key])
            out[key] = value[key]
    if ("cert" in out) != ("key" in out):
        raise Invalid("needs both cert and key (TLS)")
    if not isinstance(value.get("insecure", False), bool):
        raise Invalid("is not true or false", suffix=".insecure", value=value["insecure"])
    out["insecure"] = value.get("insecure", False)
    hosts = value.get("allow_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h and len(h) <= 253 for h in hosts):
        raise Invalid("is not a list of host names", suffix=".allow_hosts", value=hosts)
    out["allow_hosts"] = hosts
    if not _loopback(out["listen"]) and "cert" not in out and not out["insecure"]:
        raise Invalid(f"listens on {out['listen']}, not loopback: give cert and key (TLS), "
                      "or insecure = true to send tokens in the clear", show_value=False)
    return out


def host_warnings(doc: Any, where: str) -> list[str]:
    """What is allowed but risky: a web API off loopback in plain HTTP."""
    web = doc.get("web") if isinstance(doc, dict) else None
    if isinstance(web, dict) and web.get("insecure") is True and "cert" not in web:
        listen = web.get("listen", "127.0.0.1:9616")
        if isinstance(listen, str) and not _loopback(listen):
            return [f"{where}: web: insecure = true: tokens and cookies cross the network in the clear on {listen}"]
    return []


CONVERTERS = {"web": to_web, "maintenance": to_maintenance, "maintenance_tmp_patterns": to_tmp_patterns, "metrics_retention": to_retention, "monitor_interval": to_interval, "thresholds": to_host_thresholds, "metrics_listen": to_listen,
              "metrics_token": to_token, "sweep_interval": to_interval, "sinks": to_sinks}


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def to_host(doc: Any, where: str = "host") -> dict[str, Any]:
    """The daemon-wide settings of a document's top level (only the keys it gives), converted.
    Raises :class:`ValueError` with every problem, one line each (``where: key: value problem``)."""
    errors = host_errors(doc, where)
    if errors:
        raise ValueError("\n".join(errors))
    converted = {key: CONVERTERS[key](doc[key]) for key in HOST_KEYS if key in doc}
    if isinstance(doc, dict) and "jobs" in doc:  # normalized by the CLI (corral.config.jobs): checked again
        from corral.config.jobs import checked_jobs

        try:
            converted["jobs"] = checked_jobs(doc["jobs"])
        except Invalid as exc:
            raise ValueError(f"{where}: jobs{exc.suffix}: {exc.text}") from None
    if isinstance(doc, dict) and "jobs_env" in doc:  # the environment they start from, sent once
        from corral.config.jobs import checked_env

        try:
            converted["jobs_env"] = checked_env(doc["jobs_env"])
        except Invalid as exc:
            raise ValueError(f"{where}: jobs_env: {exc.text}") from None
    return converted


def host_errors(doc: Any, where: str) -> list[str]:
    if not isinstance(doc, dict):
        return []
    errors: list[str] = []
    for key in HOST_KEYS:
        if key not in doc:
            continue
        try:
            CONVERTERS[key](doc[key])
        except Invalid as exc:
            shown = exc.value if exc.suffix else doc[key]
            errors.append(f"{where}: {key}{exc.suffix}: " + (f"{render(shown)} {exc.text}" if exc.show_value
                                                              else exc.text))
    listen = doc.get("metrics_listen")
    if not errors and isinstance(listen, str) and not _loopback(listen) and not doc.get("metrics_token"):
        errors.append(f"{where}: metrics_listen: {render(listen)} is not a loopback address: "
                      "set metrics_token too (a bearer token the scraper sends)")
    return errors
