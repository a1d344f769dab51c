"""``corral export KIND``: files for other tools, generated from the typed app specs.

Pure text: every exporter takes :class:`~corral.config.spec.AppSpec` objects and
:class:`Options` and returns an :class:`Export` (file names and their text, and one line per
setting it could not map).  Nothing here reads or writes a file, runs a program or talks to the
daemon; the CLI (``corral.cli.export``) does that.  CLI side only: the daemon never imports it.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from corral.config.spec import AppSpec

KINDS = ("systemd", "docker", "compose", "kubernetes", "nginx", "ansible")

#: settings that say where a spec came from, not how it runs: never "not mapped"
_ORIGIN = frozenset({"name", "source", "env_name", "ignored", "cwd", "namespace"})


@dataclass(frozen=True)
class Options:
    """What the command line adds to the specs."""

    source: str = "corral.toml"  # the ecosystem file, as the generated files name it
    source_from_output: str = "corral.toml"  # the same, relative to the folder the files go to
    env_name: str | None = None  # --env NAME: the containers run the file with it too
    python: str = "/usr/bin/python3"  # the interpreter .py scripts run with (systemd units)
    image: str = ""  # docker/compose/kubernetes: the image name (default: corral-<first app>)
    server_name: str = "example.com"  # nginx: the TLS server's name (certbot)
    static: str = ""  # nginx: a folder served under /static/ with long-lived caching
    listen: str = "80"  # nginx: the plain-HTTP server's listen address
    hosts: tuple[str, ...] = ()  # ansible: the inventory's hosts
    serial: str = "1"  # ansible: the batch size (a count or "25%")
    max_fail_percentage: int = 0  # ansible: stop the rollout when more hosts than this failed


@dataclass
class Export:
    files: dict[str, str] = field(default_factory=dict)  # relative file name -> text
    unmapped: list[str] = field(default_factory=list)  # one line per setting that did not map

    def cannot(self, spec: AppSpec | None, what: str) -> None:
        where = f'app "{spec.name}": ' if spec is not None else ""
        line = f"{where}{what}"
        if line not in self.unmapped:
            self.unmapped.append(line)


def default_of(key: str) -> Any:
    for f in fields(AppSpec):
        if f.name == key:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    return MISSING


def changed(spec: AppSpec) -> list[str]:
    """The settings SPEC gives a value other than the default (where it came from aside)."""
    return [f.name for f in fields(AppSpec)
            if f.name not in _ORIGIN and getattr(spec, f.name) != default_of(f.name)]


def report_unmapped(out: Export, spec: AppSpec, mapped: frozenset[str], kind: str) -> None:
    """One line for each setting SPEC changed that the KIND exporter does not map."""
    for key in changed(spec):
        if key not in mapped:
            out.cannot(spec, f"{key}: not mapped to {kind}")


def build(kind: str, specs: list[AppSpec], options: Options) -> Export:
    """The files of KIND for SPECS (``corral.export.<kind>.export``)."""
    if kind not in KINDS:
        raise ValueError(f"no export {kind!r} (one of {', '.join(KINDS)})")
    module = importlib.import_module(f"corral.export.{kind}")
    result: Export = module.export(specs, options)
    return result


def plain_env(out: Export, spec: AppSpec, where: str = "an env_file or a secret store") -> dict[str, str]:
    """SPEC's ``env`` without its secrets (corral never prints one): each left out is one line."""
    from corral.config.environ import is_secret

    kept = {}
    for key, value in spec.env.items():
        if is_secret(key, value):
            out.cannot(spec, f"env {key}: a secret, not written (keep it in {where})")
        else:
            kept[key] = value
    return kept


def seconds(value: float) -> int:
    """Whole seconds, at least 1 (the unit most tools take)."""
    return max(1, int(round(value)))


def listen_port(spec: AppSpec) -> int | None:
    """The TCP port of SPEC's first ``listen`` address (``tcp://host:port``), if any."""
    for address in spec.listen:
        if address.startswith("tcp://"):
            port = address.rsplit(":", 1)[1]
            if port.isdigit() and int(port):
                return int(port)
    return None


@dataclass(frozen=True)
class Probe:
    """A readiness or liveness probe of corral's, where the other tools need it."""

    kind: str  # http, tcp, cmd
    port: int | None = None
    host: str = "127.0.0.1"
    path: str = "/"
    cmd: tuple[str, ...] = ()
    interval: float = 10.0
    timeout: float = 2.0
    failures: int = 3
    start_period: float = 0.0


def probe_of(spec: AppSpec, settings: dict[str, Any] | None) -> Probe | None:
    """SPEC's ``ready`` or ``health`` table as a :class:`Probe` (None: none, or ``notify``)."""
    if not settings or settings.get("kind") not in ("http", "tcp", "cmd"):
        return None
    port = settings.get("port")
    address = settings.get("address")
    if port is None and isinstance(address, str) and address.startswith("tcp://"):
        port = int(address.rsplit(":", 1)[1])
    if port is None:
        port = listen_port(spec)
    return Probe(kind=settings["kind"], port=port, host=settings.get("host", "127.0.0.1"),
                 path=settings.get("path", "/"), cmd=tuple(settings.get("cmd") or ()),
                 interval=float(settings.get("interval", 10.0)), timeout=float(settings.get("timeout", 2.0)),
                 failures=int(settings.get("failures", 3)), start_period=float(settings.get("start_period", 0.0)))


def probe_command(probe: Probe) -> list[str] | None:
    """A command that succeeds when PROBE does (python's standard library only: the image has no curl)."""
    if probe.kind == "cmd":
        return list(probe.cmd)
    if probe.port is None:
        return None
    if probe.kind == "http":
        url = f"http://{probe.host}:{probe.port}{probe.path}"
        return ["python3", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout={probe.timeout:g})"]
    return ["python3", "-c", f"import socket; socket.create_connection(({probe.host!r}, {probe.port}), {probe.timeout:g})"]


def entrypoint(options: Options) -> list[str]:
    """What the image runs: ``corral run`` on the file (PID 1 duties), with its ``--env``."""
    import os

    env = ["--env", options.env_name] if options.env_name else []
    return ["corral", "run", f"/app/{os.path.basename(options.source)}", *env]


def app_args(spec: AppSpec) -> list[str]:
    """The arguments after the image's entrypoint that run one app alone."""
    return ["--only", spec.name]


def loopback_note(out: Export, spec: AppSpec, kind: str) -> None:
    """An app listening on 127.0.0.1 cannot be reached from outside its container."""
    for address in spec.listen:
        if address.startswith(("tcp://127.", "tcp://localhost:", "tcp://[::1]")):
            out.cannot(spec, f"listen {address}: loopback inside the container, out of reach of {kind}; "
                             "listen on 0.0.0.0 there")
