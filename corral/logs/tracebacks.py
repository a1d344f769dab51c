"""Crash reports: the last Python traceback or Node error stack in a stderr tail (spec E2).

:func:`parse_crash` takes the last lines a dead instance wrote to stderr and returns::

    {"language": "python" | "node", "exc_type": str, "message": str, "code": str | None,
     "classification": "code_bug" | "user_error" | "external",
     "frames": [...],      # the innermost few frame lines (Python: last "File" lines; Node: first "at")
     "traceback": [...]}   # the lines of that traceback or stack

or None when the tail holds neither. Python: the last top-level ``Traceback (most recent call
last):`` (for chained exceptions that is the final one; ``traceback`` keeps the whole chain) or
``Exception Group Traceback`` (classified by its leaf exceptions: code bug if any is one, else
external if any is, else user error). ``sys.exit("msg")`` and ``raise SystemExit`` print no
traceback, so they give None. Node: an ``Name: message`` / ``Name [CODE]: message`` /
``Uncaught Name: message`` line followed by ``    at`` frames or preceded by the ``^`` marker,
with the ``{ code: 'ECONNREFUSED', ... }`` property block and ``[cause]`` read for the
classification; a thrown non-Error (``throw "x"``) is reported as ``Uncaught``. Lines may start
with an ISO-8601 timestamp (as corral's log files write them): it is stripped first.
"""

from __future__ import annotations

import re
from typing import Any

from corral.app.errors import CODE_BUG, EXTERNAL, USER_ERROR, classify_name

__all__ = ["parse_crash", "TIMESTAMP_PREFIX"]

#: The default prefix stripped from each line: an ISO-8601 timestamp and one space.
TIMESTAMP_PREFIX = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)? ?")
_DEFAULT: Any = object()
_MAX_TRACEBACK = 200
_FRAMES = 5

_PY_HEADER = re.compile(r"^Traceback \(most recent call last\):\s*$")
_PY_GROUP_HEADER = re.compile(r"^  \+ Exception Group Traceback \(most recent call last\):\s*$")
_PY_CHAIN = re.compile(r"^(?:The above exception was the direct cause of the following exception:"
                       r"|During handling of the above exception, another exception occurred:)\s*$")
_PY_EXC_LINE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?::[ ]?(?P<msg>.*))?$")
_BOX = re.compile(r"^\s*\| ?")
_PY_FILE = re.compile(r'^  File "[^"]*", line \d+')

_NODE_HEADER = re.compile(
    r"^(?:(?:> )*Uncaught\s+)?(?P<name>[A-Za-z_$][\w$]*(?:\.[\w$]+)*)(?: \[(?P<tag>[\w$]+)\])?: (?P<msg>.*)$")
_NODE_BRACKET = re.compile(r"^\[(?P<name>[A-Za-z_$][\w$]*): (?P<msg>.*)\](?: \{)?$")
_NODE_AT = re.compile(r"^\s+at \S")
_NODE_CARET = re.compile(r"^\s*\^+\s*$")
_NODE_PROP = re.compile(r"^  (?P<key>code|syscall|statusCode|status): '?(?P<value>[^',]*)'?,?$")
_NODE_STATUS = re.compile(r"\bstatusCode: (\d{3})\b")
_NODE_CAUSE = re.compile(r"^  \[cause\]: (?P<name>[A-Za-z_$][\w$]*)(?: \[(?P<tag>[\w$]+)\])?: (?P<msg>.*)$")
_NODE_CAUSE_CODE = re.compile(r"^    code: '(?P<code>[^']*)'")


def parse_crash(stderr_tail: list[str], strip_prefix: str | re.Pattern[str] | None = _DEFAULT
                ) -> dict[str, Any] | None:
    """Parse the last traceback/stack in ``stderr_tail`` (see the module docstring).

    ``strip_prefix``: a regex removed from the start of every line (default
    :data:`TIMESTAMP_PREFIX`; None keeps lines as they are).
    """
    lines = _clean(stderr_tail, strip_prefix)
    py_at = _last_python_header(lines)
    node_at = _last_node_header(lines)
    if py_at is not None:
        report: dict[str, Any] | None
        if _PY_GROUP_HEADER.match(lines[py_at]):
            report, last = _python_group(lines, py_at)
        else:
            report, last = _python(lines, py_at)
        if node_at is None or node_at <= last:  # a Python SyntaxError's caret looks like Node's
            return report
    if node_at is None:
        return None
    bare = _bare_python_frame(lines, node_at)
    if bare is not None:  # "python -c 'def ('": a SyntaxError printed without a Traceback header
        return _python(lines, bare - 1, header=False)[0]
    return _node(lines, node_at)


def _clean(raw: list[str], strip_prefix: str | re.Pattern[str] | None) -> list[str]:
    prefix = TIMESTAMP_PREFIX if strip_prefix is _DEFAULT else strip_prefix
    pattern = re.compile(prefix) if isinstance(prefix, str) else prefix
    out = []
    for raw_line in raw:
        line = raw_line.rstrip("\r\n")
        if pattern is not None:
            line = pattern.sub("", line, count=1)
        out.append(line)
    return out


# -- Python -------------------------------------------------------------------------------------
def _last_python_header(lines: list[str]) -> int | None:
    for i in range(len(lines) - 1, -1, -1):
        if _PY_HEADER.match(lines[i]) or _PY_GROUP_HEADER.match(lines[i]):
            return i
    return None


def _bare_python_frame(lines: list[str], at: int) -> int | None:
    """Index of a ``  File "...", line N`` line just above ``at``, if any."""
    for j in range(at - 1, max(-1, at - 5), -1):
        if _PY_FILE.match(lines[j]):
            return j
    return None


def _python(lines: list[str], start: int, header: bool = True) -> tuple[dict[str, Any] | None, int]:
    """The report and the index of its exception line (``start``: the Traceback line)."""
    i = start + 1
    while i < len(lines) and (lines[i][:1].isspace() or not lines[i]):
        i += 1
    if i >= len(lines):
        return None, len(lines)  # a truncated traceback: no exception line yet
    m = _PY_EXC_LINE.match(lines[i])
    name, message = (m["name"], m["msg"] or "") if m else (lines[i], "")
    end = i + 1
    while end < len(lines) and lines[end] and end - i < 50 and not _PY_HEADER.match(lines[end]):
        end += 1  # continuation of a multi-line message (pydantic, SyntaxError details ...)
    frames = [ln.strip() for ln in lines[start + 1:i] if ln.lstrip().startswith('File "')]
    report = _report("python", name, message, None, classify_name(name, message), frames[-_FRAMES:],
                     lines[_chain_start(lines, start) if header else start + 1:end])
    return report, i


def _chain_start(lines: list[str], start: int) -> int:
    """Walk back over ``The above exception ...`` separators to the first traceback of a chain."""
    first, i = start, start - 1
    while True:
        while i >= 0 and not lines[i].strip():
            i -= 1
        if i < 0 or not _PY_CHAIN.match(lines[i]):
            return first
        j = i - 1
        while j >= 0 and not _PY_HEADER.match(lines[j]):
            j -= 1
        if j < 0:
            return first
        first, i = j, j - 1


def _python_group(lines: list[str], start: int) -> tuple[dict[str, Any], int]:
    block = [start]
    for i in range(start + 1, len(lines)):
        if not lines[i].startswith(("  |", "  +", "    ")):
            break
        block.append(i)
    group: tuple[str, str] | None = None
    leaves: list[tuple[str, str]] = []
    frames: list[str] = []
    for i in block[1:]:
        content = _BOX.sub("", lines[i]) if _BOX.match(lines[i]) else None
        if content is None:
            continue
        if content.lstrip().startswith('File "') and group is None:
            frames.append(content.strip())
        m = _PY_EXC_LINE.match(content)
        if m is None or content[:1].isspace():
            continue
        if group is None:
            group = (m["name"], m["msg"] or "")
        elif not m["name"].endswith("ExceptionGroup"):
            leaves.append((m["name"], m["msg"] or ""))
    name, message = group or ("ExceptionGroup", "")
    classes = [classify_name(n, msg) for n, msg in leaves] or [classify_name(name, message)]
    worst = CODE_BUG if CODE_BUG in classes else EXTERNAL if EXTERNAL in classes else USER_ERROR
    report = _report("python", name, message, None, worst, frames[-_FRAMES:], [lines[i] for i in block])
    return report, block[-1]


# -- Node ---------------------------------------------------------------------------------------
def _last_node_header(lines: list[str]) -> int | None:
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if _NODE_BRACKET.match(line) or ("Uncaught " in line[:12] and _NODE_HEADER.match(line)):
            return i
        if not _NODE_HEADER.match(line):
            if (i >= 1 and line and _NODE_CARET.match(lines[i - 1]) and i + 1 < len(lines)
                    and lines[i + 1].startswith("(Use `node --trace-uncaught")):
                return i  # a thrown non-Error value
            continue
        if i + 1 < len(lines) and _NODE_AT.match(lines[i + 1]):
            return i
        before = [ln for ln in lines[max(0, i - 2):i] if ln.strip()]
        if before and _NODE_CARET.match(before[-1]):
            return i
    return None


def _node(lines: list[str], start: int) -> dict[str, Any]:
    line = lines[start]
    m = _NODE_HEADER.match(line) or _NODE_BRACKET.match(line)
    if m is None:
        name, tag, message = "Uncaught", None, line
    else:
        name, tag, message = m["name"], m.groupdict().get("tag"), m["msg"]
    code = tag if tag and re.fullmatch(r"[A-Z0-9_]+", tag) else None
    if tag and code is None:
        name = tag  # DOMException [AbortError]
    frames, end = _node_frames(lines, start + 1)
    props, end = _node_props(lines, end)
    code = code or props.get("code")
    status = int(props["statusCode"]) if props.get("statusCode", "").isdigit() else None
    classification = classify_name(name, message, code, status=status)
    if "cause_name" in props and message.strip() == "fetch failed":
        cause = classify_name(props["cause_name"], props.get("cause_msg", ""), props.get("cause_code"))
        classification = cause if cause != USER_ERROR else EXTERNAL
    return _report("node", name, message, code, classification, frames[:_FRAMES], lines[start:end])


def _node_frames(lines: list[str], i: int) -> tuple[list[str], int]:
    """The ``at`` frames after a header (and the message lines before them, e.g. ``Require stack:``)."""
    frames: list[str] = []
    while i < len(lines):
        line = lines[i]
        if _NODE_AT.match(line):
            frames.append(line.strip().removesuffix(" {"))
            i += 1
            if line.endswith("{"):
                break
            continue
        if frames or line.startswith(("Node.js v", "Emitted")):
            break
        if not any(_NODE_AT.match(ln) for ln in lines[i + 1:i + 6]):
            break
        i += 1
    return frames, i


def _node_props(lines: list[str], i: int) -> tuple[dict[str, str], int]:
    """Read the ``{ code: ..., [cause]: ... }`` block that Node prints after the stack."""
    props: dict[str, str] = {}
    opened = i > 0 and lines[i - 1].rstrip().endswith("{")
    if not opened:
        while i < len(lines) and (lines[i].startswith("Emitted") or _NODE_AT.match(lines[i])):
            i += 1
        opened = i > 0 and lines[i - 1].rstrip().endswith("{")
    if not opened:
        return props, i
    while i < len(lines) and lines[i] != "}":
        line = lines[i]
        prop, cause, cause_code = _NODE_PROP.match(line), _NODE_CAUSE.match(line), _NODE_CAUSE_CODE.match(line)
        if prop:
            props.setdefault(prop["key"], prop["value"])
        elif cause:
            props["cause_name"], props["cause_msg"] = cause["tag"] or cause["name"], cause["msg"]
        elif cause_code and "cause_name" in props:
            props["cause_code"] = cause_code["code"]
        status = _NODE_STATUS.search(line)
        if status:
            props.setdefault("statusCode", status.group(1))
        i += 1
    return props, min(i + 1, len(lines))


def _report(language: str, exc_type: str, message: str, code: str | None, classification: str,
            frames: list[str], traceback: list[str]) -> dict[str, Any]:
    return {"language": language, "exc_type": exc_type, "message": message, "code": code,
            "classification": classification, "frames": frames,
            "traceback": traceback[-_MAX_TRACEBACK:]}
