"""The only module that creates processes: argv, a fresh environment, pipes, a new group.

Uses ``subprocess.Popen``'s keyword arguments (``process_group``, ``user``,
``group``, ``close_fds``) rather than a ``preexec_fn``, so nothing runs between
fork and exec.  The caller reaps the child (see ``reaper``): the ``Popen``
object is kept alive until then and its ``returncode`` is set by hand so it
never waits on its own.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Any

from corral.exceptions import OperationFailed
from corral.logs.pipe import make_pipe
from corral.process.identity import Identity, IdentityError
from corral.process.identity import resolve as resolve_identity

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec


#: Variables of systemd's protocols (and of Node's IPC channel) that must never leak from the
#: daemon's own environment (``config.environ.PROTOCOL_VARS``).
INHERITED_PROTOCOL_VARS = frozenset({"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                                     "WATCHDOG_PID", "NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE",
                                     "NODE_UNIQUE_ID", "CORRAL_NODE_CLUSTER", "CORRAL_NODE_LISTEN",
                                     "CORRAL_NODE_INFERRED"})


class SpawnError(OperationFailed):
    """The program could not be started; the message says why, in one line."""


@dataclass
class Child:
    popen: subprocess.Popen[bytes]
    stdout: int
    stderr: int
    readers: tuple[Any, ...] = ()

    @property
    def pid(self) -> int:
        return self.popen.pid


def build_env(spec: AppSpec, index: int, base_env: dict[str, str], who: Identity | None = None) -> dict[str, str]:
    """The environment of one start, built afresh from the config every time.

    Order: the environment the app was started from, then ``env_file`` (read
    now, so edits apply at the next start), then ``env``, then corral's own.
    An app run as another user (``who``) starts from a clean environment instead
    (:func:`corral.config.environ.for_other_user`) with that user's HOME, USER,
    LOGNAME and SHELL.
    """
    if who is not None and who.uid is not None:
        from corral.config.environ import for_other_user

        env = {**for_other_user(base_env, spec.env_inherit), **who.env()}
    else:
        env = {k: v for k, v in base_env.items() if k not in INHERITED_PROTOCOL_VARS}
    from_file: dict[str, str] = {}
    if spec.env_file:
        from corral.config.envfile import read_env_file

        try:
            from_file = read_env_file(spec.env_file)
        except Exception as exc:  # the env file's own error names the file and line
            raise SpawnError(f"env_file: {exc}") from None
    env.update(from_file)
    env.update(spec.env)
    if "PYTHONUNBUFFERED" not in from_file and "PYTHONUNBUFFERED" not in spec.env:
        env["PYTHONUNBUFFERED"] = "1"
    env["CORRAL_APP"] = spec.name
    env["CORRAL_INSTANCE"] = str(index)
    env["NODE_APP_INSTANCE"] = str(index)
    var = spec.increment_var
    if var:
        try:
            env[var] = str(int(env.get(var, "0")) + index)
        except ValueError:
            raise SpawnError(f"increment_var: {var}={env.get(var)!r} is not a number") from None
    return env


def socket_env(name: str, count: int) -> dict[str, str]:
    """systemd's socket-activation variables (LISTEN_PID is set by the exec shim)."""
    names = [name] if count == 1 else [f"{name}.{i}" for i in range(count)]
    return {"LISTEN_FDS": str(count), "LISTEN_FDNAMES": ":".join(names)}


def spawn(argv: list[str], env: dict[str, str], spec: AppSpec, pass_fds: list[int] | tuple[int, ...] = (),
          who: Identity | None = None) -> Child:
    """Start ``argv`` in its own process group with stdout/stderr on fresh pipes.

    ``pass_fds`` (listening sockets) are inherited at their numbers; the exec
    shim moves them to 3, 4, ...  ``who``: the identity to run as (resolved from
    ``spec`` when not given): uid, gid and supplementary groups all dropped.
    """
    identity = _identity(spec, who)
    out_r, out_w = make_pipe()
    err_r, err_w = make_pipe()
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            cwd=spec.cwd or None,
            env=env,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            process_group=0,
            **identity,
        )
    except OSError as exc:
        os.close(out_r)
        os.close(err_r)
        target = exc.filename if exc.filename else argv[0]
        raise SpawnError(f"cannot run {argv[0]!r}: {exc.strerror or exc} ({target})") from None
    except (ValueError, subprocess.SubprocessError, KeyError) as exc:
        os.close(out_r)
        os.close(err_r)
        raise SpawnError(f"cannot run {argv[0]!r}: {exc}") from None
    finally:
        os.close(out_w)
        os.close(err_w)
    return Child(popen, out_r, err_r)


def _identity(spec: AppSpec, who: Identity | None) -> dict[str, Any]:
    if who is None:
        try:
            who = resolve_identity(spec)
        except IdentityError as exc:
            raise SpawnError(str(exc)) from None
    return {} if who is None else who.popen_kwargs()
