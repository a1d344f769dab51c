"""Secrets on screen and at rest: URL credentials, control characters, CORRAL_HOME and file modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from corral.app.redact import REDACTED, Redactor, redact_bytes, redact_line, redact_obj, redact_url_credentials
from corral.cli import render
from corral.cli.logs import clean_line
from corral.paths import Home, HomeError


# -- URL credentials --------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("postgres://u:secret@h/db", "postgres://u:REDACTED@h/db"),
    ("connecting to https://user:pass@host:443/x?y=1 now", "connecting to https://user:REDACTED@host:443/x?y=1 now"),
    ("redis://:s3cret@cache:6379/0", "redis://:REDACTED@cache:6379/0"),
    ("amqp://guest:p@ss:w0rd@rabbit//", "amqp://guest:REDACTED@rabbit//"),  # an @ in the password
    ("git clone https://deploy:ghs_abc@github.com/o/r", "git clone https://deploy:REDACTED@github.com/o/r"),
    ("mongodb+srv://app:pw@cluster0.example.net", "mongodb+srv://app:REDACTED@cluster0.example.net"),
])
def test_url_passwords_are_redacted(text: str, expected: str) -> None:
    assert redact_line(text) == expected
    assert redact_bytes((text + "\n").encode()) == (expected + "\n").encode()
    assert redact_url_credentials(text, "***") == expected.replace(REDACTED, "***")


@pytest.mark.parametrize("text", [
    "ssh://git@github.com/o/r.git", "http://host:8080/path", "see http://a.b/c?x=y:z@w", "GET /x 200",
    "user@host:22", "postgres://u:@h/db",
])
def test_urls_without_a_password_are_left_alone(text: str) -> None:
    assert redact_line(text) is text
    data = (text + "\n").encode()
    assert redact_bytes(data) is data


def test_url_passwords_in_json_lines_and_objects() -> None:
    line = json.dumps({"msg": "db", "dsn": "mysql://root:hunter2@db/x"})
    assert json.loads(redact_line(line))["dsn"] == "mysql://root:REDACTED@db/x"
    assert redact_obj({"a": ["redis://:pw@c"]}) == {"a": ["redis://:REDACTED@c"]}
    assert Redactor(["ssn"]).redact_line("x postgres://u:p@h y") == "x postgres://u:REDACTED@h y"


def test_only_the_dirty_line_of_a_chunk_is_rewritten() -> None:
    chunk = b"a http://x/y\nb postgres://u:secret@h/db\nc\n"
    assert redact_bytes(chunk) == b"a http://x/y\nb postgres://u:REDACTED@h/db\nc\n"


# -- control characters -------------------------------------------------------------------------
HOSTILE = "boom\x1b]0;pwned\x07\x1b[2J\r\nnext\u202eevil\x9b31m"


def test_clean_escapes_every_control_character() -> None:
    assert render.clean(HOSTILE) == "boom\\x1b]0;pwned\\x07\\x1b[2J\\r\\nnext\\u202eevil\\x9b31m"
    assert render.clean("plain text ünïcode") == "plain text ünïcode"


def test_events_and_describe_show_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = {"ts": 0, "app": "a", "instance": 0, "kind": "crash", "message": HOSTILE}
    line = render.event_line(ev)
    assert "\x1b" not in line and "\n" not in line and "\\x1b]0;pwned" in line
    info = {"name": "a", "id": 0, "namespace": "default", "desired": "online", "argv": ["x", "\x1b[2J"],
            "config": {"cwd": "/", "env": {"K": "v\x1b]52;c;Zm9v\x07"}}, "instances": [],
            "last_crash": {"ts": 0, "instance": 0, "summary": HOSTILE, "frames": ["f\x1b[1A"]},
            "events": [ev]}
    text = render.describe(info)
    assert not any(c in text for c in "\x1b\x07\r\x9b\u202e")
    assert "K=v\\x1b]52;c;Zm9v\\x07" in text


def test_ls_escapes_names() -> None:
    row = {"id": 0, "name": "a\x1b[2Jb", "namespace": "n\x07", "instance": 0, "pid": None, "status": "stopped",
           "restarts": 0, "started_at": None, "cpu_percent": 0.0, "memory_bytes": 0}
    table = render.table([row], colour=False)
    assert "\x1b" not in table and "\x07" not in table and "a\\x1b[2Jb" in table


def test_log_lines_keep_colours_and_tabs_but_nothing_else() -> None:
    assert clean_line("\x1b[32mok\x1b[0m\tdone") == "\x1b[32mok\x1b[0m\tdone"
    assert clean_line("\x1b[32mok\x1b]0;title\x07 \x1b[2J") == "\x1b[32mok\\x1b]0;title\\x07 \\x1b[2J"


# -- CORRAL_HOME ---------------------------------------------------------------------------------
def test_a_shared_1777_home_is_refused_with_one_line_and_not_chmodded(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(HomeError) as err:
        Home(str(shared)).ensure()
    assert str(err.value) == (f"CORRAL_HOME {shared} is writable by other users (mode 1777): refusing to use it "
                              f"(use a folder only you can write, such as ~/.corral)")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and not (shared / "logs").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder of another user needs root to make")
def test_a_home_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(HomeError, match=r"belongs to user nobody \(uid 65534\), not to user root \(uid 0\)"):
        Home(str(theirs)).check()


def test_a_new_home_is_0700_and_an_own_0755_one_is_used_as_it_is(tmp_path: Path) -> None:
    home = Home(str(tmp_path / "a" / "home"))
    home.ensure()
    assert stat.S_IMODE(os.stat(home.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home.logs).st_mode) == 0o700
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o755)
    Home(str(mine)).ensure()
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755


def test_state_db_is_created_0600_and_an_old_0644_one_is_tightened(tmp_path: Path) -> None:
    from corral.daemon.store import Store

    old_umask = os.umask(0o022)
    try:
        store = Store(str(tmp_path / "state.db"))
        store.put_app("a", 1, {"name": "a"}, "online")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        store.close()
        assert modes and set(modes.values()) == {0o600}, modes  # state.db, -wal, -shm
        (tmp_path / "state.db").chmod(0o644)
        Store(str(tmp_path / "state.db")).close()
        assert stat.S_IMODE((tmp_path / "state.db").stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
