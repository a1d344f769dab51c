"""Apps' log lines for ``/api/logs``, read as ``corral logs`` reads them: the last lines, and with
``follow`` the new ones as they are written (across rotations), as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncGenerator, Callable

from corral.cli.logs import Source, labels
from corral.web.httpd import HTTPError

MAX_PATTERN = 500
FOLLOW_POLL = 0.25  # seconds between looks at the files while following
MAX_BATCH = 2000  # lines in one look (a flood is sent in slices, never held whole)


def keep_filter(grep: str) -> Callable[[bytes], bool]:
    """Lines containing GREP (plain text, any case: no pattern a caller could make slow)."""
    if len(grep) > MAX_PATTERN:
        raise HTTPError(400, f"logs: grep: at most {MAX_PATTERN} characters")
    if not grep:
        return lambda line: True
    pattern = re.compile(re.escape(grep.encode()), re.IGNORECASE)
    return lambda line: pattern.search(line) is not None


def _row(entry: dict[str, Any], line: bytes) -> dict[str, Any]:
    return {"app": entry["app"], "instance": entry["instance"], "stream": entry["stream"],
            "line": line.decode("utf-8", "replace")}


def _open(entries: list[dict[str, Any]], count: int, keep: Callable[[bytes], bool]) -> tuple[list[Source], list[dict[str, Any]]]:
    sources = [Source(entry, label) for entry, label in zip(entries, labels(entries))]
    rows = [_row(src.entry, line) for src in sources for line in src.last(count, keep, None)]
    return sources, rows


def last_lines(entries: list[dict[str, Any]], count: int, grep: str) -> list[dict[str, Any]]:
    """Each file's last COUNT lines containing GREP."""
    sources, rows = _open(entries, count, keep_filter(grep))
    for src in sources:
        src.close()
    return rows


def _new(sources: list[Source], keep: Callable[[bytes], bool]) -> list[dict[str, Any]]:
    return [_row(src.entry, line) for src in sources for line in src.new_lines() if keep(line)]


async def follow(entries: list[dict[str, Any]], count: int, grep: str) -> AsyncGenerator[bytes, None]:
    """SSE: ``line`` events, the last COUNT lines first, then each new one."""
    keep = keep_filter(grep)
    sources, rows = await asyncio.to_thread(_open, entries, count, keep)
    try:
        yield b"retry: 2000\n\n"
        while True:
            for start in range(0, len(rows), MAX_BATCH):
                yield b"".join(b"event: line\ndata: " + json.dumps(row, separators=(",", ":")).encode() + b"\n\n"
                               for row in rows[start:start + MAX_BATCH])
            await asyncio.sleep(FOLLOW_POLL)
            rows = await asyncio.to_thread(_new, sources, keep)
    finally:
        for src in sources:
            src.close()
