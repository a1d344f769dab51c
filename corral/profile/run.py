"""The profiling helper: ``python -m corral.profile.run JOB`` (JOB: JSON), one JSON line out.

The daemon starts it as its own child with a deadline (:mod:`corral.profile.service`), so every
tracer it runs (py-spy) descends from the daemon: the process an app's exec shim allowed to trace
it (``PR_SET_PTRACER``).  The daemon itself never parses a profile nor loads a WebSocket.

JOB: ``what`` (cpu | stack | heap | evidence), ``app``, ``instance``, ``pid``, ``dir`` (where the
files go), ``duration`` (seconds), ``format`` (or ""), ``logs`` (the instance's log files),
``timeout`` (seconds for a stack).  Out: ``{"ok": true, "runtime", "files", "top", "text"}`` or
``{"ok": false, "error": one line}``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any

from corral.exceptions import OperationFailed
from corral.profile import artifacts, cpu, heap, rights, stacks
from corral.profile.cdp import InspectorError

FORMATS = {"python": ("speedscope", "svg"), "node": ("cpuprofile",)}


class Refused(OperationFailed):
    """What cannot be done, in one line."""


def runtime_of(pid: int) -> str:
    """python | node | other, from the program PID runs."""
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except FileNotFoundError:
        raise Refused(f"pid {pid} is gone") from None
    except OSError:
        exe = ""
    if exe.startswith(("python", "pypy")):
        return "python"
    if exe.startswith(("node", "nodejs")):
        return "node"
    return "other"


def pyspy() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    found = beside if os.access(beside, os.X_OK) else shutil.which("py-spy")
    if not found:
        raise Refused("py-spy is not installed beside corral (pip install py-spy)")
    return found


def _traced(pid: int, error: str) -> Refused:
    f = rights.facts()
    return Refused(rights.diagnose(pid, error, f["scope"], f["cap"], f["container"]))


def cpu_job(job: dict[str, Any], runtime: str, base: str) -> dict[str, Any]:
    pid, duration, wanted = job["pid"], int(job.get("duration") or 30), job.get("format") or ""
    if wanted and wanted not in FORMATS.get(runtime, ()):
        accepted = " or ".join(FORMATS.get(runtime, ())) or "nothing"
        raise Refused(f"--format {wanted} is not for a {runtime} app (it takes {accepted})")
    if runtime == "python":
        path = base + ".speedscope.json"
        error = cpu.record_python(pyspy(), pid, duration, path)
        if error is not None:
            raise _traced(pid, error)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        files = [path]
        if wanted in ("", "svg"):
            with open(base + ".svg", "w", encoding="utf-8") as out:
                out.write(cpu.flamegraph_svg(doc, f"{job['app']}[{job['instance']}] pid {pid}, {duration}s"))
            files.append(base + ".svg")
        if wanted == "svg":
            os.unlink(path)
            files.remove(path)
        return {"files": files, "top": cpu.speedscope_top(doc)}
    if runtime == "node":
        profile = cpu.record_node(pid, duration)
        with open(base + ".cpuprofile", "w", encoding="utf-8") as out:
            json.dump(profile, out)
        return {"files": [base + ".cpuprofile"], "top": cpu.cpuprofile_top(profile)}
    raise Refused(f"pid {pid} runs neither Python nor Node: no CPU profile for it")


def stack_job(job: dict[str, Any], runtime: str) -> dict[str, Any]:
    pid, timeout = job["pid"], float(job.get("timeout") or 10)
    if runtime == "python":
        text, why = stacks.python_stack(pyspy(), pid, timeout)
        if text is None:
            raise _traced(pid, why)
        return {"text": text, "how": "py-spy dump"}
    if runtime == "node":
        return {"text": stacks.node_stack(pid, timeout), "how": "inspector"}
    raise Refused(f"pid {pid} runs neither Python nor Node: see its last lines with `corral logs {job['app']}`")


def evidence_job(job: dict[str, Any], runtime: str) -> dict[str, Any]:
    """H4: a Python instance's stacks; else (or when that fails) the last 50 lines of its logs."""
    why = ""
    if runtime == "python":
        try:
            text, why = stacks.python_stack(pyspy(), job["pid"], float(job.get("timeout") or 3))
        except Refused as exc:
            text, why = None, str(exc)
        if text is not None:
            return {"text": text, "how": "py-spy dump"}
        if rights.denied(why):
            why = str(_traced(job["pid"], why))
    return {"text": stacks.log_tail(list(job.get("logs") or [])), "how": "logs", "why": why}


def heap_job(job: dict[str, Any], runtime: str, base: str, stem: str) -> dict[str, Any]:
    pid = job["pid"]
    if runtime == "node":
        size = heap.node_heap(pid, base + ".heapsnapshot", float(job.get("timeout") or 120))
        return {"files": [base + ".heapsnapshot"], "text": f"heap snapshot: {size / 1024 ** 2:.1f} MiB"}
    if runtime != "python":
        raise Refused(f"pid {pid} runs neither Python nor Node: no heap snapshot for it")
    files, why = heap.python_heap(pid, job["dir"], stem, float(job.get("timeout") or 30))
    if why == "nohandler":
        python = heap.memray_python(pid)
        if python is None:
            raise Refused(f"pid {pid} does not answer heap requests: add `import corral.app` to the app "
                          "(heap_profile = true traces from its start), or install memray in its environment")
        error = heap.memray_heap(python, pid, base + ".bin", int(job.get("duration") or 10))
        if error is not None:
            raise Refused(f"memray attach on pid {pid}: {error}")
        return {"files": [base + ".bin"], "text": f"memray capture: {python} -m memray flamegraph {base}.bin"}
    if why:
        raise Refused(why)
    with open(files[0], encoding="utf-8") as f:
        return {"files": files, "text": f.read()}


def main(job: dict[str, Any]) -> dict[str, Any]:
    what, pid = job["what"], int(job["pid"])
    runtime = runtime_of(pid)
    directory = job["dir"]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    stem = artifacts.stem("stack" if what == "evidence" else what, int(job.get("instance") or 0), pid, time.time())
    base = os.path.join(directory, stem)
    if what == "cpu":
        result = cpu_job(job, runtime, base)
    elif what == "heap":
        result = heap_job(job, runtime, base, stem)
    elif what == "stack":
        result = stack_job(job, runtime)
    else:
        result = evidence_job(job, runtime)
    artifacts.prune(directory, keep=int(job.get("keep") or artifacts.KEEP),
                    max_age=float(job.get("max_age") or artifacts.MAX_AGE))
    return {"ok": True, "runtime": runtime, "pid": pid, **result}


if __name__ == "__main__":
    try:
        answer = main(json.loads(sys.argv[1]))
    except (Refused, InspectorError) as exc:
        answer = {"ok": False, "error": str(exc)}
    except OSError as exc:
        answer = {"ok": False, "error": f"{exc.strerror or exc}{': ' + exc.filename if exc.filename else ''}"}
    sys.stdout.write(json.dumps(answer) + "\n")
