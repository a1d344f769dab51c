"""Where an instance's lines go: per-app files (daemon) or prefixed stdout (``corral run``).

Files are written by :mod:`corral.logs.lines` and :mod:`corral.logs.files` (timestamps or JSON,
redaction, rotation; lines that could not be written are counted per app: ``LogLoss``);
``corral run`` writes plain prefixed lines to stdout, redacted too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

from corral.logs.pipe import MAX_LINE, Sink, write_all
from corral.logs.files import LogWriters
from corral.logs.format import valid_utf8
from corral.logs.lines import LogLoss, budget, make_sink, redactor_of
from corral.logs.rotation import RotationPolicy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec


@dataclass
class InstanceLogs:
    out: Sink
    err: Sink
    close: Callable[[], None]
    max_line: int = MAX_LINE


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
        self.writers = LogWriters()

    def paths(self, spec: AppSpec, index: int) -> tuple[str, str]:
        name = spec.name
        out = spec.out_file or os.path.join(self.directory, f"{name}-out.log")
        err = spec.error_file or os.path.join(self.directory, f"{name}-error.log")
        if spec.instances > 1 and not spec.merge_logs:
            out, err = _suffixed(out, index), _suffixed(err, index)
        return out, err

    def open(self, spec: AppSpec, index: int, owner: tuple[int, int] | None = None,
             loss: LogLoss | None = None) -> InstanceLogs:
        """The instance's two sinks; new files belong to ``owner`` (the app's user, when it runs
        as another one); what they cannot write is counted in ``loss`` (the app's).
        LogFileError (one line) when a file cannot be used safely."""
        out_path, err_path = self.paths(spec, index)
        policy = RotationPolicy.from_spec(spec)
        out = self.writers.acquire(out_path, policy, owner)
        try:
            err = out if err_path == out_path else self.writers.acquire(err_path, policy, owner)
        except BaseException:
            self.writers.release(out)
            raise

        def close() -> None:
            self.writers.release(out)
            if err is not out:
                self.writers.release(err)

        return InstanceLogs(make_sink(spec, index, "out", out, loss), make_sink(spec, index, "err", err, loss), close,
                            spec.log_max_line or MAX_LINE)

    def flush(self, path: str) -> list[str]:
        """Empty one log file and delete its rotated files (see ``LogWriters.flush``)."""
        return self.writers.flush(path)


class StdoutLogs:
    """``corral run``: every line to our stdout, prefixed by the app (and instance) name."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdout.fileno() if fd is None else fd

    def paths(self, spec: AppSpec, index: int) -> tuple[str, str]:
        return "<stdout>", "<stdout>"

    def open(self, spec: AppSpec, index: int, owner: tuple[int, int] | None = None,
             loss: LogLoss | None = None) -> InstanceLogs:
        label = spec.name if spec.instances == 1 else f"{spec.name}.{index}"
        prefix = f"{label} | ".encode()
        joiner = b"\n" + prefix
        fd = self._fd
        redact = redactor_of(spec)

        def sink(chunk: bytes) -> None:
            chunk = valid_utf8(chunk)
            if redact is not None:
                chunk, withheld = redact(chunk, budget(len(chunk)))
                if withheld and loss is not None:
                    loss.withheld += withheld
            write_all(fd, prefix + chunk[:-1].replace(b"\n", joiner) + b"\n")

        return InstanceLogs(sink, sink, lambda: None, spec.log_max_line or MAX_LINE)
