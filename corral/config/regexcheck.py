"""Whether a regular expression backtracks catastrophically: ``corral validate`` (and ``start``)
refuse such a ``redact_patterns`` entry before it reaches the daemon.

Python's ``re`` backtracks: ``(a+)+$`` or ``(x|x)*y`` take exponential time on a run of ``a``
(``x``) that ends in a character they do not accept, so one line of an app could hold the
daemon's event loop for hours.  (The daemon interrupts every search of an app's own patterns
anyway, ``corral.logs.lines.guarded``: the lines are then withheld, and this check says so
before any is.)  Two steps:

1. the shape, from ``re``'s own parser: only a pattern with a repeat inside a repeat, or an
   alternation inside a repeat, can explode; every other one passes at once;
2. a measure: such a pattern is searched on strings made of its own characters (a run of one or
   two of them, or of one and ``-``, then a character that makes the match fail: a NUL, or
   ``!``), longer and longer
   (up to :data:`LONGEST` characters).  A safe pattern takes microseconds on any of them; a
   catastrophic one doubles its time with each character.  A search over :data:`SLOW` seconds
   (measured twice, so a busy machine does not count) rejects the pattern.  The whole check is
   bounded by :data:`BUDGET` seconds (``SIGALRM`` interrupts a search, on the main thread).
"""

from __future__ import annotations

import importlib
import re
import signal
import threading
import time
from typing import Any

from corral.exceptions import CorralError

_parser: Any = importlib.import_module("re._parser")  # re's own parser (no public name, no stub)
C: Any = importlib.import_module("re._constants")  # its names for the parse tree

SLOW = 0.05
BUDGET = 2.0
LONGEST = 40
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)


PROBLEM = ("backtracks catastrophically: its time grows exponentially with the length of a line "
           "(a repeat inside a repeat, like (a+)+, or alternatives that match the same text inside a repeat, "
           "like (x|x)*); rewrite it")


class _OutOfTime(CorralError):  # noqa: N818 - internal: never leaves this module
    pass


def backtracking_problem(pattern: str) -> str | None:
    """Why ``pattern`` (a valid regular expression) is refused, or None (see the module docstring)."""
    try:
        tree = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None  # not a regular expression: the caller says so
    if not _suspect(list(tree), False):
        return None
    compiled = re.compile(pattern)
    chars = list(dict.fromkeys([*_chars(list(tree)), "a", "-"]))  # "-": one the pattern may not accept
    try:
        with _deadline(BUDGET):
            slow = _slowest(compiled, chars) is not None
    except _OutOfTime:
        slow = True
    return PROBLEM if slow else None


def _suspect(items: list[tuple[Any, Any]], in_repeat: bool) -> bool:
    """Whether the parse tree has a repeat or an alternation inside a repeat."""
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            repeats = high is C.MAXREPEAT or high > 1
            if repeats and in_repeat:
                return True
            if _suspect(list(sub), in_repeat or repeats):
                return True
        elif op is C.BRANCH:
            if in_repeat:
                return True
            if any(_suspect(list(alt), in_repeat) for alt in av[1]):
                return True
        elif op is C.SUBPATTERN:
            if _suspect(list(av[3]), in_repeat):
                return True
        elif op is C.ATOMIC_GROUP:
            if _suspect(list(av), in_repeat):
                return True
        elif op in (C.ASSERT, C.ASSERT_NOT):
            if _suspect(list(av[1]), in_repeat):
                return True
        elif op is C.GROUPREF_EXISTS:
            if any(_suspect(list(sub), in_repeat) for sub in av[1:] if sub is not None):
                return True
    return False


_CATEGORY = {C.CATEGORY_DIGIT: "0", C.CATEGORY_WORD: "a", C.CATEGORY_SPACE: " ",
             C.CATEGORY_NOT_DIGIT: "a", C.CATEGORY_NOT_WORD: "-", C.CATEGORY_NOT_SPACE: "a"}


def _chars(items: list[tuple[Any, Any]], found: list[str] | None = None) -> list[str]:
    """Characters the pattern accepts somewhere (its literals, one of each class), in order."""
    found = [] if found is None else found
    for op, av in items:
        if op is C.LITERAL:
            found.append(chr(av))
        elif op is C.RANGE:
            found.append(chr(av[0]))
        elif op is C.CATEGORY:
            found.append(_CATEGORY.get(av, "a"))
        elif op is C.ANY or op is C.NOT_LITERAL:
            found.append("a")
        elif op is C.IN:
            _chars(list(av), found)
        elif op in _REPEATS:
            _chars(list(av[2]), found)
        elif op is C.BRANCH:
            for alt in av[1]:
                _chars(list(alt), found)
        elif op is C.SUBPATTERN:
            _chars(list(av[3]), found)
        elif op is C.ATOMIC_GROUP:
            _chars(list(av), found)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            _chars(list(av[1]), found)
    return list(dict.fromkeys(found))[:8]


def _slowest(compiled: re.Pattern[str], chars: list[str]) -> str | None:
    """The first adversarial string whose search takes over :data:`SLOW` twice, or None."""
    pumps = chars + [a + b for a in chars for b in chars if a != b]
    for pump in pumps:
        for end in ("\0", "!"):
            for count in range(1, LONGEST // len(pump) + 1):
                text = pump * count + end
                if _timed(compiled, text) > SLOW and _timed(compiled, text) > SLOW:  # twice: not a busy machine
                    return text
    return None


def _timed(compiled: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    compiled.search(text)
    return time.perf_counter() - start


class _deadline:  # noqa: N801 - used as a context manager
    """``SIGALRM`` after ``seconds`` raises _OutOfTime (main thread only; elsewhere: no limit)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> None:
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _fire(signum: int, frame: Any) -> None:
        raise _OutOfTime
