"""corral's one exception tree: every error corral raises on purpose is a :class:`CorralError`.

::

    CorralError
    ├── UserMistake          the caller's mistake: CLI exit status 2, protocol code "user_error"
    │   ├── config.errors.ConfigError, config.convert.Invalid     a bad config file or value
    │   ├── cli.parser.UsageError                                 a bad command line
    │   ├── daemon.ops.apps.UserError                             a bad request (unknown app...)
    │   ├── lifecycle.order.CycleError                            depends_on forms a cycle
    │   └── health.probes.ProbeError                              a probe that cannot work
    ├── OperationFailed      a valid request that did not succeed: exit status 1, code "failed"
    │   ├── control.client.DaemonUnavailable                      no daemon answers
    │   ├── process.spawner.SpawnError, process.listeners.BindError
    │   └── daemon.ops.reload.ReloadFailed
    ├── control.protocol.ProtocolError, RemoteError               the control protocol itself
    └── logs.redactguard.RedactionTimeout                         internal: a redaction out of time

Each class lives next to the code that raises it; this module holds only the roots, so it
imports nothing and every layer (the pure ``lifecycle/`` included) may import it.  The app
library (``corral.app``) does not: it is standalone and raises only standard exceptions.
"""

from __future__ import annotations

__all__ = ["CorralError", "UserMistake", "OperationFailed"]


class CorralError(Exception):
    """Base of every error corral raises on purpose."""


class UserMistake(CorralError):
    """The caller's mistake: a bad command line, config file, target or request (exit status 2)."""


class OperationFailed(CorralError):
    """A valid request that did not succeed (a stop that did not finish in time...): exit status 1."""
