"""``python -m corral.web``: the web process (the daemon runs it as the app ``corral-web``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys

from corral.paths import Home
from corral.web import auth, httpd
from corral.web.server import Web

DEFAULT_LISTEN = "127.0.0.1:9616"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="corral-web", description="corral's HTTP API and dashboard")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT (default {DEFAULT_LISTEN})")
    p.add_argument("--cert", help="TLS certificate chain (PEM)")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP on a non-loopback address")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name the Host header may carry (besides the listen address and loopback)")
    p.add_argument("--client-timeout", type=float, default=httpd.HEAD_TIMEOUT, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def problems(args: argparse.Namespace) -> list[str]:
    """Why these settings may not run (one line each): the same rules ``corral web`` checks."""
    out = []
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        out.append(f"--listen {args.listen!r}: write it HOST:PORT, like {DEFAULT_LISTEN}")
    if bool(args.cert) != bool(args.key):
        out.append("--cert and --key go together (TLS needs both)")
    if not out and not auth.is_loopback(args.listen) and not args.cert and not args.insecure:
        out.append(f"--listen {args.listen}: not loopback, so TLS is needed (--cert and --key), "
                   "or --insecure to send tokens in the clear")
    return out


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


async def run(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    httpd.HEAD_TIMEOUT = max(0.1, args.client_timeout)  # seconds a client has to send a request's head
    web = Web(Home.from_env(), auth.allowed_hosts(args.listen, args.allow_host))
    tls = tls_context(args.cert, args.key) if args.cert else None
    server = await httpd.start(web.handle, host, int(port), tls)
    bound = server.sockets[0].getsockname()
    scheme = "https" if tls else "http"
    print(f"corral web: listening on {scheme}://{args.listen.rpartition(':')[0]}:{bound[1]}"
          f"{' (plain HTTP off loopback: --insecure)' if args.insecure and not tls else ''}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    errors = problems(args)
    if errors:
        for line in errors:
            print(f"corral web: {line}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args))
    except (OSError, ssl.SSLError, auth.TokenFileError) as exc:
        print(f"corral web: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
