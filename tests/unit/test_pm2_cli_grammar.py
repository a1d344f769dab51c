"""PM2's spelling on corral's command line, parsed: the flags of settings corral does not implement
yet, several targets, ``-a``, the aliases, and "did you mean" for a mistyped verb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.cli.main import COMMANDS, main
from corral.cli.parser import build_parser
from corral.config import flags
from corral.config.flags import PENDING_FLAGS, all_flags, flag_of, settings_from_flags

PENDING_CASES: list[tuple[list[str], dict[str, Any]]] = [
    (["--watch"], {"watch": True}),
    (["--no-watch"], {"watch": False}),
    (["--ignore-watch", "node_modules", "--ignore-watch", "*.log"], {"ignore_watch": ["node_modules", "*.log"]}),
    (["--watch-delay", "2s"], {"watch_delay": "2s"}),
    (["--max-memory-restart", "300M"], {"max_memory_restart": "300M"}),
    (["-c", "0 3 * * *"], {"cron_restart": "0 3 * * *"}),
    (["--cron", "0 3 * * *"], {"cron_restart": "0 3 * * *"}),
    (["--cron-restart", "0 3 * * *"], {"cron_restart": "0 3 * * *"}),
    (["-l", "all.log"], {"log_file": "T/all.log"}),
    (["--log", "/var/log/all.log"], {"log_file": "/var/log/all.log"}),
]


@pytest.mark.parametrize("argv, expected", PENDING_CASES)
def test_pm2_flags_of_pending_settings(tmp_path: Path, argv: list[str], expected: dict[str, Any]) -> None:
    args = build_parser().parse_args(["start", "app.js", *argv])
    want = {k: v.replace("T/", f"{tmp_path}/") if isinstance(v, str) else v for k, v in expected.items()}
    assert settings_from_flags(args, str(tmp_path)) == want


def test_every_pending_option_is_tested() -> None:
    tested = {arg for argv, _ in PENDING_CASES for arg in argv if arg.startswith("-")}
    assert {o for _, options, *_ in PENDING_FLAGS for o in options} - tested == set()


def test_flag_of_a_pending_setting_is_pm2s_long_option() -> None:
    assert (flag_of("cron_restart"), flag_of("log_file"), flag_of("watch")) == ("--cron-restart", "--log", "--watch")


def test_a_pending_row_gives_way_once_its_setting_has_a_generated_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the setting lands in FIELDS with its flag, the hand-written row is left out (no clash)."""
    row = ("watch", ("--watch",), "bool", "", "restart on change")
    monkeypatch.setattr(flags, "START_FLAGS", flags.START_FLAGS + (row,))
    assert [r[0] for r in all_flags()].count("watch") == 1
    build_parser()  # argparse would refuse a second --watch


@pytest.mark.parametrize("verb", ["stop", "restart", "delete", "del", "reload", "reset"])
def test_verbs_take_several_targets(verb: str) -> None:
    assert build_parser().parse_args([verb, "0", "1", "api"]).targets == ["0", "1", "api"]


@pytest.mark.parametrize("verb", ["restart", "reload"])
def test_update_env_has_pm2s_short_option(verb: str) -> None:
    assert build_parser().parse_args([verb, "api", "-a"]).update_env is True


@pytest.mark.parametrize("alias, verb", [("ps", "ls"), ("l", "ls"), ("desc", "describe"), ("show", "describe"),
                                         ("info", "describe"), ("del", "delete"),
                                         ("startOrGracefulReload", "startOrReload")])
def test_pm2_aliases_run_corrals_verb(alias: str, verb: str) -> None:
    assert COMMANDS[alias].__code__ is COMMANDS[verb].__code__
    assert build_parser().parse_args([alias] + (["x"] if verb != "ls" else [])).command == alias


@pytest.mark.parametrize("argv, line", [
    (["strat", "app.py"], 'corral: unknown command "strat" (did you mean "start"?)'),
    (["jlsit"], 'corral: unknown command "jlsit" (did you mean "jlist"?)'),
    (["startOrRestrat", "x.json"], 'corral: unknown command "startOrRestrat" (did you mean "startOrRestart"?)'),
    (["xyzzy"], 'corral: unknown command "xyzzy" (see `corral --help`)'),
])
def test_a_mistyped_verb(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_options_before_the_verb_are_left_to_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("corral ")


@pytest.mark.parametrize("op, args, message", [
    ("start", {"derived": "yes"}, 'start: derived: "yes" is not true or false'),
    ("reset", {}, 'reset: a target is required (an app name, an id, a namespace or "all")'),
    ("env", {"target": 7}, 'env: target: 7 is not an app name, an id, a namespace or "all" (a string of 1 to 256 '
                          'characters)'),
])
def test_the_daemon_checks_the_new_arguments(op: str, args: dict[str, Any], message: str) -> None:
    from corral.control.ops import BadArgs, check_request

    with pytest.raises(BadArgs) as caught:
        check_request(op, args)
    assert caught.value.message == message
