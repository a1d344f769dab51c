"""CPU profiles: py-spy for Python (speedscope JSON, then an SVG flame graph drawn from it), the
inspector's ``Profiler`` for Node (``.cpuprofile``); and the top functions by self time of either.

The summaries and the SVG are PURE functions of the parsed files; the recording functions run in
the profiling helper (:mod:`corral.profile.run`), never in the daemon.
"""

from __future__ import annotations

import html
import subprocess
import time
from collections import Counter
from typing import Any

from corral.profile.cdp import open_inspector

RATE = 100  # samples per second (py-spy's default)
TOP = 10


# -- summaries (PURE) ---------------------------------------------------------------------
def speedscope_top(doc: dict[str, Any], n: int = TOP) -> list[dict[str, Any]]:
    """The N functions with the most self time in a speedscope file (py-spy's), every profile
    (thread, process) counted together: function, file:line, samples, share of all samples."""
    frames = doc.get("shared", {}).get("frames", [])
    keys = [(str(f.get("name", "?")), str(f.get("file") or ""), int(f.get("line") or 0)) for f in frames]
    own: Counter[tuple[str, str, int]] = Counter()
    total = 0
    for profile in doc.get("profiles", []):
        for stack in profile.get("samples", []):
            total += 1
            if stack and 0 <= stack[-1] < len(keys):
                own[keys[stack[-1]]] += 1  # one frame per distinct column: counted by function and line
    return [_row(name, file or None, line or None, count, total) for (name, file, line), count in own.most_common(n)]


def cpuprofile_top(doc: dict[str, Any], n: int = TOP) -> list[dict[str, Any]]:
    """The N functions with the most self time in a V8 ``.cpuprofile`` (samples per node)."""
    nodes = {node["id"]: node.get("callFrame", {}) for node in doc.get("nodes", [])}
    counts = Counter(doc.get("samples", []))
    own: Counter[tuple[str, str, int]] = Counter()
    for node_id, count in counts.items():
        frame = nodes.get(node_id, {})
        key = (frame.get("functionName") or "(anonymous)", frame.get("url", ""), int(frame.get("lineNumber", -1)))
        own[key] += count
    total = float(sum(counts.values()))
    return [_row(name, url or None, line + 1 if line >= 0 else None, count, total)
            for (name, url, line), count in own.most_common(n)]


def _row(name: str, file: Any, line: Any, weight: float, total: float) -> dict[str, Any]:
    where = f"{file}:{line}" if file and line else (str(file) if file else "")
    return {"function": name, "where": where, "samples": round(weight, 3),
            "share": round(100.0 * weight / total, 1) if total else 0.0}


def flamegraph_svg(doc: dict[str, Any], title: str, width: int = 1200) -> str:
    """PURE: an SVG flame graph (root at the bottom, width = samples) of a speedscope file."""
    frames = doc.get("shared", {}).get("frames", [])
    root: dict[str, Any] = {"n": 0.0, "kids": {}}
    for profile in doc.get("profiles", []):
        for stack in profile.get("samples", []):
            node = root
            node["n"] += 1
            for index in stack:
                name = str(frames[index].get("name", "?")) if 0 <= index < len(frames) else "?"
                node = node["kids"].setdefault(name, {"n": 0, "kids": {}})
                node["n"] += 1
    depth = _depth(root)
    row, top = 16, 24
    height = top + row * max(depth, 1) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
           f'font-size="11"><text x="4" y="14">{html.escape(title)} ({root["n"]:g} samples)</text>']
    if root["n"]:
        _draw(root, 0.0, width / root["n"], depth, 0, height - row - 4, row, out)
    out.append("</svg>\n")
    return "\n".join(out)


def _depth(node: dict[str, Any]) -> int:
    return 1 + max((_depth(k) for k in node["kids"].values()), default=0) if node["kids"] else 0


def _draw(node: dict[str, Any], x: float, scale: float, depth: int, level: int, y: int, row: int,
          out: list[str]) -> None:
    for name, kid in sorted(node["kids"].items()):
        w = kid["n"] * scale
        if w >= 0.5:
            hue = 20 + (sum(map(ord, name)) % 40)
            label = html.escape(name if len(name) * 7 < w else name[: max(0, int(w / 7) - 1)] + ".." if w > 21 else "")
            out.append(f'<g><title>{html.escape(name)} ({kid["n"]:g} samples)</title><rect x="{x:.1f}" y="{y}" '
                       f'width="{w:.1f}" height="{row - 1}" fill="hsl({hue},90%,60%)"/><text x="{x + 2:.1f}" '
                       f'y="{y + row - 4}">{label}</text></g>')
            _draw(kid, x, scale, depth, level + 1, y - row, row, out)
        x += w


# -- recording (in the helper) ------------------------------------------------------------
def record_python(pyspy: str, pid: int, duration: int, path: str, rate: int = RATE) -> str | None:
    """``py-spy record`` of PID's process tree into PATH (speedscope); None, or py-spy's complaint."""
    argv = [pyspy, "record", "--pid", str(pid), "--duration", str(duration), "--rate", str(rate),
            "--subprocesses", "--format", "speedscope", "--output", path, "--nonblocking"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=duration + 30, check=False)
    except subprocess.TimeoutExpired:
        return f"py-spy did not finish within {duration + 30}s"
    if done.returncode != 0:
        return last_line(done.stderr) or f"py-spy exited with {done.returncode}"
    return None


def record_node(pid: int, duration: float, interval_us: int = 1000) -> dict[str, Any]:
    """A ``.cpuprofile`` of PID through its inspector (``Profiler.start``, DURATION, ``stop``)."""
    with open_inspector(pid) as session:
        session.call("Profiler.enable")
        session.call("Profiler.setSamplingInterval", {"interval": interval_us})
        session.call("Profiler.start")
        time.sleep(duration)  # the profile's own length: nothing to wait for but time
        session.settimeout(30)
        result = session.call("Profiler.stop")
        session.call("Profiler.disable")
    return dict(result["profile"])


def last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
