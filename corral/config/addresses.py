"""Listen addresses: ``tcp://host:port`` and ``unix:/path``.  Standard library only: the daemon
imports this without the config converters."""

from __future__ import annotations


def parse_listen(text: str) -> tuple[str, str, int | str]:
    """``tcp://host:port`` -> ("tcp", host, port); ``unix:/path`` -> ("unix", "", path)."""
    if text.startswith("unix:"):
        path = text[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError("no path")
        return "unix", "", path
    if text.startswith("tcp://"):
        rest = text[6:]
    elif text.startswith(":") or text.replace(".", "").replace(":", "").isdigit():
        rest = text
    else:
        raise ValueError("unknown scheme")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("no port")
    host = host.strip("[]") or "0.0.0.0"
    return "tcp", host, int(port)
