"""The ``corral`` command's entry point: the fast path first, the full CLI otherwise."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith(("--remote", "--token-file")):
        argv = remote_options(argv)
    from corral.cli.fast import try_fast

    try:
        status = try_fast(argv)
    except BrokenPipeError:
        return 0
    if status is not None:
        return status
    from corral.cli.main import main as full_main

    return full_main(argv)


def remote_options(argv: list[str]) -> list[str]:
    """``--remote URL`` and ``--token-file F`` before the command: kept in the environment
    (``CORRAL_REMOTE``, ``CORRAL_TOKEN_FILE``), where ``control.client.Client`` looks."""
    import os

    names = {"--remote": "CORRAL_REMOTE", "--token-file": "CORRAL_TOKEN_FILE"}
    while argv and argv[0].split("=", 1)[0] in names:
        name, eq, value = argv[0].partition("=")
        if not eq:
            if len(argv) < 2:
                print(f"corral: {name} needs a value", file=sys.stderr)
                raise SystemExit(2)
            value, argv = argv[1], argv[1:]
        os.environ[names[name]] = value
        argv = argv[1:]
    return argv
