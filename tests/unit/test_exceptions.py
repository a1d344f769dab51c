"""One exception tree: every exception class corral defines (outside the standalone app library)
derives from ``corral.exceptions.CorralError``, on the branch that gives its exit status."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import corral
from corral.exceptions import CorralError, OperationFailed, UserMistake


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(corral.__path__, "corral."):
        if info.name.endswith("__main__") or info.name.startswith("corral.app"):
            continue  # __main__ runs the program; app/ is standalone (stdlib only)
        names.append(info.name)
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name:
                found[f"{name}.{attr}"] = obj
    return found


CLASSES = _exception_classes()

USER_MISTAKES = {
    "corral.config.errors.ConfigError", "corral.config.convert.Invalid", "corral.cli.parser.UsageError",
    "corral.daemon.ops.apps.UserError", "corral.lifecycle.order.CycleError", "corral.health.probes.ProbeError",
}
FAILURES = {
    "corral.control.client.DaemonUnavailable", "corral.process.spawner.SpawnError",
    "corral.process.listeners.BindError", "corral.daemon.ops.reload.ReloadFailed",
}


def test_the_walk_finds_the_known_exceptions() -> None:
    """Guards the next test against passing on an empty walk."""
    assert USER_MISTAKES | FAILURES | {"corral.control.protocol.ProtocolError",
                                       "corral.control.protocol.RemoteError"} <= set(CLASSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_exception_class_is_a_corral_error(name: str) -> None:
    assert issubclass(CLASSES[name], CorralError), f"{name} does not derive from CorralError"


@pytest.mark.parametrize("name", sorted(USER_MISTAKES))
def test_user_mistakes(name: str) -> None:
    assert issubclass(CLASSES[name], UserMistake) and not issubclass(CLASSES[name], OperationFailed)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failures(name: str) -> None:
    assert issubclass(CLASSES[name], OperationFailed) and not issubclass(CLASSES[name], UserMistake)


def test_old_import_paths_still_work() -> None:
    from corral.daemon.ops.apps import OperationFailed as from_ops

    assert from_ops is OperationFailed


def test_the_cli_exit_status_follows_the_branch(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.cli import main as cli
    from corral.config.errors import ConfigError
    from corral.control.client import DaemonUnavailable

    def raiser(exc: Exception):  # type: ignore[no-untyped-def]
        def command(args: object) -> int:
            raise exc
        return command

    monkeypatch.setitem(cli.COMMANDS, "ping", raiser(ConfigError("c.toml: apps[0]: bad")))
    assert cli.main(["ping"]) == 2
    monkeypatch.setitem(cli.COMMANDS, "ping", raiser(DaemonUnavailable("no daemon is running")))
    assert cli.main(["ping"]) == 1
    assert capsys.readouterr().err == "corral: c.toml: apps[0]: bad\ncorral: no daemon is running\n"
