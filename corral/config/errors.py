"""The one error type of the config package.

A :class:`ConfigError` carries every problem found in a file, one line each,
already formatted as ``<file>: <where>: <key>: <value> <what is accepted>``;
``str()`` of the error is the first line so a one-line report stays useful.
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.exceptions import UserMistake


class ConfigError(UserMistake):
    """One or more one-line config problems (``.messages``), in file order."""

    def __init__(self, messages: str | Iterable[str]) -> None:
        if isinstance(messages, str):
            lines = [messages]
        else:
            lines = [str(message) for message in messages]
        if not lines:
            lines = ["invalid configuration"]
        super().__init__(lines[0])
        self.messages: list[str] = lines

    def __str__(self) -> str:
        return self.messages[0]
