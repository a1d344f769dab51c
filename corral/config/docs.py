"""The parts of the code and the README that are generated from :data:`corral.config.fields.FIELDS`.

    python -m corral.config.docs --write    # rewrite every generated part
    python -m corral.config.docs --check    # exit 1 naming the files that are out of date

Generated parts sit between two marker lines, in:

* ``corral/config/spec.py``: the attributes of :class:`~corral.config.spec.AppSpec` (types and
  defaults, so mypy sees real types and the defaults stay FIELDS' own);
* ``corral/config/flags.py``: the ``corral start`` flags table;
* ``README.md``: the key table of "Ecosystem files", and the table of ``corral start`` flags.

``tests/unit/test_settings.py`` fails while any of them differs from what FIELDS gives.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral.config import cluster, convert, environ, flags, host, logkeys, spec
from corral.config.fields import FIELDS, Field

ROOT = Path(__file__).resolve().parents[2]
_WRITE_HINT = "python -m corral.config.docs --write"
_METAVARS: dict[Callable[[Any], Any], str] = {
    convert.to_duration: "DURATION", convert.to_path: "PATH", convert.to_instances: "N",
    convert.to_count: "N", convert.to_exit_codes: "CODE", convert.to_signal: "SIGNAL",
    convert.to_name: "NAME", convert.to_account: "NAME", convert.to_args: "ARGS",
    environ.to_env_inherit: "NAME", logkeys.to_log_type: "TYPE", logkeys.to_date_format: "FORMAT", cluster.to_listen: "ADDRESS",
    host.to_memory_limit: "SIZE",
}


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _literal(value: object) -> str:
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return _q(value)
    raise ValueError(f"no literal for the default {value!r} (use None, a number, a string or an empty list/dict)")


# --- AppSpec --------------------------------------------------------------------------------

def _attribute(f: Field) -> str:
    if f.default is None and "None" not in f.type:
        return f"    {f.name}: {f.type}"  # required: the normalizer always fills it
    if f.default == [] or f.default == {}:
        return f"    {f.name}: {f.type} = field(default_factory={type(f.default).__name__})"
    return f"    {f.name}: {f.type} = {_literal(f.default)}"


def spec_attributes() -> list[str]:
    return [_attribute(f) for f in FIELDS]


# --- flags ----------------------------------------------------------------------------------

def flag_kind(f: Field) -> str:
    if f.flag_kind:
        return f.flag_kind
    if f.type == "bool":
        return "bool"
    if any(option.startswith("--no-") for option in f.flag):
        return "false"
    if f.type in ("int", "int | None"):
        return "int"
    if f.type == "list[int]":
        return "ints"
    return "path" if f.convert is convert.to_path else "value"


def _metavar(f: Field) -> str:
    if flag_kind(f) in ("bool", "false"):
        return ""
    return _METAVARS.get(f.convert, f.name.upper())


def flag_rows() -> list[str]:
    lines = ["START_FLAGS: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = ("]
    for f in FIELDS:
        if not f.flag:
            continue
        options = ", ".join(_q(o) for o in f.flag) + ("," if len(f.flag) == 1 else "")
        lines.append(f"    ({_q(f.name)}, ({options}), {_q(flag_kind(f))}, {_q(_metavar(f))},")
        text = f"{f.name} = false; {f.doc}" if flag_kind(f) == "false" else f.doc
        lines.append(f"     {_q(text.replace('%', '%%'))}),")
    lines.append(")")
    return lines


# --- README ---------------------------------------------------------------------------------

def _row(cells: list[str]) -> str:
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def key_table() -> list[str]:
    """The README's key table: one row per field, or per group of fields (``table = "+"``)."""
    rows: list[tuple[list[str], Field]] = []
    for f in FIELDS:
        if f.table == "row":
            rows.append(([f.name], f))
        elif f.table == "+":
            rows[-1][0].append(f.name)
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for keys, first in rows:
        label = first.label or ", ".join(f"`{key}`" for key in keys)
        lines.append(_row([label, first.shown, first.meaning]))
    return lines


def flag_table() -> list[str]:
    """The README's table of ``corral start`` flags: each with its value and the key it sets."""
    lines = ["| flag | key |", "| --- | --- |"]
    for f in FIELDS:
        if not f.flag:
            continue
        kind, metavar = flag_kind(f), _metavar(f)
        long = next(o for o in f.flag if o.startswith("--"))
        more = " ..." if kind in ("ints", "append") else ""
        cells = [f"`{o} {metavar}{more}`" if o == long and metavar else f"`{o}`" for o in f.flag]
        if kind == "bool":
            cells.append(f"`--no-{long[2:]}`")
        key = f"`{f.name} = false`" if kind == "false" else f"`{f.name}`"
        lines.append(_row([", ".join(cells), key]))
    return lines


# --- files ----------------------------------------------------------------------------------

#: (file, first marker line, last marker line, the lines between them)
PARTS: list[tuple[Path, str, str, Callable[[], list[str]]]] = [
    (Path(spec.__file__), "    # --- generated from FIELDS: " + _WRITE_HINT + " ---",
     "    # --- end of generated attributes ---", spec_attributes),
    (Path(flags.__file__), "# --- generated from FIELDS: " + _WRITE_HINT + " ---",
     "# --- end of generated flags ---", flag_rows),
    (ROOT / "README.md", "<!-- keys: generated from corral/config/fields.py by " + _WRITE_HINT + " -->",
     "<!-- end of keys -->", key_table),
    (ROOT / "README.md", "<!-- flags: generated from corral/config/fields.py by " + _WRITE_HINT + " -->",
     "<!-- end of flags -->", flag_table),
]


def _replace(text: str, begin: str, end: str, body: list[str], path: Path) -> str:
    lines = text.split("\n")
    try:
        first = lines.index(begin)
        last = lines.index(end, first)
    except ValueError:
        raise SystemExit(f"{path}: the marker lines are missing: {begin!r} ... {end!r}") from None
    return "\n".join(lines[: first + 1] + body + lines[last:])


def generated() -> dict[Path, tuple[str, str]]:
    """Every file with generated parts: (its text now, its text as FIELDS gives it)."""
    texts: dict[Path, tuple[str, str]] = {}
    for path, begin, end, render in PARTS:
        current = texts[path][1] if path in texts else path.read_text(encoding="utf-8")
        old = texts[path][0] if path in texts else current
        texts[path] = (old, _replace(current, begin, end, render(), path))
    return texts


def outdated() -> list[str]:
    """The files whose generated parts differ from what FIELDS gives (relative to the repository)."""
    return [_shown(path) for path, (old, new) in generated().items() if old != new]


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    if argv not in (["--write"], ["--check"]):
        print("usage: python -m corral.config.docs --write | --check", file=sys.stderr)
        return 2
    stale = outdated()
    if argv == ["--check"]:
        for name in stale:
            print(f"{name}: out of date with corral/config/fields.py (run {_WRITE_HINT})", file=sys.stderr)
        return 1 if stale else 0
    for path, (old, new) in generated().items():
        if old != new:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
