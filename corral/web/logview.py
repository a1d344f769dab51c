"""The last lines of apps' log files for ``/api/logs`` (read as ``corral logs`` reads them)."""

from __future__ import annotations

import re
from typing import Any

from corral.cli.logs import Source, labels
from corral.web.httpd import HTTPError

MAX_PATTERN = 500


def last_lines(entries: list[dict[str, Any]], count: int, grep: str) -> list[dict[str, Any]]:
    """Each file's last COUNT lines containing GREP (plain text, any case: no pattern a caller
    could make slow)."""
    if len(grep) > MAX_PATTERN:
        raise HTTPError(400, f"logs: grep: at most {MAX_PATTERN} characters")
    pattern = re.compile(re.escape(grep.encode()), re.IGNORECASE) if grep else None
    out: list[dict[str, Any]] = []
    for entry, label in zip(entries, labels(entries)):
        src = Source(entry, label)
        try:
            found = src.last(count, (lambda line: pattern.search(line) is not None) if pattern else (lambda line: True),
                             None)
        finally:
            src.close()
        out += [{"app": entry["app"], "instance": entry["instance"], "stream": entry["stream"],
                 "line": line.decode("utf-8", "replace")} for line in found]
    return out
