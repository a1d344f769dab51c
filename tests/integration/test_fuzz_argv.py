"""The CLI argv fuzzer: every verb with its own flags, files that hang or explode, and hostile
values, run through the CLI's entry point against a real daemon.

Every command must end with status 0, 1 or 2 within a deadline and without an exception (an
exception escaping ``main`` is a traceback on the terminal); afterwards the same daemon answers.
``run`` (it execs) and ``kill`` (it stops the daemon, on purpose) are left out, and so are
``--follow`` (it runs until Ctrl-C) and the signals that stop a process (a stopped app makes a
later stop wait its whole kill_timeout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from corral.cli.entry import main
from corral.cli.main import COMMANDS
from corral.cli.parser import build_parser
from tests.conftest import Corral
from tests.fuzzing import HOSTILE_TEXT, Tally, fuzz_settings

# startup/unstartup write (and remove) systemd's units, outside the test's folders: test_startup.py
VERBS = sorted(set(COMMANDS) - {"run", "kill", "startup", "unstartup"})
STOPS = {"STOP", "TSTP", "TTIN", "TTOU"}
DEADLINE = 60.0
SAFE_TEXT = st.text(st.characters(blacklist_characters="/~\0", blacklist_categories=["Cs"]), max_size=12)
ARGV_HOSTILE = [t for t in HOSTILE_TEXT if "\0" not in t and "/" not in t and t != "\ud800"] + [
    "-1", "0", "1" * 30, "1" * 400 + "d", "\udcff", "all", "fz", "0", "default", "SIGUSR1", "HUP", "+1", "-1", "4",
    "100000000", "99999999999999999999", "1e308", "5s", "1e400", "nan", "--", "-", "--json", "--bogus"]


def flags(verb: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {o for action in sub.choices[verb]._actions for o in action.option_strings}
    return sorted(options - {"--follow", "-f"})


FLAGS = {verb: flags(verb) for verb in VERBS}
FLAGS["export"] = [f for f in FLAGS["export"] if f not in ("-o", "--output")]  # never files in /tmp


def files(workdir: Path) -> list[str]:
    (workdir / "eco.toml").write_text('[[apps]]\nname = "fz"\ncmd = ["sleep", "600"]\nlisten_timeout = "100ms"\n'
                                      'kill_timeout = "1s"\n')
    (workdir / "bad.toml").write_text('[[apps]]\nname = "fz"\ncmd = ["sleep", "600"]\ninstances = 1e308\n')
    (workdir / "deep.json").write_text('{"apps": ' + "[" * 5000 + "]" * 5000 + "}")
    (workdir / "app.py").write_text("import time\ntime.sleep(600)\n")
    (workdir / ".env").write_text("A=1\n")
    os.mkfifo(workdir / "fifo.toml")
    return ["eco.toml", "bad.toml", "deep.json", "app.py", "fifo.toml", ".env", str(workdir / "missing" / "out.log"),
            "/tmp", "/dev/zero", "missing.toml", "missing.py"]


@st.composite
def argvs(draw: st.DrawFn, paths: list[str]) -> list[str]:
    verb = draw(st.sampled_from(VERBS))
    token = st.sampled_from(FLAGS[verb] or ["--json"]) | st.sampled_from(paths) | st.sampled_from(ARGV_HOSTILE) \
        | SAFE_TEXT
    argv = [verb, *draw(st.lists(token, max_size=5))]
    if verb == "start" and draw(st.integers(0, 2)) == 0:
        command = draw(st.sampled_from([["sleep", "600"], [draw(SAFE_TEXT) or "x"]]))
        assume(command == ["sleep", "600"] or shutil.which(command[0]) is None)
        argv += ["--", *command]
    assume(not (verb in ("signal", "sendSignal") and any(t.upper().removeprefix("SIG") in STOPS for t in argv)))
    return argv


# in process, the sockets the CLI leaves to the end of its process are warned about
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_cli_argv_fuzzer(corral: Corral, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    corral.env["CORRAL_MAX_INSTANCES"] = "4"
    corral.run("ping")
    daemon = corral.daemon_pid()
    for key in ("CORRAL_HOME", "CORRAL_MAX_INSTANCES"):
        monkeypatch.setenv(key, corral.env[key])
    monkeypatch.chdir(workdir)
    paths = files(workdir)
    tally = Tally("CLI argv fuzzer")

    @fuzz_settings(60)
    @given(argvs(paths))
    def one(argv: list[str]) -> None:
        tally.cases += 1
        started = time.monotonic()
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse's --help and --version
            status = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # what the terminal would show as a traceback
            tally.fail("tracebacks", (argv, repr(exc)))
            return
        finally:
            err = capsys.readouterr().err
        if time.monotonic() - started > DEADLINE:
            tally.fail("hangs", argv)
        if "Traceback" in err or status not in (0, 1, 2):
            tally.fail("tracebacks" if "Traceback" in err else "wrong", (argv, status, err[-300:]))
        tally.saw(f"exit {status}")

    one()
    if corral.daemon_pid() != daemon:
        tally.fail("deaths", daemon)
    tally.report(request)
    tally.assert_clean()
    assert isinstance(corral.ls(), list)
