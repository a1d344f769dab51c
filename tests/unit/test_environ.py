"""What an app keeps of the environment it was started from (env_inherit), and who it runs as."""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from corral.config.convert import Invalid
from corral.config.environ import for_other_user, inherited, kept, to_env_inherit, withheld
from corral.config.spec import AppSpec
from corral.process.identity import IdentityError, resolve
from corral.process.spawner import build_env

SHELL = {
    "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_TIME": "de_DE.UTF-8", "TERM": "xterm", "TZ": "UTC",
    "HOME": "/root", "USER": "root", "EDITOR": "vi", "MONKEY": "banana", "KEYBOARD_LAYOUT": "us",
    "GITHUB_TOKEN": "ghp_1", "AWS_SECRET_ACCESS_KEY": "aws_2", "AWS_ACCESS_KEY_ID": "AKIA3", "AWS_REGION": "eu",
    "DB_PASSWORD": "hunter2", "API_KEY": "k-4", "SESSION_ID": "s-5",
    "DATABASE_URL": "postgres://u:url-secret@db/app", "CACHE_URL": "redis://cache:6379/0",
    "NOTIFY_SOCKET": "/run/systemd/notify", "LISTEN_FDS": "3",
}


def test_secret_names_and_url_passwords_are_not_inherited() -> None:
    env = inherited(SHELL)
    assert sorted(env) == ["AWS_ACCESS_KEY_ID", "AWS_REGION", "CACHE_URL", "EDITOR", "HOME", "KEYBOARD_LAYOUT", "LANG", "LC_TIME",
                           "MONKEY", "PATH", "TERM", "TZ", "USER"]
    assert withheld(SHELL) == ["API_KEY", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL",
                               "DB_PASSWORD", "GITHUB_TOKEN", "SESSION_ID"]


def test_env_inherit_names_what_to_keep() -> None:
    env = inherited(SHELL, ["AWS_*", "GITHUB_TOKEN", "DATABASE_URL"])
    assert {k: env[k] for k in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "DATABASE_URL")} == {
        "AWS_SECRET_ACCESS_KEY": "aws_2", "AWS_ACCESS_KEY_ID": "AKIA3", "GITHUB_TOKEN": "ghp_1",
        "DATABASE_URL": "postgres://u:url-secret@db/app"}
    assert "DB_PASSWORD" not in env and "NOTIFY_SOCKET" not in env
    assert withheld(SHELL, ["*"]) == []
    assert "github_token" not in {k.lower() for k in inherited(SHELL, ["github_token"])}  # case-sensitive


def test_corral_run_keeps_everything() -> None:
    assert kept(SHELL, (), whole=True) == SHELL


def test_another_user_starts_from_a_clean_environment() -> None:
    assert for_other_user(SHELL) == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_TIME": "de_DE.UTF-8",
                                     "TERM": "xterm", "TZ": "UTC"}
    assert for_other_user(SHELL, ["EDITOR"])["EDITOR"] == "vi"


@pytest.mark.parametrize("value, expected", [
    ("GITHUB_TOKEN", ["GITHUB_TOKEN"]), (["AWS_*", "X?", "LC_[AM]*"], ["AWS_*", "X?", "LC_[AM]*"]), ([], []),
])
def test_env_inherit_values(value: object, expected: list[str]) -> None:
    assert to_env_inherit(value) == expected


@pytest.mark.parametrize("value, message", [
    (3, 'is not a list of variable names (use ["AWS_*", "GITHUB_TOKEN"])'),
    (["A B"], 'is not a variable name or pattern (letters, digits, "_", and * ? [...])'),
    ([""], 'is not a variable name or pattern (letters, digits, "_", and * ? [...])'),
])
def test_env_inherit_errors(value: object, message: str) -> None:
    with pytest.raises(Invalid) as err:
        to_env_inherit(value)
    assert err.value.text == message


def spec(**kw: object) -> AppSpec:
    return AppSpec.from_dict({"name": "a", "cmd": ["true"], "cwd": "/", **kw})


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="user= needs the daemon to run as root")


@needs_root
def test_user_resolves_uid_primary_group_supplementary_groups_and_login_variables() -> None:
    pw = pwd.getpwnam("nobody")
    who = resolve(spec(user="nobody"))
    assert who is not None
    assert (who.uid, who.gid) == (pw.pw_uid, pw.pw_gid)
    assert set(who.groups) == set(os.getgrouplist("nobody", pw.pw_gid))
    assert who.env() == {"HOME": pw.pw_dir, "USER": "nobody", "LOGNAME": "nobody", "SHELL": pw.pw_shell}
    assert who.popen_kwargs() == {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": list(who.groups)}
    by_id = resolve(spec(user=str(pw.pw_uid)))
    assert by_id == who


@needs_root
def test_group_replaces_the_primary_group() -> None:
    gid = grp.getgrnam("daemon").gr_gid if _group_exists("daemon") else 1
    who = resolve(spec(user="nobody", group=str(gid)))
    assert who is not None and who.gid == gid and gid in who.groups


@needs_root
def test_unknown_users_and_groups_are_one_line() -> None:
    with pytest.raises(IdentityError, match="^user 'no-such-user-x': no such user$"):
        resolve(spec(user="no-such-user-x"))
    with pytest.raises(IdentityError, match="^group 'no-such-group-x': no such group$"):
        resolve(spec(user="nobody", group="no-such-group-x"))
    with pytest.raises(IdentityError, match="no password entry for this uid"):
        resolve(spec(user="54321"))
    who = resolve(spec(user="54321", group="54321"))
    assert who is not None and who.env() == {"HOME": "/", "USER": "54321", "LOGNAME": "54321", "SHELL": "/bin/sh"}


@needs_root
def test_build_env_for_another_user_has_its_login_variables_and_no_shell_leftovers() -> None:
    app = spec(user="nobody", env={"LEVEL": "info", "HOME": "/srv/app"}, env_inherit=["EDITOR"])
    who = resolve(app)
    env = build_env(app, 0, inherited(SHELL, app.env_inherit), who)
    assert env["USER"] == env["LOGNAME"] == "nobody" and env["HOME"] == "/srv/app"  # the app's env wins
    assert env["EDITOR"] == "vi" and env["PATH"] == "/usr/bin:/bin"
    assert not {"MONKEY", "GITHUB_TOKEN", "AWS_REGION", "NOTIFY_SOCKET"} & set(env)


def test_user_needs_a_root_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(IdentityError, match="^user/group need the daemon to run as root$"):
        resolve(spec(user="nobody"))
    assert resolve(spec()) is None


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
