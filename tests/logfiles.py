"""Helpers for tests that read corral's log files: timestamps, rotated files, all lines in order."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from corral.logs.rotation import rotated_files

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")


def unstamped(text: str) -> list[str]:
    """The lines of a log, each checked for its timestamp and returned without it."""
    lines = text.splitlines()
    bad = [line for line in lines if not STAMP.match(line)]
    assert not bad, f"lines without a timestamp: {bad[:3]}"
    return [STAMP.sub("", line, count=1) for line in lines]


def log_path(home: str, name: str, stream: str = "out") -> Path:
    return Path(home) / "logs" / f"{name}-{'out' if stream == 'out' else 'error'}.log"


def read_any(path: str | Path) -> str:
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def all_text(path: str | Path) -> str:
    """The rotated files of ``path`` (oldest first, gzipped or not) then ``path`` itself."""
    parts = [read_any(f.path) for f in rotated_files(str(path))]
    if Path(path).exists():
        parts.append(read_any(path))
    return "".join(parts)


def rotated_count(path: str | Path) -> int:
    return len(rotated_files(str(path)))
