"""``python -m corral.daemon``: the daemon process (started by the CLI on first use)."""

import sys

# asyncio imports ssl only to offer TLS, which the daemon does not serve; keeping
# OpenSSL out saves ~7 MB of resident memory.  Code that needs TLS later (an
# HTTPS webhook) must run in a subprocess or remove this entry first.
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

# Before anything else: where Python cannot cache bytecode, compile the daemon's modules while
# the process is small (see the module).
from corral.daemon.precompile import precompile  # noqa: E402

precompile()

from corral.daemon.main import main  # noqa: E402

raise SystemExit(main())
