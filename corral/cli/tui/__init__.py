"""``corral monit`` (and ``corral dash``): a live terminal dashboard of every app, built with
textual, an optional dependency (the ``tui`` extra; ``scripts/setup`` installs it).

Only this command imports textual, and only once it runs (``cli.main`` names it lazily): the
CLI's other verbs never load it.  ``model`` holds the pure parts, ``feed`` the daemon and the log
files, ``app`` the screen.
"""

from __future__ import annotations

import argparse
import sys

NEEDS_TEXTUAL = ("`corral monit` needs textual, an optional dependency: install it with "
                 "`pip install 'corral[tui]'` (scripts/setup does)")


def cmd_monit(args: argparse.Namespace) -> int:
    try:
        import textual  # noqa: F401
    except ImportError:
        print(f"corral: {NEEDS_TEXTUAL}", file=sys.stderr)
        return 1
    from corral.control.client import Client, DaemonUnavailable

    client = Client()
    try:
        client.call("ping")
    except DaemonUnavailable as exc:
        print(f"corral: {exc}: nothing to show yet (`corral start app.py` or `corral resurrect` "
              "starts it)", file=sys.stderr)
        return 1
    finally:
        client.close()
    if not (sys.stdin.isatty() and sys.stderr.isatty()):  # textual draws on stderr, reads stdin
        print("corral: `corral monit` draws on a terminal: run it in one (`corral ls` and "
              "`corral events --follow` print to pipes)", file=sys.stderr)
        return 2
    from corral.cli.tui.app import Monit

    Monit().run()
    return 0
