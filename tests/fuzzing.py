"""What the three fuzzers share: hostile values, the number of cases, and their report.

The suite runs a short version of each fuzzer; ``bench/fuzz.py --cases N`` runs them long with
``CORRAL_FUZZ_CASES=N`` (and ``CORRAL_FUZZ_REPORT=FILE``, where each fuzzer appends one JSON line:
its name, cases tried, tracebacks, hangs and daemon deaths).  Each fuzzer also puts its line in
the test's ``user_properties``; ``tests/conftest.py`` prints them at the end of the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


def cases(default: int) -> int:
    """How many cases a fuzzer tries: ``CORRAL_FUZZ_CASES`` when set (the bench), else DEFAULT."""
    return int(os.environ.get("CORRAL_FUZZ_CASES") or default)


def fuzz_settings(default: int) -> settings:
    """Hypothesis settings for a fuzzer against real processes: no example database (every run
    explores anew), no per-example deadline (each call has its own), no shrinking of slow cases."""
    return settings(max_examples=cases(default), deadline=None, database=None,
                    phases=(Phase.explicit, Phase.generate, Phase.target),
                    suppress_health_check=list(HealthCheck))


class Tally:
    """What a fuzzer saw: cases tried, and each kind of failure with its first few examples."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases = 0
        self.seen: dict[str, int] = {}  # outcomes, for the report (how many were accepted, refused ...)
        self.failures: dict[str, list[str]] = {"tracebacks": [], "hangs": [], "deaths": [], "wrong": []}

    def fail(self, kind: str, example: Any) -> None:
        self.failures[kind].append(repr(example)[:300])

    def saw(self, outcome: str) -> None:
        self.seen[outcome] = self.seen.get(outcome, 0) + 1

    def line(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in self.failures.items())
        seen = ", ".join(f"{k} {v}" for k, v in sorted(self.seen.items()))
        return f"{self.name}: {self.cases} cases, {counts}" + (f" ({seen})" if seen else "")

    def report(self, request: pytest.FixtureRequest) -> None:
        request.node.user_properties.append(("fuzz", self.line()))
        path = os.environ.get("CORRAL_FUZZ_REPORT")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps({"fuzzer": self.name, "cases": self.cases, "seen": self.seen,
                                    **{k: len(v) for k, v in self.failures.items()},
                                    "examples": {k: v[:3] for k, v in self.failures.items() if v}}) + "\n")

    def assert_clean(self) -> None:
        bad = {k: v[:3] for k, v in self.failures.items() if v}
        assert not bad, f"{self.line()}: {bad}"


# -- hostile values --------------------------------------------------------------------------
HOSTILE_NUMBERS = [10**400, -(10**400), 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 2**63, -(2**63),
                   100000000, 99999999999999999999, 0, -1, 1025, 0.5, 1e-300]
HOSTILE_TEXT = ["", " ", "\0", "a\0b", "\udcff", "\ud800", "1" * 400, "9" * 20, "1e308", "1e400", "nan", "inf",
                "-1", "max", "all", "KILL", "SIGKILL", "x" * 5000, "/tmp", "/dev/zero", "../..", "\n", "\x1b[31m",
                "²", "٣", "0x10", "+2", "-0", "10MB", "1TB", "7d", "8d", "((a+)+$", "(", "[", "{", "\\", "'\"'"]

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
           | st.sampled_from(HOSTILE_NUMBERS) | st.sampled_from(HOSTILE_TEXT))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12) | st.sampled_from(HOSTILE_TEXT), inner, max_size=5),
                           max_leaves=12)


@st.composite
def deeply_nested(draw: st.DrawFn) -> Any:
    depth = draw(st.sampled_from([33, 64, 500, 5000, 100_000]))
    value: Any = draw(scalars)
    for _ in range(min(depth, 2000)):  # deeper ones are built as text by the callers
        value = [value] if draw(st.booleans()) else {"k": value}
    return value
