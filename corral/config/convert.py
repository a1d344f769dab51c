"""Value converters for app settings: raw config values in, normalized values out.

Each converter takes one raw value (from TOML, YAML, JSON, node or the command
line) and returns the normalized value, or raises :class:`Invalid` whose text
says what is accepted.  :mod:`corral.config.fields` declares which converter
each field uses and formats the messages.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
from typing import Any

from corral.config import limits
from corral.config.command import is_valid_name
from corral.exceptions import UserMistake
from corral.units import parse_duration


class Invalid(UserMistake):
    """A converter's complaint: ``text`` says what is accepted."""

    def __init__(self, text: str, *, show_value: bool = True, suffix: str = "", value: Any = None) -> None:
        super().__init__(text)
        self.text = text
        self.show_value = show_value
        self.suffix = suffix
        self.value = value


SHOWN = 200  # characters of a value shown in a message; a longer one is cut with "..."


def render(value: Any) -> str:
    """A value as shown in messages: JSON, falling back to ``str`` for odd types; cut after
    :data:`SHOWN` characters (a 400-digit number or a huge list still makes one short line)."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (ValueError, RecursionError):  # a circular or very deep value
        text = type(value).__name__
    if len(text) > SHOWN:
        return text[: SHOWN - 3] + "..."
    return text


def _text(value: str, what: str) -> str:
    problem = limits.text_problem(value)
    if problem is not None:
        raise Invalid(f"{problem} ({what} cannot hold one)")
    if len(value) > limits.MAX_STRING:
        raise Invalid(f"is {len(value)} characters long ({what}: at most {limits.MAX_STRING})", show_value=False)
    return value


def shown_key(key: str) -> str:
    """A key (or a name) as written, when it is short printable text; else quoted and escaped, so
    that a message stays one line whatever the file holds."""
    return key if key.isprintable() and len(key) <= 80 else render(key)


NAME_HINT = '(use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit; not all digits; not "all")'


def to_name(value: Any) -> str:
    """An app or namespace name following the name rule."""
    if not is_valid_name(value):
        raise Invalid(f"is not a valid name {NAME_HINT}")
    return str(value)


def to_path(value: Any) -> str:
    """A non-empty string (paths are resolved later, against the app's cwd)."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("is not a path (use a non-empty string)")
    problem = limits.path_problem(value)
    if problem is not None:
        raise Invalid(problem)
    return value


def to_account(value: Any) -> str:
    """A user or group: a name, or a numeric id kept as a string."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32 - 1:
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= limits.MAX_ACCOUNT and limits.text_problem(value) is None:
        return value.strip()
    raise Invalid("is not an account (use a name or a numeric id)")


def to_cmd(value: Any) -> list[str]:
    """A non-empty argv list of strings, kept exactly as given."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value) or not value[0]:
        raise Invalid('is not a command (use a non-empty list of strings, like ["uvicorn", "app:main"])')
    return _strings(value, "a command")


def _strings(items: list[Any], what: str) -> list[str]:
    if len(items) > limits.MAX_LIST:
        raise Invalid(f"has {len(items)} items ({what}: at most {limits.MAX_LIST})", show_value=False)
    return [_text(str(item), "an argument") for item in items]


def to_args(value: Any) -> list[str]:
    """A list of arguments; a string is split like a shell would (PM2 accepts both)."""
    if isinstance(value, str):
        try:
            return _strings(shlex.split(_text(value, "an argument")), "a list of arguments")
        except ValueError:
            raise Invalid("is not a list of arguments (unbalanced quotes; use a list of strings)") from None
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return _strings(value, "a list of arguments")
    raise Invalid("is not a list of arguments (use a string or a list of strings)")


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def to_instances(value: Any) -> int:
    """N >= 1; ``"max"`` or 0 = one per CPU; -N = CPUs minus N (at least 1); at most the
    ceiling (:func:`corral.config.limits.max_instances`)."""
    number: int | None = None
    if isinstance(value, str):
        text = value.strip().lower()
        number = 0 if text == "max" else int(text) if re.fullmatch(r"-?[0-9]{1,12}", text) else None
        if number is None and re.fullmatch(r"[0-9]{13,}", text):
            number = limits.CEILING_LIMIT + 1  # too many, whatever the ceiling
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():  # NaN and infinity are not
        number = int(value)
    if number is None:
        raise Invalid('is not an instance count (use a number >= 1, "max" or 0 for one per CPU, -1 for one less)')
    ceiling = limits.max_instances()
    if number <= 0:
        return min(ceiling, max(1, cpu_count() + max(number, -cpu_count())))
    if number > ceiling:
        raise Invalid(f"is too many instances ({limits.instances_hint(ceiling)})")
    return number


def _kind(value: Any) -> str:
    """A value's type in config words; env errors show this, never the value (secrets)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Invalid(f"is {_kind(value)} (use a string, number or boolean)", show_value=False)


def to_env(value: Any) -> dict[str, str]:
    """A table of variables with values stringified (``true`` -> ``"true"``)."""
    if not isinstance(value, dict):
        raise Invalid(f'is {_kind(value)} (use a table of NAME = "value" pairs)', show_value=False)
    if len(value) > limits.MAX_ENV:
        raise Invalid(f"has {len(value)} variables (at most {limits.MAX_ENV})", show_value=False)
    result: dict[str, str] = {}
    for key, item in value.items():
        name = str(key)
        if not name or "=" in name or limits.text_problem(name) is not None or len(name) > limits.MAX_STRING:
            raise Invalid('is not a variable name (no "=" and not empty)', suffix=f"[{render(name)}]", value=name)
        try:
            result[name] = _env_value(item)
            if limits.text_problem(result[name]) is not None or len(result[name]) > limits.MAX_STRING:
                raise Invalid(f"is not a value the OS can pass (no NUL, at most {limits.MAX_STRING} characters)",
                              show_value=False)
        except Invalid as exc:
            raise Invalid(exc.text, show_value=exc.show_value, suffix=f".{name}", value=item) from None
    return result


_POLICIES = {"always": "always", "on-failure": "on-failure", "never": "never", True: "always", False: "never"}


def to_restart_policy(value: Any) -> str:
    """``"always"`` | ``"on-failure"`` | ``"never"``; PM2's true/false map to always/never."""
    policy = _POLICIES.get(value) if isinstance(value, (str, bool)) else None
    if policy is None:
        raise Invalid('is not a restart policy (use true, false, "always", "on-failure" or "never")')
    return policy


def to_duration(value: Any) -> float:
    """Seconds, from milliseconds (numbers) or a unit string (see :func:`corral.units.parse_duration`)."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise Invalid('is not a duration (try "5s" or "500ms")') from None
    if seconds > limits.MAX_DURATION:
        raise Invalid(f'is too long a duration ({limits.DURATION_HINT}: "7d")')
    return seconds


def to_count(value: Any) -> int:
    """A whole number >= 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if value > limits.MAX_COUNT:
            raise Invalid(f"is too large a restart limit (at most {limits.MAX_COUNT}; leave it out for no limit)")
        return value
    raise Invalid("is not a restart limit (use a whole number >= 0; leave it out for no limit)")


def canonical_signal(value: Any) -> str:
    """``"TERM"``, ``"sigterm"``, ``15`` -> ``"SIGTERM"``; ValueError otherwise."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return signal.Signals(value).name
        if isinstance(value, str):
            text = value.strip().upper()
            return signal.Signals[text if text.startswith("SIG") else "SIG" + text].name
    except (KeyError, ValueError):
        pass
    raise ValueError("not a signal")


def to_signal(value: Any) -> str:
    """A canonical signal name such as ``"SIGTERM"``."""
    try:
        return canonical_signal(value)
    except ValueError:
        raise Invalid('is not a signal (use a name like "SIGTERM", "TERM" or "INT", or a number like 15)') from None


def to_exit_codes(value: Any) -> list[int]:
    """A list of exit codes 0-255; a single number is a one-element list."""
    codes = value if isinstance(value, list) else [value]
    if len(codes) <= 256 and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in codes):
        return list(codes)
    raise Invalid("is not a list of exit codes (use a whole number 0-255 or a list of them)")


def to_bool(value: Any) -> bool:
    """true/false (also the strings "true"/"false", as flags may give them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Invalid("is not a boolean (use true or false)")
