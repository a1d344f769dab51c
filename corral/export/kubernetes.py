"""Kubernetes manifests: a Deployment per long-running app (``instances`` replicas, each pod one
``corral run FILE --only APP --instances 1``), a Service for its port, a Job for an app that runs
once (``autorestart = "never"``); readiness and liveness probes from corral's ``ready`` and
``health``, ``terminationGracePeriodSeconds`` from ``kill_timeout``, resources from ``thresholds``
(requests) and ``max_memory_restart`` (the memory limit)."""

from __future__ import annotations

from typing import Any

import yaml

from corral.config.spec import AppSpec
from corral.export import (Export, Options, Probe, listen_port, loopback_note, probe_of, report_unmapped,
                           app_args, seconds)

MAPPED = frozenset({"instances", "listen", "ready", "health", "kill_timeout", "thresholds", "max_memory_restart",
                    "autorestart", "depends_on", "script", "cmd", "args", "interpreter", "interpreter_args", "venv",
                    "env", "env_file", "stop_signal", "wait_ready", "listen_timeout", "ready_timeout",
                    "min_uptime", "max_restarts", "restart_delay", "exp_backoff_restart_delay", "out_file",
                    "error_file", "log_file", "merge_logs", "log_type", "time", "log_date_format", "redact",
                    "redact_keys", "redact_patterns", "shell", "reload", "log_max_line", "watchdog", "exec_mode",
                    "shutdown_with_message", "increment_var", "env_inherit", "stop_exit_codes", "limits"})


def _probe(probe: Probe, spec: AppSpec, out: Export, what: str) -> dict[str, Any] | None:
    if probe.kind == "cmd":
        action: dict[str, Any] = {"exec": {"command": list(probe.cmd)}}
    elif probe.port is None:
        out.cannot(spec, f"{what}: no port to probe")
        return None
    elif probe.kind == "http":
        action = {"httpGet": {"path": probe.path, "port": probe.port}}
    else:
        action = {"tcpSocket": {"port": probe.port}}
    return {**action, "periodSeconds": seconds(probe.interval), "timeoutSeconds": seconds(probe.timeout),
            "failureThreshold": probe.failures}


def _labels(spec: AppSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/managed-by": "corral-export"}


def _container(spec: AppSpec, options: Options, image: str, out: Export) -> dict[str, Any]:
    container: dict[str, Any] = {"name": spec.name, "image": image,
                                 "args": [*app_args(spec), "--instances", "1"]}
    port = listen_port(spec)
    if port:
        container["ports"] = [{"containerPort": port, "name": "http" if spec.ready and spec.ready.get("kind") == "http"
                               else "tcp"}]
    ready = probe_of(spec, spec.ready)
    if ready is not None:
        mapped = _probe(ready, spec, out, "ready")
        if mapped:
            container["readinessProbe"] = mapped
    elif spec.ready:
        out.cannot(spec, "ready = \"notify\": Kubernetes has no sd_notify; the pod is ready once started")
    live = probe_of(spec, spec.health)
    if live is not None:
        mapped = _probe(live, spec, out, "health")
        if mapped:
            container["livenessProbe"] = {**mapped, "initialDelaySeconds": int(live.start_period)}
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    container["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False}
    return container


def _resources(spec: AppSpec) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if "cpu" in spec.thresholds:
        requests["cpu"] = f"{max(1, int(spec.thresholds['cpu'] * 10))}m"  # % of one core -> millicores
    if "process_memory" in spec.thresholds:
        requests["memory"] = str(int(spec.thresholds["process_memory"]))
    resources: dict[str, Any] = {"requests": requests} if requests else {}
    if spec.max_memory_restart:
        resources["limits"] = {"memory": str(spec.max_memory_restart)}
    return resources


def _workload(spec: AppSpec, options: Options, image: str, out: Export) -> dict[str, Any]:
    pod: dict[str, Any] = {"metadata": {"labels": _labels(spec)},
                           "spec": {"terminationGracePeriodSeconds": seconds(spec.kill_timeout) + 5,
                                    "containers": [_container(spec, options, image, out)]}}
    if spec.autorestart == "never":  # runs once: a Job
        pod["spec"]["restartPolicy"] = "Never"
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": spec.name, "labels": _labels(spec)},
                "spec": {"backoffLimit": 0, "template": pod}}
    if spec.autorestart == "on-failure":
        out.cannot(spec, "autorestart = \"on-failure\": a Deployment restarts its pods always")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": spec.name, "labels": _labels(spec)},
            "spec": {"replicas": spec.instances, "selector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "template": pod}}


def _service(spec: AppSpec, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": spec.name, "labels": _labels(spec)},
            "spec": {"selector": {"app.kubernetes.io/name": spec.name},
                     "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}]}}


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    image = options.image or f"corral-{specs[0].name}"
    documents: list[dict[str, Any]] = []
    for spec in specs:
        documents.append(_workload(spec, options, image, out))
        port = listen_port(spec)
        if port and spec.autorestart != "never":
            documents.append(_service(spec, port))
        loopback_note(out, spec, "the Service")
        if spec.depends_on:
            out.cannot(spec, f"depends_on {', '.join(spec.depends_on)}: Kubernetes starts pods in any order "
                             "(the readiness probes gate traffic)")
        if spec.user or spec.group:
            out.cannot(spec, "user/group: the pod runs as uid 10001")
        report_unmapped(out, spec, MAPPED, "kubernetes")
    text = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
    out.files["kubernetes.yaml"] = f"# Written by `corral export kubernetes` (image: corral export docker)\n{text}"
    return out
