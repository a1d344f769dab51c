"""The one wording of how a process ended, used by events, ``describe``, crash reports and reload.

A tiny pure module (no imports) so the CLI's renderer can use it without loading the lifecycle.
"""

from __future__ import annotations

__all__ = ["describe_exit"]


def describe_exit(code: int | None, signal: str | None, *, verb: bool = False) -> str:
    """``exit code 1`` / ``killed by SIGKILL``; with ``verb``, the same as a predicate for a
    sentence whose subject is the process: ``exited with code 1`` / ``was killed by SIGKILL``."""
    if signal:
        return f"was killed by {signal}" if verb else f"killed by {signal}"
    return f"exited with code {code}" if verb else f"exit code {code}"
