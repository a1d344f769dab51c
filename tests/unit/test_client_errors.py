"""The client's one-line errors for a socket or a home the system refuses (another user's), and
the CLI's last net for any other OS error: never a traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from corral.cli.main import COMMANDS, main
from corral.control import client as client_mod
from corral.control.client import Client, DaemonUnavailable
from corral.paths import Home


def test_a_socket_that_refuses_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(self: socket.socket, address: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    home = Home(str(tmp_path))
    with pytest.raises(DaemonUnavailable) as caught:
        Client(home).connect()
    assert str(caught.value) == (f"cannot connect to {home.socket}: permission denied (the daemon of another user? "
                                 "set CORRAL_HOME to a home of your own)")


def test_a_home_of_another_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = Home(str(tmp_path / "theirs"))

    def refuse() -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Home, "ensure", lambda self: refuse())
    monkeypatch.setattr(client_mod, "_whose", lambda path: " (owned by uid 0, not you: set CORRAL_HOME to a folder "
                                                           "of your own)")
    with pytest.raises(DaemonUnavailable) as caught:
        Client(home, autostart=True).connect()
    assert str(caught.value) == (f"cannot use CORRAL_HOME {home.root}: Operation not permitted (owned by uid 0, not "
                                 "you: set CORRAL_HOME to a folder of your own)")


def test_any_os_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "/some/file")

    monkeypatch.setitem(COMMANDS, "save", broken)
    assert main(["save"]) == 1
    assert capsys.readouterr().err == "corral: /some/file: No space left on device\n"


def test_the_owner_hint() -> None:
    assert client_mod._whose("/") == ("" if os.getuid() == 0 else
                                      " (owned by uid 0, not you: set CORRAL_HOME to a folder of your own)")
