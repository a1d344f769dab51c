"""The alert sinks of an ecosystem file (the top-level ``[[sinks]]`` list), checked.

:func:`to_sinks` takes the raw list and returns one normalized dict per sink, or raises
:class:`~corral.config.convert.Invalid` naming the sink and the key (``suffix`` is
``[1].url``, so the caller's message reads ``sinks[1].url: "ftp://x" is not ...``)::

    [[sinks]]
    type = "webhook"            # webhook | email | command
    url = "https://hooks.example.com/services/T000/B000"
    format = "slack"            # slack | alertmanager | json
    min_severity = "warning"    # info | warning | critical

    [[sinks]]
    type = "email"
    to = ["ops@example.com"]
    from = "corral@example.com"
    smtp = "smtp.example.com:587"   # STARTTLS on 587, TLS on 465, plain only to a loopback host
    env_file = "/etc/corral/smtp.env"   # SMTP_USER, SMTP_PASSWORD (read at delivery, never shown)

    [[sinks]]
    type = "command"
    cmd = ["/usr/local/bin/page-me", "--team", "ops"]   # the alert as JSON on stdin

Normalized: every sink has ``type``, ``name`` (``webhook:hooks.example.com``, shown by
``corral alerts``; never a path or a secret) and ``min_severity``; webhook ``url``,
``format``; email ``to`` (a list), ``from``, ``host``, ``port``, ``security``
(``starttls`` | ``tls`` | ``plain``), ``env_file`` (or None); command ``cmd`` (an argv list).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from corral.config.convert import Invalid

__all__ = ["to_sinks", "SEVERITIES", "SINK_TYPES", "MAX_SINKS"]

SEVERITIES = ("info", "warning", "critical")
SINK_TYPES = ("webhook", "email", "command")
FORMATS = ("slack", "alertmanager", "json")
MAX_SINKS = 32
MAX_TEXT = 2000
KEYS: dict[str, tuple[str, ...]] = {
    "webhook": ("type", "url", "format", "min_severity", "name"),
    "email": ("type", "to", "from", "smtp", "env_file", "min_severity", "name"),
    "command": ("type", "cmd", "min_severity", "name"),
}
REQUIRED: dict[str, tuple[str, ...]] = {"webhook": ("url",), "email": ("to", "from", "smtp"), "command": ("cmd",)}
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")


def to_sinks(value: Any) -> list[dict[str, Any]]:
    """The checked list of sinks (see the module docstring); an empty list is no sinks."""
    if value is None:
        return []
    if isinstance(value, dict):  # one sink written as a table
        value = [value]
    if not isinstance(value, list):
        raise Invalid('is not a list of sinks (in TOML: [[sinks]] tables with type = "webhook", "email" or '
                      '"command")')
    if len(value) > MAX_SINKS:
        raise Invalid(f"has {len(value)} sinks (at most {MAX_SINKS})", show_value=False)
    sinks = [_sink(raw, index) for index, raw in enumerate(value)]
    names: dict[str, int] = {}
    for index, sink in enumerate(sinks):
        if sink["name"] in names and "name" in value[index]:
            raise Invalid(f"is already the name of sinks[{names[sink['name']]}] (give each sink its own name)",
                          suffix=f"[{index}].name", value=sink["name"])
        if sink["name"] in names:  # two sinks to one host: the second is "webhook:host#2"
            sink["name"] = f"{sink['name']}#{index + 1}"
        names[sink["name"]] = index
    return sinks


def _sink(raw: Any, index: int) -> dict[str, Any]:
    at = f"[{index}]"
    if not isinstance(raw, dict):
        raise Invalid('is not a sink (a table with type = "webhook", "email" or "command")', suffix=at, value=raw)
    kind = raw.get("type")
    if kind not in SINK_TYPES:
        raise Invalid('is not a sink type (use "webhook", "email" or "command")', suffix=f"{at}.type", value=kind)
    for key in raw:
        if key not in KEYS[kind]:
            raise Invalid(f"is not a key of a {kind} sink (it takes {', '.join(KEYS[kind])})",
                          suffix=f"{at}.{_key(key)}", value=raw[key])
    for key in REQUIRED[kind]:
        if raw.get(key) is None:
            raise Invalid(f"has no {key} (a {kind} sink needs {', '.join(REQUIRED[kind])})", suffix=at, value=raw)
    sink: dict[str, Any] = {"type": kind, "min_severity": _severity(raw.get("min_severity", "warning"), at)}
    try:
        sink.update(_PARTS[kind](raw))
    except Invalid as exc:
        raise Invalid(exc.text, show_value=exc.show_value, suffix=at + exc.suffix, value=exc.value) from None
    sink["name"] = _name(raw.get("name"), at) if raw.get("name") is not None else sink.pop("_name")
    sink.pop("_name", None)
    return sink


def _key(key: Any) -> str:
    text = str(key)
    return text if text.isprintable() and len(text) <= 40 else repr(text[:40])


def _severity(value: Any, at: str) -> str:
    if value not in SEVERITIES:
        raise Invalid('is not a severity (use "info", "warning" or "critical")', suffix=f"{at}.min_severity",
                      value=value)
    return str(value)


def _name(value: Any, at: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}", value):
        raise Invalid('is not a sink name (1-64 letters, digits, "_", ".", ":", "@" or "-")', suffix=f"{at}.name",
                      value=value)
    return value


def _text(value: Any, key: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or "\0" in value \
            or any(c in value for c in "\r\n"):
        raise Invalid(f"is not {what}", suffix=f".{key}", value=value)
    return value


def _webhook(raw: dict[str, Any]) -> dict[str, Any]:
    url = _text(raw["url"], "url", "a URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("is not an http(s) URL (a webhook is posted to http:// or https://host/...)",
                      suffix=".url", value=_safe_url(url))
    fmt = raw.get("format", "slack")
    if fmt not in FORMATS:
        raise Invalid('is not a webhook format (use "slack", "alertmanager" or "json")', suffix=".format", value=fmt)
    return {"url": url, "format": fmt, "_name": f"webhook:{parts.hostname}"}


def _safe_url(url: str) -> str:
    """A URL as shown in a message: without a password in it."""
    parts = urlsplit(url)
    if parts.password is not None:
        return url.replace(parts.password, "********", 1)
    return url


def _email(raw: dict[str, Any]) -> dict[str, Any]:
    to = raw["to"]
    to_list = [to] if isinstance(to, str) else to
    if not isinstance(to_list, list) or not to_list or len(to_list) > 50:
        raise Invalid("is not a list of email addresses (1 to 50)", suffix=".to", value=to)
    for i, address in enumerate(to_list):
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise Invalid("is not an email address (user@host)", suffix=f".to[{i}]", value=address)
    sender = raw["from"]
    if not isinstance(sender, str) or not _ADDRESS.match(sender):
        raise Invalid("is not an email address (user@host)", suffix=".from", value=sender)
    host, port = _smtp(raw["smtp"])
    security = {587: "starttls", 465: "tls"}.get(port, "plain")
    if security == "plain" and not _loopback(host):
        raise Invalid(f"is plain SMTP to {host}, which is not a loopback host (use port 587 for STARTTLS or 465 "
                      "for TLS; plain SMTP only to 127.0.0.1, ::1 or localhost)", suffix=".smtp", value=raw["smtp"])
    env_file = raw.get("env_file")
    if env_file is not None:
        env_file = _text(env_file, "env_file", "a path to a file of SMTP_USER=... and SMTP_PASSWORD=... lines")
    return {"to": list(to_list), "from": sender, "host": host, "port": port, "security": security,
            "env_file": env_file, "_name": f"email:{to_list[0]}"}


def _smtp(value: Any) -> tuple[str, int]:
    text = _text(value, "smtp", "an SMTP server (host:port, e.g. smtp.example.com:587)")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not _HOST.match(host):
        raise Invalid("is not an SMTP server (host:port, e.g. smtp.example.com:587)", suffix=".smtp", value=value)
    return host.strip("[]"), int(port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _command(raw: dict[str, Any]) -> dict[str, Any]:
    cmd = raw["cmd"]
    if isinstance(cmd, str):
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise Invalid(f"is not a command line ({exc})", suffix=".cmd", value=cmd) from None
    else:
        argv = cmd
    if not isinstance(argv, list) or not argv or len(argv) > 256 or \
            not all(isinstance(a, str) and a and "\0" not in a and len(a) <= MAX_TEXT for a in argv):
        raise Invalid("is not a command (an argv list of strings, or a command line)", suffix=".cmd", value=cmd)
    return {"cmd": list(argv), "_name": f"command:{argv[0].rsplit('/', 1)[-1]}"}


_PARTS = {"webhook": _webhook, "email": _email, "command": _command}
