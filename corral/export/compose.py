"""A compose file: one service per app, each running ``corral run FILE --only APP`` in the image
of ``corral export docker``; the app's liveness probe becomes its ``healthcheck`` and
``depends_on`` waits for the dependency's health when it has one."""

from __future__ import annotations

from typing import Any

import yaml

from corral.config.spec import AppSpec
from corral.export import Export, Options, app_args, listen_port, loopback_note, probe_command, probe_of

RESTART = {"always": "unless-stopped", "on-failure": "on-failure", "never": "no"}


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    image = options.image or f"corral-{specs[0].name}"
    by_name = {s.name: s for s in specs}
    services: dict[str, Any] = {}
    for index, spec in enumerate(specs):
        service: dict[str, Any] = {"image": image}
        if index == 0:
            service["build"] = "."
        service["command"] = app_args(spec)  # after the image's ENTRYPOINT: corral run FILE
        service["restart"] = RESTART[spec.autorestart]
        service["stop_grace_period"] = f"{int(spec.kill_timeout) + 5}s"
        port = listen_port(spec)
        if port:
            service["ports"] = [f"{port}:{port}"]
        probe = probe_of(spec, spec.health)
        command = probe_command(probe) if probe else None
        if probe and command:
            service["healthcheck"] = {"test": ["CMD", *command], "interval": f"{probe.interval:g}s",
                                      "timeout": f"{probe.timeout:g}s", "retries": probe.failures,
                                      "start_period": f"{probe.start_period:g}s"}
        elif spec.health:
            out.cannot(spec, "health: no port to probe for the healthcheck")
        if spec.depends_on:
            service["depends_on"] = {
                d: {"condition": "service_healthy" if by_name.get(d) and by_name[d].health else "service_started"}
                for d in spec.depends_on if d in by_name}
            for d in spec.depends_on:
                if d not in by_name:
                    out.cannot(spec, f"depends_on {d}: not in this file")
        if spec.max_memory_restart:
            service["mem_limit"] = spec.max_memory_restart
        services[spec.name] = service
        loopback_note(out, spec, "the published port")
        if spec.user or spec.group:
            out.cannot(spec, "user/group: the image runs every app as the user corral")
    text = yaml.safe_dump({"services": services}, sort_keys=False, default_flow_style=False)
    out.files["compose.yaml"] = f"# Written by `corral export compose` (image: corral export docker)\n{text}"
    return out
