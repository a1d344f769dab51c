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
from corral.logs.files import LogWriters, RotatingFile, Tee, Writable
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
    if path.startswith("/dev/"):  # a device (/dev/null) is one for every instance: never a new file beside it
        return path
    root, ext = os.path.splitext(path)
    return f"{root}-{index}{ext}"


class FileLogs:
    """PM2's layout: ``logs/<name>-out.log`` and ``logs/<name>-error.log``, and ``log_file``
    (PM2's combined log: both streams, ``logs/<name>.log`` for ``true``) when an app asks.

    With several instances and no ``merge_logs`` each instance gets its own
    files, suffixed ``-<instance>``.
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

    def combined_path(self, spec: AppSpec, index: int) -> str | None:
        """The instance's ``log_file``, or None."""
        if not spec.log_file:
            return None
        path = spec.log_file if isinstance(spec.log_file, str) else os.path.join(self.directory, f"{spec.name}.log")
        return _suffixed(path, index) if spec.instances > 1 and not spec.merge_logs else path

    def open(self, spec: AppSpec, index: int, owner: tuple[int, int] | None = None,
             loss: LogLoss | None = None) -> InstanceLogs:
        """The instance's two sinks; new files belong to ``owner`` (the app's user, when it runs
        as another one); what they cannot write is counted in ``loss`` (the app's).
        LogFileError (one line) when a file cannot be used safely."""
        out_path, err_path = self.paths(spec, index)
        both_path = self.combined_path(spec, index)
        policy = RotationPolicy.from_spec(spec)
        held: list[RotatingFile] = []
        try:
            out = self.writers.acquire(out_path, policy, owner)
            held.append(out)
            err = out if err_path == out_path else self.writers.acquire(err_path, policy, owner)
            if err is not out:
                held.append(err)
            both = out if both_path == out_path else err if both_path == err_path else None
            if both_path is not None and both is None:
                both = self.writers.acquire(both_path, policy, owner)
                held.append(both)
        except BaseException:
            for f in held:
                self.writers.release(f)
            raise

        def close() -> None:
            for f in held:
                self.writers.release(f)

        to_out: Writable = out if both is None or both is out else Tee(out, both)
        to_err: Writable = err if both is None or both is err else Tee(err, both)
        return InstanceLogs(make_sink(spec, index, "out", to_out, loss), make_sink(spec, index, "err", to_err, loss), close,
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
