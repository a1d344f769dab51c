"""``corral validate`` checks what ``start`` needs, and reads files without hanging: each check
with its exact message."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from corral.config import readfile
from corral.config.errors import ConfigError
from corral.config.load import from_command_line, load_file, validate_file
from corral.config.readfile import Unreadable, read_capped, yaml_document


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def app_toml(tmp_path: Path, **keys: str) -> str:
    body = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return write(tmp_path, "c.toml", f'[[apps]]\nname = "w"\n{body}')


def check(tmp_path: Path, **keys: str) -> list[str]:
    return validate_file(app_toml(tmp_path, **keys), check_files=True)


def test_a_runnable_app_passes(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    (tmp_path / ".env").write_text("A=1\n")
    assert check(tmp_path, script='"app.py"', env_file='".env"', out_file='"logs/out.log"',
                 interpreter='"python3"', user=f'"{os.getuid()}"') == []


def test_each_missing_thing_is_one_line(tmp_path: Path) -> None:
    where = f'{tmp_path}/c.toml: apps[0] "w"'
    (tmp_path / "novenv").mkdir()
    (tmp_path / "env.d").mkdir()
    assert check(tmp_path, script='"missing.py"', interpreter='"/nope/python"', venv='"novenv"',
                 env_file='"env.d"', out_file=f'"{tmp_path}"', error_file='"/etc/passwd/x"',
                 user='"no-such-user-x"', group='"no-such-group-x"') == [
        f'{where}: script: "{tmp_path}/missing.py" does not exist',
        f'{where}: interpreter: "/nope/python" does not exist',
        f'{where}: venv: "{tmp_path}/novenv" is not a virtualenv (it has no bin/)',
        f'{where}: env_file: "{tmp_path}/env.d" cannot be used: {tmp_path}/env.d: is a directory '
        "(env_file must name a .env file)",
        f'{where}: out_file: "{tmp_path}" is a directory (give a file; corral creates it)',
        f'{where}: error_file: "/etc/passwd/x" is under "/etc/passwd", which is not a directory',
        f'{where}: user: "no-such-user-x" is not a user on this machine',
        f'{where}: group: "no-such-group-x" is not a group on this machine',
    ]


def test_cwd_that_is_not_a_directory_is_the_only_line(tmp_path: Path) -> None:
    assert check(tmp_path, script='"a.py"', cwd='"/nonexistent"') == [
        f'{tmp_path}/c.toml: apps[0] "w": cwd: "/nonexistent" does not exist']
    assert check(tmp_path, cmd='["x"]', cwd='"/etc/passwd"') == [
        f'{tmp_path}/c.toml: apps[0] "w": cwd: "/etc/passwd" is not a directory']


def test_env_file_that_is_a_device_or_fifo_or_bad(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.env")
    (tmp_path / "bad.env").write_text("not an assignment\n")
    where = f'{tmp_path}/c.toml: apps[0] "w"'
    assert check(tmp_path, cmd='["x"]', env_file='"/dev/zero"') == [
        f'{where}: env_file: "/dev/zero" cannot be used: /dev/zero: is a character device, not a regular file']
    assert check(tmp_path, cmd='["x"]', env_file='"fifo.env"') == [
        f'{where}: env_file: "{tmp_path}/fifo.env" cannot be used: {tmp_path}/fifo.env: is a FIFO, not a regular file']
    assert check(tmp_path, cmd='["x"]', env_file='"bad.env"') == [
        f'{where}: env_file: "{tmp_path}/bad.env" cannot be used: {tmp_path}/bad.env: line 1: expected KEY=VALUE '
        '(names use letters, digits, "_" and ".", not starting with a digit)']


def test_the_library_call_checks_only_values(tmp_path: Path) -> None:
    assert validate_file(app_toml(tmp_path, script='"missing.py"')) == []


def test_a_command_line_start_is_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        from_command_line("missing.py", [], cwd=str(tmp_path), check_files=True)
    assert caught.value.messages == [f'command line: script: "{tmp_path}/missing.py" does not exist']
    assert from_command_line(None, ["sleep", "1"], cwd=str(tmp_path), check_files=True)["cmd"] == ["sleep", "1"]


def test_only_the_apps_started_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", '[[apps]]\nname = "a"\ncmd = ["x"]\n[[apps]]\nname = "b"\nscript = "gone.py"\n')
    assert [s["name"] for s in load_file(path, only="a", check_files=True)] == ["a"]


# -- files that must not hang or swallow memory ---------------------------------------------
def test_fifo_and_devices_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "eco.toml"
    os.mkfifo(fifo)
    assert validate_file(str(fifo)) == [f"{fifo}: is a FIFO, not a regular file"]
    with pytest.raises(Unreadable, match="^is a character device, not a regular file$"):
        read_capped("/dev/zero", 100)


def test_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (readfile.MAX_CONFIG + 1))
    assert validate_file(str(big)) == [f"{big}: is {readfile.MAX_CONFIG + 1} bytes (at most {readfile.MAX_CONFIG})"]


def test_a_read_that_does_not_finish_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    never = threading.Event()
    monkeypatch.setattr(readfile, "_read", lambda path, limit: never.wait())
    with pytest.raises(Unreadable, match=r"^could not be read within 0\.1s"):
        read_capped("/anything", 10, timeout=0.1)
    never.set()


BOMB = "".join(f'{c}: &{c} [{",".join([f"*{p}"] * 9)}]\n' for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("name, text, message", [
    ("bomb.yaml", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB + "apps: [*i]\n",
     "holds more than 200000 values once its aliases are expanded (an alias bomb?)"),
    ("self.yaml", "apps: &x [*x]\n", "an alias refers to the value that holds it (a document without end)"),
    ("deep.yaml", "apps: " + "[" * 1500 + "]" * 1500 + "\n",
     "nested more than 32 levels deep (an ecosystem file needs a few)"),
    ("deep.json", '{"apps": ' + "[" * 100000 + "]" * 100000 + "}",
     "nested more than 32 levels deep (an ecosystem file needs a few)"),
    ("deeper.json", '{"apps": ' + "[" * 40 + "]" * 40 + "}",
     "nested more than 32 levels deep (an ecosystem file needs a few)"),
    ("deep.toml", "apps = " + "[" * 5000 + "]" * 5000 + "\n",
     "nested more than 32 levels deep (an ecosystem file needs a few)"),
    ("digits.json", '{"apps": [{"cmd": ["x"], "instances": ' + "1" * 5000 + "}]}",
     "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"),
])
def test_documents_that_would_hang_or_explode(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    assert validate_file(path) == [f"{path}: {message}"]


def test_yaml_anchors_within_bounds_still_load(tmp_path: Path) -> None:
    text = "base: &base {cmd: [sleep, '1'], kill_timeout: 1s}\napps:\n  - {<<: *base, name: a}\n  - {<<: *base, name: b}\n"
    assert yaml_document(text)["apps"][1]["name"] == "b"
    path = write(tmp_path, "eco.yaml", "apps:\n  - &one {name: a, cmd: [sleep, '1']}\n")
    assert load_file(path)[0]["cmd"] == ["sleep", "1"]


def test_interpreters_on_path_and_executable(tmp_path: Path) -> None:
    where = f'{tmp_path}/c.toml: apps[0] "w"'
    (tmp_path / "app.py").write_text("")
    (tmp_path / "notexec").write_text("")
    assert check(tmp_path, script='"app.py"', interpreter='"no-such-python-x"') == [
        f'{where}: interpreter: "no-such-python-x" is not on PATH (give its full path, or install it)']
    assert check(tmp_path, script='"app.py"', interpreter='"./notexec"') == [
        f'{where}: interpreter: "{tmp_path}/notexec" is not executable']
    assert check(tmp_path, script='"app.py"', interpreter='"none"') == []
    assert check(tmp_path, script='"echo hi"', shell="true") == []  # a shell command line, not a file
