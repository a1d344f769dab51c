"""Compile the daemon's modules first thing, when Python would compile them from source anyway.

The daemon runs with ``-OO``, and installers write ``.pyc`` files for the default level only, so
where Python may not cache bytecode (``PYTHONDONTWRITEBYTECODE``, a read-only install) every
module is compiled as it is imported.  A compile needs ~50 times the source's size for a moment
(supervisor.py: ~1 MB), and one that comes late in the start-up, on top of asyncio and of the
modules loaded before it, leaves holes in the heap that are never given back: ~0.5 MB of the
daemon's resident memory.  Compiled here, before anything else is loaded, the same work leaves
nothing behind: what is loaded afterwards fills the holes.

:data:`DAEMON_MODULES` is what a daemon running plain apps imports (a test checks it against a
real daemon).  Their code goes to the import system through a finder placed first on
``sys.meta_path``, which leaves once every one of them is imported.  Where Python can cache
bytecode, nothing is done here: the first daemon writes the ``.pyc`` files, the next ones load them.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder, SourceFileLoader
from importlib.util import cache_from_source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import CodeType

#: Every module a daemon running apps with default settings imports, the ones loaded at the first
#: start included; not ``corral``, ``corral.daemon`` and this one (loaded already), nor the
#: redactor's private helpers (corral names only the public ``corral.app.redact``; they are small).
DAEMON_MODULES = (
    "corral.app", "corral.app.redact", "corral.clock", "corral.config",
    "corral.config.addresses", "corral.config.command", "corral.config.environ", "corral.config.plan",
    "corral.config.policies", "corral.config.spec", "corral.control", "corral.control.protocol",
    "corral.daemon.bus", "corral.daemon.core", "corral.daemon.main", "corral.daemon.ops",
    "corral.daemon.ops.apps", "corral.daemon.ops.mutation", "corral.daemon.ops.ordering",
    "corral.daemon.readiness", "corral.daemon.recovery", "corral.daemon.server", "corral.daemon.slots",
    "corral.daemon.store", "corral.daemon.supervisor", "corral.daemon.timers", "corral.events",
    "corral.exceptions", "corral.lifecycle", "corral.lifecycle.app", "corral.lifecycle.exits",
    "corral.lifecycle.instance", "corral.lifecycle.policy", "corral.logs", "corral.logs.files",
    "corral.logs.format", "corral.logs.pipe", "corral.logs.rotation", "corral.logs.safeopen",
    "corral.logs.sinks", "corral.paths", "corral.process", "corral.process.identity",
    "corral.process.listeners", "corral.process.listenwatch", "corral.process.procfs",
    "corral.process.procgroups", "corral.process.reaper", "corral.process.sdnotify",
    "corral.process.spawner", "corral.process.usage",
    # hardening (issue 8) and the redaction pre-filter (issue 10)
    "corral.config.limits", "corral.config.speccheck",
    "corral.control.ops", "corral.daemon.logthrottle", "corral.daemon.spawns", "corral.process.cgroups",
    "corral.process.limits", "corral.process.tracking",
    "corral.daemon.daemonlog",
    # memory: one shared implementation of the many small frozen types
    "corral.structs",
    # lines the log files did not get, counted (issue 8)
    "corral.logs.lines",
    # watch and restart: the hook only (corral.daemon.watching loads with the first app that watches)
    "corral.daemon.watchhook",
    # monitoring, on by default (issue 11)
    "corral.monitor", "corral.monitor.history", "corral.monitor.rules", "corral.monitor.sampler",
    "corral.monitor.service",
    # jobs: the on-demand hook only (corral.jobs.service loads with the first job or maintenance run)
    "corral.jobs",
)

def with_private_helpers(names: Sequence[str]) -> tuple[str, ...]:
    """NAMES plus the private helper modules (``_*.py``) of the public app library, found by
    listing its folder: corral's own modules never name them (only ``corral.app.redact``)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app")
    try:
        helpers = sorted(f[:-3] for f in os.listdir(folder) if f.startswith("_") and f.endswith(".py")
                         and f != "__init__.py")
    except OSError:
        helpers = []
    return (*names, *(f"corral.app.{h}" for h in helpers))


_codes: dict[str, CodeType] = {}  # source path -> its code, until the module is imported
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def precompile(names: Sequence[str] = DAEMON_MODULES) -> int:
    """Compile the modules of ``names`` (and the app library's private helpers) Python would
    compile at import; returns how many."""
    for name in with_private_helpers(names):
        if name in sys.modules:
            continue
        path = source_path(name)
        if path is None or not _compiled_at_import(path):
            continue
        try:
            with open(path, "rb") as f:
                _codes[path] = compile(f.read(), path, "exec", dont_inherit=True)
        except (OSError, SyntaxError, ValueError):
            continue  # the import reports it, as it would have
    if _codes and _Finder not in sys.meta_path:
        sys.meta_path.insert(0, _Finder)
    return len(_codes)


def source_path(name: str) -> str | None:
    base = os.path.join(os.path.dirname(_ROOT), *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _compiled_at_import(path: str) -> bool:
    """Whether importing ``path`` would compile it: no fresh ``.pyc`` for this interpreter's
    optimization level, and none may be written (else the first daemon writes it)."""
    try:
        cache = cache_from_source(path)
    except (NotImplementedError, ValueError):  # no bytecode cache at all
        return True
    try:
        if os.stat(cache).st_mtime >= os.stat(path).st_mtime:
            return False
    except OSError:
        pass
    if sys.dont_write_bytecode:
        return True
    folder = os.path.dirname(cache)
    return not os.access(folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK)


class _Loader(SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType | None:
        code = _codes.pop(self.path, None)
        if not _codes and _Finder in sys.meta_path:
            sys.meta_path.remove(_Finder)
        return code if code is not None else super().get_code(fullname)


class _Finder:
    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        if not name.startswith("corral."):
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.origin not in _codes or type(spec.loader) is not SourceFileLoader:
            return None  # the import system's own finders, as usual
        spec.loader = _Loader(name, spec.origin)
        return spec
