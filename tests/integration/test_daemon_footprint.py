"""What a real daemon loads while it runs plain apps: the guard of its memory budget.

The budget itself (bench/README.md: <= 20 MiB with 50 apps) is measured by ``bench/run.sh`` and
``bench/rss.sh``; a resident-size assertion here would be at the mercy of the machine.  What this
pins instead is what decides that figure: which corral modules the daemon imports (each one
costs its code, and its compilation when there is no .pyc), and that no heavy library slips in.
A change that makes the daemon import something new fails here, on purpose: add the module to
``corral.daemon.precompile.DAEMON_MODULES`` (or load it lazily) and check ``bench/rss.sh``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from corral.app._prefilter import NATIVE
from corral.daemon.precompile import DAEMON_MODULES
from corral.paths import Home
from tests.conftest import PYTHON, Corral, wait_until

#: Standard library modules the daemon does without (each cost it 0.05-0.4 MB of resident memory).
UNWANTED = {"datetime", "_datetime", "sqlite3", "binascii", "zlib", "ctypes", "_ctypes", "graphlib", "queue", "struct",
            "random", "email", "http", "urllib", "argparse", "tomllib", "yaml", "difflib"}
#: Shared libraries that must not be mapped into the daemon (OpenSSL is ~7 MB).
UNWANTED_LIBRARIES = ("libssl", "libcrypto", "_ssl.", "_datetime.", "binascii.", "libz.", "_ctypes.", "libffi", "_struct.",
                      "_queue.")

#: Imported too, compiled as usual: the daemon's entry, and the redactor's private helpers (corral's
#: own modules name only the public corral.app.redact; they are small).
ALSO_IMPORTED = {"corral", "corral.daemon", "corral.daemon.precompile", "corral.app._secretnames",
                 "corral.app._prefilter"} | ({"corral.app._scan"} if NATIVE else set())  # the native scan, when built
ECOSYSTEM = "".join(f'[[apps]]\nname = "idle-{i}"\nscript = "/usr/bin/sleep"\nargs = ["600.0{i}"]\n'
                    'interpreter = "none"\n\n' for i in range(3))


def imported(log: str) -> set[str]:
    """The modules of ``python -X importtime``'s lines (``import time: self | cumulative | name``)."""
    return {line.rsplit("|", 1)[1].strip() for line in log.splitlines() if line.startswith("import time:")}


def test_a_daemon_running_plain_apps_imports_only_its_pinned_modules(corral: Corral, workdir: Path) -> None:
    log_path = workdir / "imports.log"
    with open(log_path, "wb") as log:  # the daemon itself, so that its log holds its imports only
        daemon = subprocess.Popen([PYTHON, "-OO", "-m", "corral.daemon"], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log, start_new_session=True,
                                  env={**corral.env, "PYTHONPROFILEIMPORTTIME": "1", "CORRAL_SUBREAPER": "1"})
    try:
        wait_until(lambda: os.path.exists(Home(corral.home).socket), 20, "the daemon's socket")
        (workdir / "corral.toml").write_text(ECOSYSTEM)
        corral.run("start", str(workdir / "corral.toml"))
        for i in range(3):
            corral.wait_status(f"idle-{i}", "online")
        corral.run("ls")
        corral.run("events", "--lines", "100")
        with open(f"/proc/{daemon.pid}/maps") as f:
            mapped = {line.split()[-1] for line in f if "/" in line}
        corral.run("stop", "all")
        corral.run("start", "all")
        corral.run("delete", "all")
    finally:
        corral.run("kill", check=False)
        daemon.wait(30)

    modules = imported(log_path.read_text(errors="replace"))
    ours = {m for m in modules if m == "corral" or m.startswith("corral.")}
    expected = {*ALSO_IMPORTED, *DAEMON_MODULES}
    assert not ours - expected, (
        f"the daemon now imports {sorted(ours - expected)}: load it lazily, or add it to DAEMON_MODULES "
        "and check the daemon's memory with bench/rss.sh")
    assert not expected - ours, f"the daemon no longer imports {sorted(expected - ours)}: drop it from DAEMON_MODULES"
    assert not modules & UNWANTED, f"the daemon imports {sorted(modules & UNWANTED)}"
    assert not [lib for lib in mapped if any(name in lib for name in UNWANTED_LIBRARIES)], sorted(mapped)
