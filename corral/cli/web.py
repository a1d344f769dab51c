"""``corral web``: run the HTTP API and dashboard as the app ``corral-web``; ``corral web token``
prints (or rotates) a token.  Loaded only by these commands."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from corral.cli.main import show_rows, warn
from corral.cli.parser import UsageError
from corral.control.client import Client
from corral.paths import Home

APP = "corral-web"


def cmd_web(args: argparse.Namespace) -> int:
    from corral.web import auth

    home = Home.from_env()
    if args.action == "token":
        return _token(args, home)
    settings = {"listen": args.listen, "cert": args.cert, "key": args.key, "insecure": args.insecure,
                "allow_hosts": args.allow_host}
    spec = web_spec(home, settings, os.getcwd())
    if args.insecure and not auth.is_loopback(args.listen) and not args.cert:
        warn(f"warning: --insecure: tokens and cookies cross the network in the clear on {args.listen}")
    from corral.cli.start import base_env

    result = Client(autostart=True).call("start", {"apps": [spec], "base_env": base_env([spec])})
    show_rows(result["rows"], False)
    scheme = "https" if args.cert else "http"
    print(f"dashboard: {scheme}://{args.listen}/  (token: `corral web token`; read-only: "
          "`corral web token --read-only`)")
    return 1 if result.get("errors") or any(r["status"] == "errored" for r in result["rows"]) else 0


def web_spec(home: Home, settings: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """The app ``corral-web`` for these settings (``corral web``'s flags, or a file's ``web`` table,
    paths relative to BASE_DIR); its tokens are made now, so ``corral web token`` prints them."""
    from corral.web import auth
    from corral.web.__main__ import parse, problems

    argv = ["--listen", settings["listen"]]
    if settings.get("cert") and settings.get("key"):
        argv += ["--cert", os.path.join(base_dir, settings["cert"]), "--key", os.path.join(base_dir, settings["key"])]
    argv += ["--insecure"] * bool(settings.get("insecure")) + [f"--allow-host={n}" for n in settings.get("allow_hosts", [])]
    errors = problems(parse(argv))
    if errors:
        raise UsageError(errors[0])
    try:
        auth.load(home)
    except auth.TokenFileError as exc:
        raise UsageError(str(exc)) from None
    from corral.config.load import from_command_line

    return from_command_line(None, [sys.executable, "-m", "corral.web", *argv], cwd=home.root,
                             extra={"name": APP, "env": {"CORRAL_HOME": home.root}})


def _token(args: argparse.Namespace, home: Home) -> int:
    from corral.web import auth

    role = auth.READ_ONLY if args.read_only else auth.FULL
    try:
        tokens = auth.rotate(home, role) if args.rotate else auth.load(home)
    except auth.TokenFileError as exc:
        raise UsageError(str(exc)) from None
    print(tokens[role])
    if args.rotate:
        print(f"corral: the {role} token is new; sessions made with the old one have ended", file=sys.stderr)
    return 0
