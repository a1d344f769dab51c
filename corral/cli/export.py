"""``corral export KIND [FILE] [-o DIR]``: the files of ``corral.export`` for an ecosystem file,
printed or written into DIR; what could not be mapped goes to stderr, one line each.
``corral export systemd`` without a file: the unit of corral itself (as ``corral startup`` writes it)."""

from __future__ import annotations

import argparse
import os
import sys

from corral.cli.main import warn
from corral.cli.parser import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec

DEFAULT_FILES = ("corral.toml", "corral.yaml", "corral.yml", "corral.json", "ecosystem.config.js",
                 "ecosystem.config.cjs", "ecosystem.json")


def _file(args: argparse.Namespace) -> str | None:
    if args.file:
        return str(args.file)
    if args.kind == "systemd":  # no file named: the unit of corral itself
        return None
    for name in DEFAULT_FILES:
        if os.path.isfile(name):
            return name
    raise UsageError(f"export {args.kind}: which ecosystem file? (none of {', '.join(DEFAULT_FILES[:1] + DEFAULT_FILES[4:5])} "
                     "here: `corral export KIND FILE`)")


def _specs(path: str, args: argparse.Namespace) -> list[AppSpec]:
    from corral.config.errors import ConfigError
    from corral.config.load import load_file
    from corral.config.spec import AppSpec

    warnings: list[str] = []
    try:
        specs = load_file(path, env_name=args.env, only=args.only, warnings=warnings)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for line in warnings:
        warn(f"warning: {line}")
    if not specs:
        raise UsageError(f"{path}: no app to export")
    return [AppSpec.from_dict(spec) for spec in specs]


def cmd_export(args: argparse.Namespace) -> int:
    from corral.export import Export, Options, build

    path = _file(args)
    if path is None:
        out = Export(files={"corral.service": _corral_unit()})
    else:
        hosts = tuple(h.strip() for h in (args.hosts or "").split(",") if h.strip())
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(args.output or os.getcwd()))
        options = Options(source=path, source_from_output=relative, env_name=args.env, python=os.path.abspath(sys.executable), image=args.image or "",
                          server_name=args.server_name, static=os.path.abspath(args.static) if args.static else "",
                          listen=args.listen, hosts=hosts, serial=args.serial,
                          max_fail_percentage=args.max_fail_percentage)
        out = build(args.kind, _specs(path, args), options)
    for line in out.unmapped:
        warn(f"export {args.kind}: {line}")
    if args.output:
        _write(args.output, out.files)
    else:
        several = len(out.files) > 1
        for name, text in out.files.items():
            if several:
                sys.stdout.write(f"# ==> {name} <==\n")
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _corral_unit() -> str:
    from corral.cli.boot import known_apps, stop_timeout
    from corral.export.systemd import CorralUnit, corral_unit
    from corral.paths import Home

    home = Home.from_env()
    return corral_unit(CorralUnit(python=os.path.abspath(sys.executable), home=os.path.abspath(home.root),
                                  stop_timeout=stop_timeout(known_apps(home))))


def _write(folder: str, files: dict[str, str]) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        for name, text in files.items():
            path = os.path.join(folder, name)
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {path}")
    except OSError as exc:
        raise UsageError(f"cannot write into {folder}: {exc.strerror or exc}") from None
