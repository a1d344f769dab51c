"""What keeps the daemon small (README "Design"; the figure itself is bench/run.sh's).

A long history is encoded one event at a time: the reply's bytes are those of the decoded
list, and in-process callers of ``core.call`` still get Python objects.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from corral.clock import ManualClock
from corral.control import protocol
from corral.daemon.core import DaemonCore
from corral.daemon.store import MemoryStore
from corral.daemon.supervisor import Supervisor
from corral.daemon.timers import manual_timers
from corral.events import InstanceSpawned, Note
from corral.logs.sinks import StdoutLogs


def history_store() -> MemoryStore:
    store = MemoryStore()
    with store.batch():
        for n in range(30):
            app = f"app-{n % 3}"
            store.record(Note(app=app, instance=n % 2, kind="start", message='start "é" \\ \u2028', ts=1000.5 + n))
            store.record(InstanceSpawned(app=app, instance=None, pid=100 + n, ts=1000.25 + n))
            store.record(Note(app=app, kind="stopped", message="stopped", data={"code": None, "x": [1.5]}, ts=2e9))
    return store


@pytest.mark.parametrize("app", [None, "app-1", "nothing"])
@pytest.mark.parametrize("limit", [0, 1, 7, 50, 1000, -1])
def test_a_history_encoded_event_by_event_is_the_json_of_the_events(app: str | None, limit: int) -> None:
    store = history_store()
    text = store.events_json(app, limit)
    assert json.loads(text) == store.events(app, limit)
    assert protocol.reply(7, protocol.Encoded(text)) == protocol.reply(7, store.events(app, limit))


def test_core_call_decodes_an_encoded_result() -> None:
    from corral.daemon.ops.apps import Context

    async def body() -> Any:
        loop = asyncio.get_running_loop()
        clock = ManualClock(wall=1000.0)
        sup = Supervisor(loop, history_store(), StdoutLogs(), core=DaemonCore(loop, clock, manual_timers(clock)))
        sup.core.context = Context(sup, "/nonexistent/dump.json")
        return await sup.core.call("events", target="all", limit=5), sup.store.events(None, 5)

    called, stored = asyncio.run(body())
    assert type(called) is list and called == stored and len(called) == 5


PRECOMPILED_DAEMON = """
import sys
sys.modules["ssl"] = None
from corral.daemon import precompile
count = precompile.precompile()
import importlib
names = precompile.with_private_helpers(precompile.DAEMON_MODULES)
for name in names:  # as the daemon does: its start, then its first app
    importlib.import_module(name)
loaders = {type(sys.modules[name].__loader__).__name__ for name in names}
print(count, len(names), sorted(loaders), precompile._Finder in sys.meta_path, len(precompile._codes))
"""


def test_without_bytecode_caching_the_daemon_modules_are_compiled_first_and_handed_to_the_imports() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-B", "-OO", "-c", PRECOMPILED_DAEMON], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [out[1], out[1], "['_Loader']", "False", "0"]  # every one compiled, then imported; finder gone


def test_a_module_is_compiled_first_only_when_its_import_would_compile_it(tmp_path: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import py_compile
    import sys

    from corral.daemon.precompile import _compiled_at_import

    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert not _compiled_at_import(str(source))  # the import writes the .pyc: the next daemons load it
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert _compiled_at_import(str(source))
    py_compile.compile(str(source), optimize=sys.flags.optimize)
    assert not _compiled_at_import(str(source))  # a fresh .pyc: the import loads it
