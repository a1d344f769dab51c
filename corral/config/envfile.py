"""``.env`` files: the parser used by the daemon at every spawn (``env_file``).

Grammar (the common dotenv subset, no variable expansion):

* ``KEY=VALUE`` lines, optionally prefixed with ``export``; spaces around ``=``
  are allowed; keys are ``[A-Za-z_][A-Za-z0-9_.]*``;
* blank lines and ``#`` comment lines are skipped; an unquoted value ends at
  `` #`` (a ``#`` preceded by whitespace) and is stripped;
* ``'single quotes'`` are literal; ``"double quotes"`` understand ``\\n``,
  ``\\t``, ``\\r``, ``\\"``, ``\\\\`` and ``\\$``; quoted values may span lines;
* a later assignment of the same key wins.

Errors are :class:`~corral.config.errors.ConfigError` with ``line N:`` messages
(prefixed with the path by :func:`read_env_file`).
"""

from __future__ import annotations

import re

from corral.config.errors import ConfigError

_KEY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_TRAILER = re.compile(r"[ \t\r]*(?:#[^\n]*)?(?:\n|$)")


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted value opening at ``text[start]``; return it and the end offset."""
    quote = text[start]
    out: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == quote:
            return "".join(out), position + 1
        if char == "\\" and quote == '"' and position + 1 < len(text):
            following = text[position + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            position += 2
            continue
        out.append(char)
        position += 1
    raise ConfigError(
        f"line {_line_of(text, start)}: unterminated {quote}-quoted value (close it with {quote})"
    )


def _unquoted(text: str, start: int) -> tuple[str, int]:
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    raw = text[start:end]
    comment = re.search(r"[ \t]#", raw)
    if comment is not None:
        raw = raw[: comment.start()]
    return raw.strip(), min(end + 1, len(text))


def _assignment(text: str, position: int) -> tuple[str, str, int]:
    """Parse one ``KEY=VALUE`` starting at ``position``; return key, value, next offset."""
    line = _line_of(text, position)
    match = _KEY.match(text, position)
    if match is None:
        # The line itself is not shown: it may hold a secret.
        raise ConfigError(
            f'line {line}: expected KEY=VALUE (names use letters, digits, "_" and ".",'
            " not starting with a digit)"
        )
    key, position = match.group(1), match.end()
    value_start = position
    while value_start < len(text) and text[value_start] in " \t":
        value_start += 1
    if value_start < len(text) and text[value_start] in "'\"":
        value, position = _quoted(text, value_start)
        trailer = _TRAILER.match(text, position)
        if trailer is None:
            raise ConfigError(
                f"line {_line_of(text, position)}: text after the closing quote of {key}"
                " (only a # comment may follow)"
            )
        return key, value, trailer.end()
    value, position = _unquoted(text, position)
    return key, value, position


def parse_env_file(text: str) -> dict[str, str]:
    """Parse ``.env`` text into an ordered mapping of variable names to values."""
    result: dict[str, str] = {}
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end == -1 else end
        stripped = text[position:end].strip()
        if not stripped or stripped.startswith("#"):
            position = end + 1
            continue
        key, value, position = _assignment(text, position)
        result[key] = value
    return result


def read_env_file(path: str, timeout: float | None = None) -> dict[str, str]:
    """Read and parse the ``.env`` file at ``path``; errors name the path.  A regular file of at
    most 1 MiB (a FIFO or a device is refused, never waited for); ``timeout``: see ``read_capped``."""
    from corral.config.readfile import MAX_ENV_FILE, Unreadable, read_capped

    try:
        text = read_capped(path, MAX_ENV_FILE, timeout).decode("utf-8")
    except Unreadable as exc:
        hint = {"no such file": "env_file must name an existing .env file",
                "is a directory": "env_file must name a .env file"}.get(exc.reason, "")
        raise ConfigError(f"{path}: {exc.reason}" + (f" ({hint})" if hint else "")) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (save the .env file as UTF-8)") from None
    try:
        return parse_env_file(text)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {message}" for message in exc.messages]) from None
