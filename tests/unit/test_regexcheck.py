"""Catastrophic backtracking in ``redact_patterns`` is refused before it reaches the daemon
(corral.config.regexcheck, used by the converter of ``redact_patterns``)."""

from __future__ import annotations

import time

import pytest

from corral.config.convert import Invalid
from corral.config.logkeys import to_patterns
from corral.config.regexcheck import PROBLEM, backtracking_problem

CATASTROPHIC = [r"(a+)+$", r"(x|x)*y", r"^(\w+\s?)*$", r"(a|aa)+$", r"((?:ab)*)*c", r"(\d+|\w+)*!",
                r"(?:a*)*b", r"^(([a-z])+.)+[A-Z]([a-z])+$"]
SAFE = [r"sk_live_[0-9a-zA-Z]{24}", r"password=(\S+)", r"(\d{3}-\d{2}-\d{4})", r"(\w+)=secret",
        r"(?:token|key)=(\w+)", r"(?:[a-z]+\.)+com", r"(ab+)+$", r"([a-z0-9]+[-_])*[a-z0-9]+@",
        r"(?:\s*,\s*\w+)*;", r"(.*a){12}", r"AKIA[0-9A-Z]{16}", r"ghp_[A-Za-z0-9]{36}", r"x(?:ab|cd)*y"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_is_refused(pattern: str) -> None:
    start = time.monotonic()
    assert backtracking_problem(pattern) == PROBLEM
    assert time.monotonic() - start < 5.0  # bounded: BUDGET, plus one confirmation


@pytest.mark.parametrize("pattern", SAFE)
def test_a_usual_pattern_passes_quickly(pattern: str) -> None:
    start = time.monotonic()
    assert backtracking_problem(pattern) is None
    assert time.monotonic() - start < 1.0


def test_the_converter_names_the_entry_and_the_pattern() -> None:
    with pytest.raises(Invalid) as err:
        to_patterns(["sk_[a-z]+", "(a+)+$"])
    assert (err.value.suffix, err.value.value, str(err.value)) == ("[1]", "(a+)+$", PROBLEM)
    assert to_patterns(["sk_[a-z]+"]) == ["sk_[a-z]+"]
