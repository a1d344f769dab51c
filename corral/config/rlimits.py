"""The ``limits`` key: resource limits of an app's processes (``setrlimit``), by prlimit(1)'s names.

``limits = { nofile = 65536, core = "unlimited", nproc = "512:1024" }``: a value sets the soft
and the hard limit together (as systemd's ``LimitNOFILE=`` does); ``"SOFT:HARD"`` or
``[soft, hard]`` sets them apart; ``"unlimited"`` (or ``"infinity"``) is no limit; byte limits
take sizes (``"1GB"``).  Normalized to ``{name: [soft, hard]}``, ``None`` for unlimited.
"""

from __future__ import annotations

from typing import Any

from corral.config.convert import Invalid
from corral.config.limits import RLIMITS
from corral.units import parse_size

RESOURCES = RLIMITS
UNLIMITED = frozenset({"unlimited", "infinity"})
MAX = 2**63 - 1
HINT = '(use { nofile = 65536, core = 0 }: a number, "unlimited", or "SOFT:HARD"; names: ' + \
    ", ".join(RESOURCES) + ")"


def to_limits(value: Any) -> dict[str, list[int | None]]:
    """``{name: [soft, hard]}`` from a table of limits (None: unlimited)."""
    if not isinstance(value, dict):
        raise Invalid(f"is not a table of limits {HINT}")
    out: dict[str, list[int | None]] = {}
    for key, raw in value.items():
        name = key.strip().lower() if isinstance(key, str) else key
        if name not in RESOURCES:
            raise Invalid(f"is not a limit corral knows {HINT}", suffix=f".{key}", value=key)
        out[name] = _pair(name, raw)
    return out


def _pair(name: str, raw: Any) -> list[int | None]:
    if isinstance(raw, list) and len(raw) == 2:
        soft, hard = (_one(name, raw, v) for v in raw)
    elif isinstance(raw, str) and ":" in raw:
        soft, hard = (_one(name, raw, v) for v in raw.split(":", 1))
    else:
        soft = hard = _one(name, raw, raw)
    if hard is not None and (soft is None or soft > hard):
        raise Invalid("has a soft limit above its hard limit (use \"SOFT:HARD\" with SOFT <= HARD)",
                      suffix=f".{name}", value=raw)
    if name == "nofile" and hard is None:
        raise Invalid("cannot be unlimited: the kernel caps open files (use a number, such as 65536)",
                      suffix=f".{name}", value=raw)
    return [soft, hard]


def _one(name: str, raw: Any, value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in UNLIMITED:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, str) and RESOURCES[name] == "bytes":
        try:
            number = parse_size(value)
        except ValueError:
            number = None
    if number is None or not 0 <= number <= MAX:
        what = RESOURCES[name]
        sizes = ', or a size such as "1GB"' if what == "bytes" else ""
        raise Invalid(f'is not a limit ({what}: a whole number >= 0, "unlimited"{sizes})',
                      suffix=f".{name}", value=raw)
    return number
