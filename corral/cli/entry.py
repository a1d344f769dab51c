"""The ``corral`` command's entry point: the fast path first, the full CLI otherwise."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from corral.cli.fast import try_fast

    try:
        status = try_fast(argv)
    except BrokenPipeError:
        return 0
    if status is not None:
        return status
    from corral.cli.main import main as full_main

    return full_main(argv)
