"""A Dockerfile whose entrypoint is ``corral run`` on the ecosystem file: corral is PID 1 (it
reaps zombies, forwards signals, exits with the apps' status), as a non-root user."""

from __future__ import annotations

import json
import os

from corral.config.spec import AppSpec
from corral.export import Export, Options, entrypoint, listen_port, probe_command, probe_of

BASE = "python:3.11-slim"
DOCKERIGNORE = ".git\n.venv\n__pycache__/\n*.pyc\nnode_modules/\n"


def _is_node(spec: AppSpec) -> bool:
    program = (spec.cmd or [spec.interpreter or spec.script or ""])[0]
    return os.path.basename(program).startswith("node") or (spec.script or "").endswith((".js", ".mjs", ".cjs"))


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    source = os.path.basename(options.source)
    base = os.path.dirname(os.path.abspath(options.source))
    lines = [
        "# syntax=docker/dockerfile:1",
        f"# Written by `corral export docker` from {source}: corral runs the apps as PID 1",
        "# (reaps zombies, forwards SIGTERM to every app, exits with their status).",
        f"# Build it in the folder of {source}: docker build -t IMAGE .",
        f"FROM {BASE}",
        "ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
        "# corral itself: a version from the index, a wheel or a git URL (docker build --build-arg CORRAL=...)",
        "ARG CORRAL=corral",
        'RUN pip install "$CORRAL"',
        "WORKDIR /app",
        "COPY . /app",
        "RUN if [ -f requirements.txt ]; then pip install -r requirements.txt; fi",
        "RUN useradd --create-home --uid 10001 --user-group corral && chown -R corral:corral /app",
        "USER corral",
        "ENV CORRAL_HOME=/home/corral/.corral",
    ]
    ports = sorted({p for p in (listen_port(s) for s in specs) if p})
    if ports:
        lines.append("EXPOSE " + " ".join(str(p) for p in ports))
    health = [(s, probe_of(s, s.health)) for s in specs if s.health]
    if health:
        spec, probe = health[0]
        command = probe_command(probe) if probe else None
        if command and probe:
            lines.append(f"HEALTHCHECK --interval={probe.interval:g}s --timeout={probe.timeout:g}s "
                         f"--start-period={probe.start_period:g}s --retries={probe.failures} "
                         f"CMD {json.dumps(command)}")
        else:
            out.cannot(spec, "health: no port to probe from the container's HEALTHCHECK")
        for other, _ in health[1:]:
            out.cannot(other, f"health: a Dockerfile has one HEALTHCHECK (it probes {spec.name})")
    lines += ["STOPSIGNAL SIGTERM", f"ENTRYPOINT {json.dumps(entrypoint(options))}", ""]
    for spec in specs:
        if _is_node(spec):
            out.cannot(spec, f"Node.js: {BASE} has no node (install it in the Dockerfile)")
        if spec.user or spec.group:
            out.cannot(spec, "user/group: the container runs every app as the user corral")
        if os.path.relpath(spec.cwd, base).startswith(".."):
            out.cannot(spec, f"cwd {spec.cwd}: outside the file's folder (copied to /app); give relative paths")
    out.files["Dockerfile"] = "\n".join(lines)
    out.files[".dockerignore"] = DOCKERIGNORE
    return out
