"""Where an instance's lines go: per-app files (daemon) or prefixed stdout (``corral run``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from corral.daemon.logpipe import LogFiles, Sink, write_all


@dataclass
class InstanceLogs:
    out: Sink
    err: Sink
    close: Callable[[], None]


def _suffixed(path: str, index: int) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}-{index}{ext}"


class FileLogs:
    """PM2's layout: ``logs/<name>-out.log`` and ``logs/<name>-error.log``.

    With several instances and no ``merge_logs`` each instance gets its own
    pair, suffixed ``-<instance>``.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._files = LogFiles()

    def paths(self, spec: dict[str, Any], index: int) -> tuple[str, str]:
        name = spec["name"]
        out = spec.get("out_file") or os.path.join(self.directory, f"{name}-out.log")
        err = spec.get("error_file") or os.path.join(self.directory, f"{name}-error.log")
        if spec.get("instances", 1) > 1 and not spec.get("merge_logs"):
            out, err = _suffixed(out, index), _suffixed(err, index)
        return out, err

    def open(self, spec: dict[str, Any], index: int) -> InstanceLogs:
        out_path, err_path = self.paths(spec, index)
        out = self._files.acquire(out_path)
        err = out if err_path == out_path else self._files.acquire(err_path)

        def close() -> None:
            self._files.release(out)
            if err is not out:
                self._files.release(err)

        return InstanceLogs(out.write, err.write, close)


class StdoutLogs:
    """``corral run``: every line to our stdout, prefixed by the app (and instance) name."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdout.fileno() if fd is None else fd

    def paths(self, spec: dict[str, Any], index: int) -> tuple[str, str]:
        return "<stdout>", "<stdout>"

    def open(self, spec: dict[str, Any], index: int) -> InstanceLogs:
        label = spec["name"] if spec.get("instances", 1) == 1 else f"{spec['name']}.{index}"
        prefix = f"{label} | ".encode()
        joiner = b"\n" + prefix
        fd = self._fd

        def sink(chunk: bytes) -> None:
            write_all(fd, prefix + chunk[:-1].replace(b"\n", joiner) + b"\n")

        return InstanceLogs(sink, sink, lambda: None)
