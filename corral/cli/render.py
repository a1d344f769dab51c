"""Rendering for people: the process table, durations, sizes; colour only on a terminal.

Text that comes from apps or from the daemon (names, crash messages, events, paths, environment
values) goes through :func:`clean` before it reaches a terminal: control characters are shown
escaped (``\x1b``, ``\n``), so no app can move the cursor, retitle the terminal, write its
clipboard (OSC 52) or reorder a line with bidirectional overrides.  ``--json`` output is escaped
by JSON itself.
"""

from __future__ import annotations

import os
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: C0 controls, DEL, C1 controls, line/paragraph separators and the bidirectional overrides and
#: isolates, as escapes.
ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
ESCAPES.update({c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                             *range(0x2066, 0x206A))})


def clean(text: str) -> str:
    """``text`` safe to print on a terminal: control characters escaped (see the module docstring)."""
    return text if text.isprintable() else text.translate(ESCAPES)


STATUS_COLOURS = {
    "online": "32", "launching": "36", "stopping": "33", "waiting_restart": "33",
    "stopped": "90", "errored": "31", "skipped": "31",
}


def use_colour(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def table(rows: list[dict[str, Any]], colour: bool | None = None) -> str:
    if colour is None:
        colour = use_colour()
    if not rows:
        return "no apps yet: `corral start app.py` or `corral start corral.toml`"
    now = time.time()
    header = ["id", "name", "namespace", "inst", "pid", "status", "restarts", "uptime", "cpu", "memory"]
    body = []
    for r in rows:
        up = duration(now - r["started_at"]) if r.get("started_at") else "-"
        body.append([
            "-" if r["id"] is None else str(r["id"]), clean(r["name"]), clean(r.get("namespace", "default")), str(r["instance"]),
            str(r["pid"]) if r["pid"] else "-", r["status"], str(r["restarts"]), up,
            f"{r['cpu_percent']:.1f}%", size(r["memory_bytes"]),
        ])
    losses = [loss_cell(r.get("log_loss")) for r in rows]
    if any(losses):  # lines the daemon could not write (a full disk) or withheld: `describe` says more
        header.append("logs")
        for line, loss in zip(body, losses):
            line.append(loss or "-")
    if all(r.get("namespace", "default") == "default" for r in rows):
        header.pop(2)
        for line in body:
            line.pop(2)
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(header)]
    status_col = header.index("status")
    out = ["  ".join(paint(h.ljust(w), "1", colour) for h, w in zip(header, widths)).rstrip()]
    for line in body:
        cells = []
        for i, (cell, w) in enumerate(zip(line, widths)):
            text = cell.ljust(w)
            if i == status_col:
                text = paint(text, STATUS_COLOURS.get(cell, "0"), colour)
            cells.append(text)
        out.append("  ".join(cells).rstrip())
    for r in rows:
        if r["status"] == "skipped":  # a stored app the daemon left out: say why, and what to do
            name = clean(r["name"])
            out.append(f"{name}: {clean(str(r.get('reason')))} (`corral delete {name}` removes it)")
    return "\n".join(out)


def store_lines(store: dict[str, Any]) -> list[str]:
    """What ``ping`` and ``describe`` say about the state database (nothing when all is well)."""
    lines = []
    if not store.get("ok", True):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(store.get("since") or 0))
        lines.append(f"the daemon's state is not being saved since {since} ({store.get('error')}): "
                     f"{store.get('pending', 0)} change(s) kept in memory, saved as soon as the disk takes them")
    if store.get("events_dropped"):
        lines.append(f"{store['events_dropped']} event(s) could not be kept while the state was not saved")
    if store.get("moved_aside"):
        lines.append(f"state.db was not a usable database: moved to {store['moved_aside']}, "
                     "the daemon started with no apps")
    return [clean(line) for line in lines]


def count(n: int) -> str:
    """A count in 4 characters or so: 999, 12.3k, 4.5M."""
    for unit, scale in (("M", 1_000_000), ("k", 1000)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def loss_cell(loss: dict[str, int] | None) -> str:
    """``ls``'s marker of an app's lost log lines (``log_loss``): "" when none."""
    if not loss:
        return ""
    parts = [f"{count(loss[key])} {word}" for key, word in (("dropped_lines", "dropped"), ("withheld_lines", "withheld"))
             if loss.get(key)]
    return ", ".join(parts)


def loss_lines(loss: dict[str, Any] | None) -> list[str]:
    """``describe``'s lines about an app's lost log lines (none when nothing was lost)."""
    if not loss or not (loss.get("dropped_lines") or loss.get("withheld_lines")):
        return []
    lines = []
    if loss.get("dropped_lines"):
        streams = loss.get("streams") or {}
        per = ", ".join(f"std{s} {v['lines']}" for s, v in sorted(streams.items()) if v.get("lines"))
        lines.append(f"  log lines not written: {loss['dropped_lines']} ({size(loss['dropped_bytes'])}; {per})"
                     " since the daemon started")
    for now in loss.get("dropping") or []:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now["since"]))
        lines.append(f"    instance {now['instance']} std{now['stream']}: dropping since {when} ({now['error']}), "
                     f"{now['lines']} so far; {now['path']}")
    if loss.get("withheld_lines"):
        lines.append(f"  log lines withheld (redaction failed): {loss['withheld_lines']}")
    return lines


def describe(info: dict[str, Any]) -> str:
    from corral.lifecycle.exits import describe_exit  # not on `ls`'s fast path

    lines = [f"{info['name']} (id {info['id']}, namespace {info['namespace']}, wants {info['desired']})"]
    lines.append(f"  command:   {' '.join(info['argv'])}")
    cfg = info["config"]
    lines.append(f"  cwd:       {cfg.get('cwd')}")
    for key in ("autorestart", "min_uptime", "max_restarts", "kill_timeout", "stop_signal", "max_memory_restart",
                "env_file", "source"):
        if cfg.get(key) is not None:
            lines.append(f"  {key + ':':<10} {cfg[key]}")
    if cfg.get("env"):
        lines.append("  env:")
        lines.extend(f"    {k}={v}" for k, v in sorted(cfg["env"].items()))
    for inst in info["instances"]:
        lines.append(f"  instance {inst['instance']}: {inst['status']} pid {inst['pid'] or '-'} "
                     f"restarts {inst['restarts']}")
        sample = inst.get("sample")
        if sample:
            lines.append(f"    sampled: cpu {sample['cpu']:.1f}%, memory {sample['rss'] / 1024 ** 2:.1f} MB, "
                         f"{sample['threads']} thread(s), {sample['fds']} fd(s), {sample['procs']} process(es)")
        lines.append(f"    out log: {inst['out_log']}")
        lines.append(f"    err log: {inst['err_log']}")
        last = inst.get("last_exit")
        if last:
            how = describe_exit(last.get("code"), last.get("signal"))
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"]))
            lines.append(f"    last exit: {how} at {when} (pid {last['pid']})")
    crash = info.get("last_crash")
    if crash:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(crash["ts"]))
        lines.append(f"  last crash: {when}, instance {crash['instance']}: {crash['summary']}")
        lines.extend(f"    {frame}" for frame in (crash.get("frames") or [])[-3:])
    evidence = info.get("evidence")
    if evidence:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(evidence["ts"]))
        lines.append(f"  last replaced: {when}, instance {evidence['instance']} ({clean(evidence.get('reason', ''))}): "
                     f"{clean(evidence['summary'])}")
        lines.extend(f"    {clean(line)}" for line in str(evidence.get("text", "")).splitlines()[:12])
    lines.extend(f"  state: {line}" for line in store_lines(info.get("store") or {}))
    lines.extend(loss_lines(info.get("log_loss")))
    dropped = (info.get("bus") or {}).get("dropped")
    if dropped:
        lines.append(f"  events dropped for slow subscribers (whole daemon): {dropped}")
    if info.get("events"):
        lines.append("  recent events:")
        for ev in info["events"][-10:]:
            lines.append("    " + event_line(ev))
    return "\n".join(clean(line) for line in lines)  # one line each: a value's newline is shown escaped


def event_line(ev: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev["ts"]))
    where = ev["app"] if ev.get("instance") is None else f"{ev['app']}[{ev['instance']}]"
    return clean(f"{when}  {where:<16} {ev['kind']:<12} {ev['message']}")
