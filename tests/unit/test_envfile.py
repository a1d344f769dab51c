"""Table tests for the .env parser (corral.config.envfile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config.envfile import parse_env_file, read_env_file
from corral.config.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("\n\n", {}),
        ("A=1", {"A": "1"}),
        ("A=1\nB=two\n", {"A": "1", "B": "two"}),
        ("# comment\nA=1\n  # indented comment\n", {"A": "1"}),
        ("export A=1", {"A": "1"}),
        ("export   A = spaced ", {"A": "spaced"}),
        ("A =  value with spaces  ", {"A": "value with spaces"}),
        ("A=", {"A": ""}),
        ("A=value # trailing comment", {"A": "value"}),
        ("A=#not-a-comment", {"A": "#not-a-comment"}),
        ("A=a#b", {"A": "a#b"}),
        ("A= # only a comment", {"A": ""}),
        ("A='single $HOME \\n kept'", {"A": "single $HOME \\n kept"}),
        ('A="line1\\nline2"', {"A": "line1\nline2"}),
        ('A="tab\\there \\"q\\" back\\\\slash \\$x \\z"', {"A": 'tab\there "q" back\\slash $x \\z'}),
        ('A="has # hash" # comment', {"A": "has # hash"}),
        ("A='x' # comment\nB=2", {"A": "x", "B": "2"}),
        ('A="multi\nline"\nB=2', {"A": "multi\nline", "B": "2"}),
        ('A=""', {"A": ""}),
        ("A=1\nA=2", {"A": "2"}),
        ("A=1\r\nB='2'\r\n", {"A": "1", "B": "2"}),
        ("A=x=y", {"A": "x=y"}),
        ("_A.b=1", {"_A.b": "1"}),
        ("export=1", {"export": "1"}),
        ("URL=postgres://u:p@h/db?x=1", {"URL": "postgres://u:p@h/db?x=1"}),
    ],
)
def test_parse_env_file(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nNOEQUALS\n", 'line 2: expected KEY=VALUE (names use letters, digits, "_" and ".", not starting with a digit)'),
        ("1A=x", 'line 1: expected KEY=VALUE (names use letters, digits, "_" and ".", not starting with a digit)'),
        ("A=1\n\nB=\"open", 'line 3: unterminated "-quoted value (close it with ")'),
        ("A='open\nB=2", "line 1: unterminated '-quoted value (close it with ')"),
        ("A='x' y", "line 1: text after the closing quote of A (only a # comment may follow)"),
    ],
)
def test_parse_env_file_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env_file(text)
    assert caught.value.messages == [message]
    assert str(caught.value) == message


def test_error_never_shows_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env_file("PASSWORD hunter2")
    assert "hunter2" not in str(caught.value)


def test_read_env_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("export TOKEN='abc'\nPORT=8000\n", encoding="utf-8")
    assert read_env_file(str(path)) == {"TOKEN": "abc", "PORT": "8000"}


def test_read_env_file_errors(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.env")
    with pytest.raises(ConfigError) as caught:
        read_env_file(missing)
    assert str(caught.value) == f"{missing}: no such file (env_file must name an existing .env file)"

    with pytest.raises(ConfigError) as caught:
        read_env_file(str(tmp_path))
    assert str(caught.value) == f"{tmp_path}: is a directory (env_file must name a .env file)"

    bad = tmp_path / "bad.env"
    bad.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        read_env_file(str(bad))
    assert str(caught.value) == f"{bad}: not UTF-8 text (save the .env file as UTF-8)"

    broken = tmp_path / "broken.env"
    broken.write_text("A=1\nB='x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_env_file(str(broken))
    assert caught.value.messages == [f"{broken}: line 2: unterminated '-quoted value (close it with ')"]
