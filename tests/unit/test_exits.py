"""One wording of how a process ended, wherever corral says it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from corral.cli import render
from corral.daemon.ops import reload
from corral.lifecycle.exits import describe_exit
from corral.lifecycle.instance import Exited
from corral.logs.crashreport import crash_report, describe

CASES = [((1, None), "exit code 1", "exited with code 1"),
         ((0, None), "exit code 0", "exited with code 0"),
         ((None, "SIGKILL"), "killed by SIGKILL", "was killed by SIGKILL")]


@pytest.mark.parametrize(("how", "noun", "verb"), CASES)
def test_describe_exit(how: tuple[int | None, str | None], noun: str, verb: str) -> None:
    assert describe_exit(*how) == noun
    assert describe_exit(*how, verb=True) == verb


def _describe_info(last_exit: dict[str, Any]) -> dict[str, Any]:
    return {"name": "api", "id": 0, "namespace": "default", "desired": "running", "argv": ["x"],
            "config": {}, "instances": [{"instance": 0, "status": "stopped", "pid": None, "restarts": 0,
                                         "out_log": "o", "err_log": "e", "last_exit": last_exit}]}


@pytest.mark.parametrize(("how", "noun", "verb"), CASES)
def test_every_place_says_it_the_same_way(how: tuple[int | None, str | None], noun: str, verb: str) -> None:
    code, sig = how
    assert Exited(code, sig).describe() == noun                                  # exit events, corral run
    assert describe(crash_report([], code, sig, 1)) == f"{noun} (no traceback in stderr)"  # crash events
    text = render.describe(_describe_info({"code": code, "signal": sig, "at": 0.0, "pid": 9}))
    assert f"    last exit: {noun} at " in text                                 # corral describe
    slot = SimpleNamespace(spawn_error=None, last_exit={"code": code, "signal": sig, "pid": 9})
    assert reload._why(slot) == f"{verb} before it was ready"  # type: ignore[arg-type]  # reload
