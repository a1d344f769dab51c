"""``corral logs`` and ``corral flush``: the CLI reads and follows the log files itself.

The daemon only says which files belong to which app (the ``log_paths`` operation); reading the
last lines, filtering (``--grep``, ``--since``) and following happen here, so the daemon never
streams logs.  ``--lines N`` reads the files backwards by blocks (and the newest rotated files,
gzipped or not, when the current one has fewer lines); ``--follow`` works like ``tail -F``: when
the file's inode changes (a rotation) it reads what is left of the old file, then the new one
from its start; when the file shrinks (``corral flush``) it starts again from the beginning.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime
from typing import Any, Callable, Iterator

from corral.cli.main import UsageError
from corral.cli.render import ESCAPES, clean
from corral.control.client import Client

BLOCK = 64 * 1024
#: Log files are read as the daemon writes them: never through a link, never blocking on a FIFO.
READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
FOLLOW_POLL = 0.1
_ISO = re.compile(rb"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) ?")


# -- reading --------------------------------------------------------------------------------------
def backwards(path: str, end: int | None = None, fd: int | None = None) -> Iterator[bytes]:
    """The lines of a file, newest first, without their newlines (``end``: read up to this offset;
    ``fd``: read this open file rather than opening ``path``).  A ``.gz`` file is decompressed
    whole (rotated files are bounded by ``log_max_size``)."""
    if path.endswith(".gz"):
        import gzip

        try:
            with open(os.open(path, READ), "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as f:
                data = f.read()
        except (OSError, EOFError):
            return
        yield from reversed(data.splitlines())
        return
    own = fd is None
    if fd is None:
        try:
            fd = os.open(path, READ)
        except OSError:
            return
    try:
        pos = os.fstat(fd).st_size if end is None else end
        rest, first = b"", True
        while pos > 0:
            size = min(BLOCK, pos)
            pos -= size
            block = os.pread(fd, size, pos) + rest
            lines = block.split(b"\n")
            rest = lines.pop(0)
            if first and lines and not lines[-1]:
                lines.pop()  # the empty string after the file's last newline
            first = False
            yield from reversed(lines)
        if rest:
            yield rest
    finally:
        if own:
            os.close(fd)


def line_time(line: bytes, json_type: bool) -> float | None:
    """The unix time of a log line's timestamp (ISO prefix, or ``ts`` in JSON), if it has one."""
    text: Any = None
    if json_type and line.startswith(b"{"):
        try:
            text = json.loads(line).get("ts")
        except (ValueError, AttributeError):
            return None
    else:
        m = _ISO.match(line)
        text = m.group(1).decode() if m else None
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace(",", ".")).timestamp()
    except ValueError:
        return None


def parse_since(text: str | None, now: float) -> float | None:
    """``--since``: a duration back from now (``10m``, ``2h``, ``1d``) or an ISO date/time."""
    if not text:
        return None
    from corral.units import parse_duration

    shown = text if len(text) <= 40 else text[:37] + "..."
    if re.fullmatch(r"\s*(\d+(\.\d*)?\s*(ms|s|m|h|d)\s*)+", text, re.IGNORECASE):
        try:
            return max(0.0, now - parse_duration(text))  # further back than 1970: everything
        except ValueError:
            raise UsageError(f'--since: "{shown}" is too long a duration (like 10m, 2h, 1d)') from None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        raise UsageError(f'--since: "{shown}" is not a duration (like 10m, 2h, 1d) or a date '
                         "(like 2026-11-22T05:40)") from None


class Source:
    """One log file and how its lines are shown."""

    def __init__(self, entry: dict[str, Any], label: str) -> None:
        self.path: str = entry["path"]
        self.entry = entry
        self.label = label
        self.json_type = entry.get("log_type") == "json"
        self.fd: int | None = None
        self.ino = 0
        self.pos = 0
        self.partial = b""

    def last(self, count: int, keep: Callable[[bytes], bool], since: float | None) -> list[bytes]:
        """The last ``count`` kept lines (oldest first); ``since`` stops at the first older line.
        Also opens the file for following, at the offset the lines were read up to."""
        self._open(at_end=True)
        found: list[bytes] = []
        if count <= 0:
            return found
        readers = [backwards(self.path, self.pos, self.fd)] if self.fd is not None else []
        for rotated in reversed(_rotated(self.path)):
            try:
                if os.stat(rotated.path).st_ino == self.ino:
                    continue  # the file we hold open, rotated since we opened it
            except OSError:
                continue
            readers.append(backwards(rotated.path))
        for reader in readers:
            for line in reader:
                if since is not None:
                    ts = line_time(line, self.json_type)
                    if ts is not None and ts < since:
                        return found[::-1]
                if keep(line):
                    found.append(line)
                    if len(found) >= count:
                        return found[::-1]
        return found[::-1]

    def _open(self, at_end: bool) -> None:
        self.close()
        try:
            self.fd = os.open(self.path, READ)
        except OSError:
            self.fd, self.ino, self.pos = None, 0, 0
            return
        st = os.fstat(self.fd)
        self.ino = st.st_ino
        self.pos = st.st_size if at_end else 0
        self.partial = b""
        if self.pos:  # end at the last newline: a line being written is shown whole, when followed
            tail = os.pread(self.fd, min(self.pos, BLOCK), self.pos - min(self.pos, BLOCK))
            self.pos -= len(tail) - (tail.rfind(b"\n") + 1) if b"\n" in tail else 0

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def new_lines(self) -> list[bytes]:
        """Complete lines written since the last call (following rotations and truncations)."""
        if self.fd is None:
            self._open(at_end=False)
            if self.fd is None:
                return []
        data = self._read_more()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._split(data)  # between a rotation's rename and reopen: next time
        if st.st_ino != self.ino:
            data += self._read_more()  # what the writer added to the old file before it moved
            lines = self._split(data + (b"\n" if self.partial else b""))
            old = self.ino
            self._open(at_end=False)  # first: a file rotated after this is the one we read next
            for path in self._rotated_between(old, self.ino):  # rotated more than once since the last poll
                lines += list(reversed(list(backwards(path))))
            return lines + self._split(self._read_more())
        if st.st_size < self.pos:  # flushed (truncated): start again
            self.pos, self.partial = 0, b""
            return self._split(data) + self._split(self._read_more())
        return self._split(data)

    def _rotated_between(self, old: int, new: int) -> list[str]:
        """The rotated files newer than the one we were reading (inode OLD) and older than the
        one we opened now (inode NEW; it may itself be rotated already)."""
        rotated = _rotated(self.path)
        inodes = []
        for f in rotated:
            try:
                inodes.append(os.stat(f.path).st_ino)
            except OSError:
                inodes.append(0)
        if old not in inodes:
            return []
        end = inodes.index(new) if new in inodes else len(rotated)
        return [f.path for f in rotated[inodes.index(old) + 1 : end]]

    def _read_more(self) -> bytes:
        chunks: list[bytes] = []
        assert self.fd is not None
        while True:
            chunk = os.pread(self.fd, 1 << 20, self.pos)
            if not chunk:
                return b"".join(chunks)
            self.pos += len(chunk)
            chunks.append(chunk)

    def _split(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return lines


def _rotated(path: str) -> list[Any]:
    from corral.logs.rotation import rotated_files

    return rotated_files(path)


# -- showing --------------------------------------------------------------------------------------
def labels(entries: list[dict[str, Any]]) -> list[str]:
    multi = {e["app"] for e in entries if e["instance"] not in (None, 0)}
    out = []
    for e in entries:
        name = e["app"] if e["app"] not in multi else f"{e['app']}[{e['instance']}]"
        out.append(name if e["stream"] == "both" else f"{name} {e['stream']}")
    return out


_SGR = re.compile(r"\x1b\[[0-9;:]*m")  # colours and text attributes: shown as written
_LINE_ESCAPES = {c: e for c, e in ESCAPES.items() if c != 0x09}  # a tab stays a tab


def clean_line(text: str) -> str:
    """A log line safe on a terminal: control characters escaped as in ``render.clean``, except
    tabs and colour (SGR) sequences, kept so colourful logs stay colourful."""
    if text.isprintable():
        return text
    if "\x1b" not in text:
        return text.translate(_LINE_ESCAPES)
    out, last = [], 0
    for m in _SGR.finditer(text):
        out += [text[last:m.start()].translate(_LINE_ESCAPES), m[0]]
        last = m.end()
    out.append(text[last:].translate(_LINE_ESCAPES))
    return "".join(out)


def as_json(src: Source, line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    if src.json_type and text.startswith("{"):
        return text
    m = _ISO.match(line)
    ts = m.group(1).decode() if m else None
    message = text[m.end():] if m else text
    return json.dumps({"ts": ts, "app": src.entry["app"], "instance": src.entry["instance"],
                       "stream": src.entry["stream"], "message": message}, ensure_ascii=False)


def printer(mode: str, colour: bool) -> Callable[[Source, bytes], None]:
    out = sys.stdout

    def show(src: Source, line: bytes) -> None:
        if mode == "json":
            out.write(as_json(src, line) + "\n")
            return
        text = line.decode("utf-8", "replace")
        if mode == "raw":  # the lines exactly as written, like cat
            out.write(text + "\n")
            return
        label = clean(src.label)
        text = clean_line(text)
        if colour:
            label = f"\x1b[{'31' if src.entry['stream'] == 'err' else '36'}m{label}\x1b[0m"
        out.write(f"{label} | {text}\n")

    return show


def cmd_logs(args: Any) -> int:
    since = parse_since(args.since, time.time())
    try:  # the bytes typed, even those that are not UTF-8 (log lines are searched as bytes)
        pattern = re.compile(os.fsencode(args.grep)) if args.grep else None
    except re.error as exc:
        raise UsageError(f"--grep: not a regular expression ({exc})") from None
    except (RecursionError, OverflowError, ValueError):
        raise UsageError("--grep: not a regular expression (nested too deeply or too large)") from None
    if args.lines < 0:
        raise UsageError("--lines: use a number >= 0")
    client = Client()
    if client.remote is not None:  # another host: its API reads the files
        return _remote_logs(client, args)
    entries = client.call("log_paths", {"target": args.target})
    if args.out or args.err:
        wanted = {"out" if args.out else "err", "both"}
        entries = [e for e in entries if e["stream"] in wanted]
    if not entries:
        print("no log files (no apps yet)", file=sys.stderr)
        return 0
    sources = [Source(e, label) for e, label in zip(entries, labels(entries))]
    keep: Callable[[bytes], bool] = (lambda line: pattern.search(line) is not None) if pattern else (lambda line: True)
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    show = printer("json" if args.json else "raw" if args.raw else "label", colour)
    for src in sources:
        for line in src.last(args.lines, keep, since):
            show(src, line)
    sys.stdout.flush()
    if args.follow:
        follow(sources, keep, show)
    return 0


def _remote_logs(client: Client, args: Any) -> int:
    stream = "out" if args.out and not args.err else "err" if args.err and not args.out else ""
    remote = client.remote
    rows = (remote.follow_logs if args.follow else remote.logs)(args.target, args.lines, args.grep or "", stream)
    for row in rows:
        text = row["line"]
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(clean_line(text) if args.raw else f"{clean(row['app'])} {row['stream']} | {clean_line(text)}",
                  flush=args.follow)
    return 0


def follow(sources: list[Source], keep: Callable[[bytes], bool], show: Callable[[Source, bytes], None]) -> None:
    """Print new lines as they are written, until interrupted."""
    while True:
        printed = False
        for src in sources:
            for line in src.new_lines():
                if keep(line):
                    show(src, line)
                    printed = True
        if printed:
            sys.stdout.flush()
        else:
            time.sleep(FOLLOW_POLL)


def cmd_flush(args: Any) -> int:
    result = Client().call("flush", {"target": args.target})
    files = result["files"]
    print(f"flushed {len(files)} file(s)" + "".join(f"\n  {p}" for p in files))
    return 0
