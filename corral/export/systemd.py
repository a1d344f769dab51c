"""systemd units: one for corral itself (``corral startup``) and, per app, a template unit
``corral-<app>@.service`` (``%i``: the instance number) with a ``corral-<app>.target`` that
wants every instance (``corral export systemd FILE``).

The corral unit runs the daemon in the foreground as ``Type=notify`` (it says ``READY=1`` once the
saved apps are restored, and pings the watchdog), with ``KillMode=process``: stopping the unit
sends SIGTERM to the daemon alone, which stops every app gracefully within its kill_timeout; a
daemon that *crashes* leaves its apps running (``Delegate=yes`` keeps their cgroups) and the
restarted daemon adopts them (spec S7).  Core dumps off (``LimitCORE=0``).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.config.command import resolve_argv
from corral.config.spec import AppSpec
from corral.control.client import DAEMON_MALLOC  # the daemon's memory settings: the same for a booted one
from corral.export import Export, Options, plain_env, report_unmapped

RESTART = {"always": "always", "on-failure": "on-failure", "never": "no"}


def quote(word: str) -> str:
    """One ExecStart= word: specifiers (%) and variables ($) taken literally, quoted if needed."""
    text = word.replace("%", "%%").replace("$", "$$")
    if text and not any(c in text for c in ' \t"\'\\;') and text.isprintable():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def assignment(key: str, value: str, specifiers: bool = False) -> str:
    """``Environment="KEY=VALUE"`` with the value taken literally (SPECIFIERS: ``%i`` & co expand)."""
    text = f"{key}={value}" if specifiers else f"{key}={value}".replace("%", "%%")
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{text}"'


def span(value: float) -> str:
    """A systemd time span: whole milliseconds."""
    return f"{max(0, int(round(value * 1000)))}ms"


@dataclass(frozen=True)
class CorralUnit:
    """What the unit that runs corral's daemon needs to know."""

    python: str  # absolute path of corral's interpreter (its venv's): no PATH lookups at boot
    home: str  # CORRAL_HOME, absolute
    user: str | None = None  # a system unit runs the daemon as this user (None: root)
    system: bool = True  # False: a user unit (systemctl --user)
    stop_timeout: float = 90.0  # TimeoutStopSec: the graceful stop of every app (lifecycle.order.stop_budget)
    watchdog: float = 30.0  # WatchdogSec (0: none)


def corral_unit(unit: CorralUnit) -> str:
    log = f"{unit.home}/daemon.log"
    lines = [
        "# Written by `corral startup`; `corral unstartup` removes it.",
        "[Unit]",
        f"Description=corral process manager (CORRAL_HOME={unit.home})",
        "Documentation=https://github.com/corral/corral#start-at-boot",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
    ]
    if unit.system and unit.user:
        lines.append(f"User={unit.user}")
    lines += [
        assignment("CORRAL_HOME", unit.home),
        *(assignment(k, v) for k, v in DAEMON_MALLOC.items()),
        "ExecStart=" + " ".join(quote(w) for w in (unit.python, "-OO", "-X", "no_debug_ranges",
                                                    "-m", "corral.daemon", "--resurrect")),
        "Restart=on-failure",
        "RestartSec=1s",
        # SIGTERM to the daemon only: it stops the apps itself, gracefully; a crash leaves them up
        "KillMode=process",
        "Delegate=yes",
        "TimeoutStartSec=120s",
        f"TimeoutStopSec={span(unit.stop_timeout)}",
    ]
    if unit.watchdog:
        lines.append(f"WatchdogSec={span(unit.watchdog)}")
    lines += [
        "LimitNOFILE=65536",
        "LimitCORE=0",
        f"StandardOutput=append:{log}",
        f"StandardError=append:{log}",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if unit.system else 'default.target'}",
        "",
    ]
    return "\n".join(lines)


#: settings the app units carry (the others changed from their defaults are reported)
MAPPED = frozenset({
    "script", "cmd", "args", "interpreter", "interpreter_args", "venv", "instances", "env", "env_file",
    "autorestart", "restart_delay", "kill_timeout", "stop_signal", "stop_exit_codes", "out_file",
    "error_file", "log_file", "user", "group", "limits", "ready", "watchdog", "depends_on",
    "max_memory_restart", "shell", "max_restarts", "min_uptime", "wait_ready", "listen", "health", "thresholds",
    "increment_var", "merge_logs", "ready_timeout",
})


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    for spec in specs:
        out.files[f"corral-{spec.name}@.service"] = app_unit(out, spec, options)
        out.files[f"corral-{spec.name}.target"] = app_target(spec)
        report_unmapped(out, spec, MAPPED, "systemd")
        _partial(out, spec)
    return out


def app_target(spec: AppSpec) -> str:
    wants = " ".join(f"corral-{spec.name}@{i}.service" for i in range(spec.instances))
    return "\n".join([
        "[Unit]",
        f"Description={spec.name} (corral export: {spec.instances} instance(s))",
        f"Wants={wants}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def app_unit(out: Export, spec: AppSpec, options: Options) -> str:
    notify = (spec.ready or {}).get("kind") == "notify" or spec.wait_ready
    deps = " ".join(f"corral-{d}.target" for d in spec.depends_on)
    unit = ["[Unit]", f"Description={spec.name} instance %i (corral export)", f"PartOf=corral-{spec.name}.target",
            "After=network.target" + (f" {deps}" if deps else "")]
    if deps:
        unit.append(f"Requires={deps}")
    if spec.max_restarts is None:
        unit.append("StartLimitIntervalSec=0")
    else:  # corral counts restarts of runs shorter than min_uptime; systemd counts starts in a window
        unit += [f"StartLimitBurst={spec.max_restarts + 1}",
                 f"StartLimitIntervalSec={span((spec.max_restarts + 1) * (spec.min_uptime + spec.restart_delay + 1))}"]
    service = ["", "[Service]", f"Type={'notify' if notify else 'exec'}"]
    if notify:
        service += ["NotifyAccess=main", f"TimeoutStartSec={span(spec.ready_timeout)}"]
    if spec.watchdog:
        service.append(f"WatchdogSec={span(spec.watchdog)}")
    service += [f"WorkingDirectory={spec.cwd}"]
    if spec.user:
        service.append(f"User={spec.user}")
    if spec.group:
        service.append(f"Group={spec.group}")
    if spec.env_file:
        service.append(f"EnvironmentFile={spec.env_file}")
    service.append(assignment("CORRAL_INSTANCE", "%i", specifiers=True))
    service += [assignment(k, v) for k, v in sorted(plain_env(out, spec).items())]
    service.append("ExecStart=" + " ".join(quote(w) for w in resolve_argv(spec, options.python)))
    service += [f"Restart={RESTART[spec.autorestart]}", f"RestartSec={span(max(spec.restart_delay, 0.1))}",
                f"KillSignal={spec.stop_signal}", "KillMode=control-group", f"TimeoutStopSec={span(spec.kill_timeout)}"]
    if spec.stop_exit_codes:
        service.append("SuccessExitStatus=" + " ".join(str(c) for c in spec.stop_exit_codes))
    if spec.max_memory_restart:
        service.append(f"MemoryMax={spec.max_memory_restart}")
    service += _limits(spec)
    service += _logs(spec)
    return "\n".join(unit + service + ["", "[Install]", f"WantedBy=corral-{spec.name}.target", ""])


def _limits(spec: AppSpec) -> list[str]:
    lines = []
    for name, (soft, hard) in sorted(spec.limits.items()):
        pair = ["infinity" if v is None else str(v) for v in (soft, hard)]
        lines.append(f"Limit{name.upper()}={pair[0] if pair[0] == pair[1] else ':'.join(pair)}")
    if "core" not in spec.limits:
        lines.append("LimitCORE=0")  # corral's rule: no core dumps unless an app asks
    return lines


def _logs(spec: AppSpec) -> list[str]:
    lines = []
    if spec.out_file:
        lines.append(f"StandardOutput=append:{spec.out_file}")
    if spec.error_file:
        lines.append(f"StandardError=append:{spec.error_file}")
    elif spec.out_file and spec.merge_logs:
        lines.append("StandardError=inherit")
    return lines


def _partial(out: Export, spec: AppSpec) -> None:
    """Settings mapped only in part: said so, one line each."""
    ready = spec.ready or {}
    if ready and ready.get("kind") != "notify":
        out.cannot(spec, f"ready ({ready.get('kind')} probe): systemd has no probes; the unit is "
                         "Type=exec (started = ready)")
    if spec.listen:
        out.cannot(spec, "listen: corral's shared socket is not generated; each instance must bind "
                         f"{', '.join(spec.listen)} itself (SO_REUSEPORT) or use a .socket unit")
    if spec.instances > 1 and spec.increment_var:
        out.cannot(spec, f"increment_var {spec.increment_var}: systemd cannot add %i to a number; "
                         "use CORRAL_INSTANCE")
    if spec.health:
        out.cannot(spec, "health: systemd has no liveness probes (only WatchdogSec=, for apps that send WATCHDOG=1)")
    if spec.thresholds:
        out.cannot(spec, "thresholds: alerts are corral's; systemd has none (MemoryMax= comes from max_memory_restart)")
    if spec.log_file not in (None, False):
        out.cannot(spec, "log_file: systemd writes stdout and stderr apart (StandardOutput/StandardError)")
