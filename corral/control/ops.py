"""The control operations, declared once: their arguments (types, bounds), the CLI verbs that send
them, whether they wait (long) or stream, and how long the CLI waits for an answer.

The daemon checks every request against :data:`OPS` before a handler sees it
(:func:`check_request`, in ``daemon.server`` and ``DaemonCore.call``): a raw-socket client gets
one clear error reply, never a traceback.  The specs a ``start``, ``restart`` or ``reload`` carries
are checked value by value by their handler (``AppSpec.from_dict``); here only their shape.

Timeouts: the CLI waits at most ``timeout`` seconds (30, or ``CORRAL_TIMEOUT``) for each message
of a reply.  While a ``long`` operation waits for processes (a stop's ``kill_timeout``, a reload's
readiness), the daemon sends a keep-alive ``progress`` message every :data:`KEEPALIVE` seconds, so
a daemon that works is never taken for one that hangs, and one that hangs is found within the
timeout; the operation's own deadlines (``kill_timeout`` + 10 s, ``ready_timeout`` ...) bound it.

Standard library only, no typing at run time: the CLI imports this on every daemon call.
"""

from __future__ import annotations

from corral.config import limits
from corral.control.protocol import BAD_REQUEST
from corral.exceptions import UserMistake

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 30.0  # seconds the CLI waits for each message (cli/fast.py has its own copy)
TIMEOUT_VAR = "CORRAL_TIMEOUT"
KEEPALIVE = 1.0  # seconds between keep-alives while a long operation runs or a stream is quiet
MIN_TIMEOUT = 2.0  # CORRAL_TIMEOUT below this is taken as this (keep-alives come every second)
MAX_TARGET = 256  # characters of a target (names are at most 64)
MAX_APPS = 4096  # specs in one request
MAX_ENV = limits.MAX_ENV  # variables in a base environment
MAX_VALUE = limits.MAX_STRING  # characters of one variable (Linux: MAX_ARG_STRLEN)
MAX_LINES = 1_000_000  # events, history
MAX_ONLY = 20000  # characters of a reload's instance list


class BadArgs(UserMistake):
    """A request that does not fit its operation's declaration: ``code`` and one-line ``message``."""

    def __init__(self, message: str, code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Arg:
    """One argument: ``kind`` is target | text | int | bool | count | specs | env | host."""

    __slots__ = ("name", "kind", "low", "high", "required", "doc")

    def __init__(self, name: str, kind: str, doc: str, *, low: int = 0, high: int = 0,
                 required: bool = False) -> None:
        self.name, self.kind, self.doc = name, kind, doc
        self.low, self.high, self.required = low, high, required


class Op:
    __slots__ = ("name", "args", "verbs", "long", "stream", "doc")

    def __init__(self, name: str, args: tuple[Arg, ...], verbs: tuple[str, ...], doc: str, *,
                 long: bool = False, stream: bool = False) -> None:
        self.name, self.args, self.verbs, self.doc = name, args, verbs, doc
        self.long, self.stream = long, stream


def _target(required: bool = True) -> Arg:
    return Arg("target", "target", 'an app name, an id, a namespace or "all"', required=required)


_SPECS = Arg("apps", "specs", "app specs (JSON dicts, as `config.load` makes them)", high=MAX_APPS)
_ENV = Arg("base_env", "env", "the environment the apps start from", high=MAX_ENV)
_NONE: tuple[Arg, ...] = ()
_BY = Arg("by", "text", 'who or what asks, for the timeline (default "corral VERB")', high=80)
_JOB = Arg("name", "text", "a job's name", high=128, required=True)

OPERATIONS: tuple[Op, ...] = (
    Op("ping", _NONE, ("ping",), "the daemon's pid, version, apps and event bus"),
    Op("ls", _NONE, ("ls", "list", "status", "ps", "l", "jlist", "prettylist"), "one row per instance"),
    Op("start", (_target(False), _SPECS, _ENV,
                 Arg("derived", "bool", "the specs' names were derived from their commands (no --name): an app "
                     "of that name running another command is refused, not replaced"),
                 Arg("host", "host", "the file's daemon-wide settings (monitor_interval, thresholds ...)")),
       ("start", "startOrRestart", "startOrReload"), "start specs, or existing apps by target", long=True),
    Op("stop", (_target(), _BY), ("stop",), "stop apps gracefully", long=True),
    Op("restart", (_target(), _SPECS, _ENV, _BY), ("restart",), "restart apps (new specs with --update-env)",
       long=True),
    Op("reload", (_target(), Arg("parallel", "int", "instances replaced at a time", low=1, high=-1),
                  _SPECS, _ENV,
                  Arg("only", "text", "the instance numbers to replace, comma-separated (a deploy's canary)",
                      high=MAX_ONLY)), ("reload",), "rolling reload", long=True),
    Op("scale", (_target(), Arg("count", "count", "N, +N or -N", required=True)), ("scale",),
       "set the number of instances", long=True),
    Op("delete", (_target(),), ("delete", "del"), "stop and forget apps", long=True),
    Op("signal", (_target(), Arg("signal", "text", "a signal name or number", high=32, required=True)),
       ("signal", "sendSignal"), "send a signal to every process of apps"),
    Op("describe", (_target(),), ("describe", "desc", "show", "info"), "everything about apps"),
    Op("reset", (_target(),), ("reset",), "set apps' restart counters to 0"),
    Op("env", (_target(),), ("env",), "the environment of apps' instances (secret values masked)"),
    Op("events", (_target(False), Arg("limit", "int", "how many events (--lines)", high=MAX_LINES)),
       ("events",), "stored events"),
    Op("subscribe", (_target(False), Arg("history", "int", "stored events sent first", high=MAX_LINES),
                     Arg("all", "bool", "also the events not stored"),
                     Arg("maxsize", "int", "the subscription's queue", low=1, high=1000)),
       ("events --follow",), "events as they happen", stream=True),
    Op("save", _NONE, ("save", "dump"), "write dump.json"),
    Op("resurrect", _NONE, ("resurrect",), "start the apps of dump.json", long=True),
    Op("kill", _NONE, ("kill",), "stop every app, then the daemon", long=True),
    Op("log_paths", (_target(False),), ("logs",), "the log files of apps"),
    Op("flush", (_target(False),), ("flush",), "empty apps' log files", long=True),
    Op("metrics", (_target(False), Arg("since", "int", "seconds of history", high=86400 * 366)),
       ("metrics",), "the latest samples and their history"),
    Op("replace", (_target(), Arg("instance", "int", "the instance", high=-1, required=True),
                   Arg("reason", "text", "why, for the events", high=500, required=True), _BY),
       (), "replace one instance gracefully (new first when the app has a socket)", long=True),
    Op("alerts", (Arg("limit", "int", "how many alerts (--lines)", high=10000),), ("alerts",),
       "recent alerts and their delivery"),
    Op("deploy_event", (_target(), Arg("step", "text", "the deploy's step", high=32, required=True),
                        Arg("message", "text", "what happened, one line", high=2000, required=True),
                        Arg("release", "text", "the release", high=100),
                        Arg("failed", "bool", "the deploy failed (an alert)")),
       (), "record a step of `corral deploy` in the events (a failed one alerts)"),
    Op("alerts_test", _NONE, ("alerts test",), "send a test alert through every sink", long=True),
    Op("jobs", _NONE, ("jobs",), "every job: its schedule, next run, last result, running now"),
    Op("jobs_run", (_JOB,), ("jobs run",), "run a job now, its output streamed (progress messages)", long=True),
    Op("jobs_history", (_JOB, Arg("limit", "int", "how many runs (--lines)", high=10000)), ("jobs history",),
       "a job's last runs"),
    Op("jobs_pause", (_JOB,), ("jobs pause",), "a job's triggers skip until resumed"),
    Op("jobs_resume", (_JOB,), ("jobs resume",), "a paused job runs on its schedule again"),
    Op("profile", (_target(), Arg("what", "text", "cpu, stack or heap", high=8, required=True),
                   Arg("instance", "int", "the instance (default: the first running)", high=-1),
                   Arg("duration", "int", "seconds of CPU profile", low=1, high=3600),
                   Arg("format", "text", "speedscope, svg or cpuprofile", high=16)),
       ("profile",), "a CPU profile, every thread's stack or a heap snapshot of a running instance", long=True),
)
OPS: dict[str, Op] = {op.name: op for op in OPERATIONS}


def timeout_for(op: str, environ: dict[str, str] | None = None) -> float:
    """Seconds the CLI waits for each message of OP's reply: ``CORRAL_TIMEOUT`` when set (a
    number of seconds, at least :data:`MIN_TIMEOUT`), else :data:`DEFAULT_TIMEOUT`."""
    import os

    raw = (os.environ if environ is None else environ).get(TIMEOUT_VAR, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        value = DEFAULT_TIMEOUT
    return max(MIN_TIMEOUT, value) if 0 < value <= 86400 else DEFAULT_TIMEOUT


def check_request(op_name: str, args: dict[str, Any], max_instances: int = limits.DEFAULT_MAX_INSTANCES) -> None:
    """Raise :class:`BadArgs` unless ARGS fit OP's declaration (unknown ones included).
    A null argument counts as not given."""
    op = OPS[op_name]
    known = {arg.name: arg for arg in op.args}
    for name in args:
        if name not in known:
            takes = ", ".join(known) or "no arguments"
            raise BadArgs(f"{op_name}: unknown argument {_short(name)} ({op_name} takes {takes})")
    for arg in op.args:
        value = args.get(arg.name)
        if value is None:
            if arg.required:
                what = "a target" if arg.kind == "target" else f"{arg.name!r}"
                raise BadArgs(f"{op_name}: {what} is required ({arg.doc})", "user_error")
            continue
        problem = _problem(arg, value, max_instances)
        if problem is not None:  # an environment or specs are not shown: they hold secrets
            shown = "(not shown)" if arg.kind in ("env", "specs", "host") else _short(value)
            raise BadArgs(f"{op_name}: {arg.name}: {shown} {problem}")


def _problem(arg: Arg, value: Any, max_instances: int) -> str | None:
    kind = arg.kind
    if kind in ("target", "text"):
        limit = MAX_TARGET if kind == "target" else arg.high
        if not isinstance(value, str) or not value or len(value) > limit or "\0" in value:
            return f"is not {arg.doc} (a string of 1 to {limit} characters)"
    elif kind == "int":
        high = max_instances if arg.high == -1 else arg.high
        if not isinstance(value, int) or isinstance(value, bool) or not arg.low <= value <= high:
            return f"is not a whole number from {arg.low} to {high} ({arg.doc})"
    elif kind == "bool":
        if not isinstance(value, bool):
            return "is not true or false"
    elif kind == "count":
        if not (isinstance(value, str) and len(value) <= 32) and \
                not (isinstance(value, int) and not isinstance(value, bool)):
            return f"is not a number of instances ({arg.doc})"
    elif kind == "specs":
        if not isinstance(value, list) or len(value) > arg.high or not all(isinstance(v, dict) for v in value):
            return f"is not a list of at most {arg.high} app specs (JSON objects)"
    elif kind == "env":
        return env_problem(value, arg.high)
    elif kind == "host":
        if not isinstance(value, dict) or len(value) > 32:
            return "is not a table of daemon-wide settings"
    return None


def env_problem(value: Any, high: int) -> str | None:
    if not isinstance(value, dict) or len(value) > high:
        return f"is not an environment (an object of at most {high} NAME: value strings)"
    for key, item in value.items():
        if not key or "=" in key or "\0" in key or len(key) > MAX_VALUE:
            return f"has a variable name that is not one ({_short(key)})"
        if not isinstance(item, str) or "\0" in item or len(item) > MAX_VALUE:
            return f"has a value for {_short(key)} that is not a string the OS can pass"
    return None


def _short(value: Any) -> str:
    """A value in a message: its JSON, cut short (what a client sent may be huge)."""
    import json

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."

#: The operations that only read: a read-only web token may send them (every other one, and any
#: operation added later and not named here, needs the full token).
READ_ONLY: frozenset[str] = frozenset({"ping", "ls", "describe", "events", "subscribe", "log_paths", "metrics",
                                       "alerts", "jobs"})
#: Operations the HTTP API does not offer: ``kill`` would stop the web process with the daemon;
#: ``subscribe`` is served as Server-Sent Events (``/api/stream``).
NOT_OVER_HTTP: frozenset[str] = frozenset({"kill", "subscribe"})
