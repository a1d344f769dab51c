"""Property tests of the redaction fast path: for any text built from the pieces that matter to
the rules (secret and look-alike names in every spelling, separators, quotes, blanks, digits
shaped like cards and epochs, scheme words, URLs, JSON objects), the pre-filter plus the rules
give byte for byte what the rules give without any shortcut (the reference), line by line and
chunk by chunk, and a chunk with nothing to redact comes back as the same object."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.app import _prefilter
from corral.app._secretnames import NOT_SECRET_KEYS, SENSITIVE_KEYS, STRONG_SUFFIXES
from corral.app.redact import Redactor, default_redactor

PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))

NAMES = sorted(SENSITIVE_KEYS | NOT_SECRET_KEYS | set(STRONG_SUFFIXES)) + [
    "order_id", "prompt_tokens", "metadata", "author", "monkey", "level", "passed", "tokenizer", "ts", "time",
    "dbPassword", "x-api-key", "webhookSecret", "stripeKey", "db_pass", "cacheKey", "key_", "cookie.", "sort_key",
    "ssn", "x2", "foo-", "écache_key", "\u212aey"]
SEPARATORS = ["=", ":", ": ", " = ", "  :  ", "=>", '":"', '": "', "':'", '\\":\\"', "\t=\t", " "]
VALUES = ["hunter2", "s3cr3t!", "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005",
          "4111111111111112", "1764460318123", "20261130", "2026-11-30T07:04:02.123+00:00", "Bearer abcdefgh12345678",
          "Basic dXNlcjpwYXNz", "basic plan", "x", "", "42", "12.5", "ok; next", "a&b=c", "Bearer\ttok_abcdefgh"]
PIECES = ["Authorization: Bearer abcdefgh12345678", "postgres://u:pw@db/x", "https://example.com/a?b=c",
          "set-cookie: sid=abc; Path=/", "Cookie: a=1", "\\", "'", '"', " ", "\t", ",", ";", "&", "{", "}", "[", "é",
          "order 42", "12:34:56", "L00000001", "abcdefghijklmnopqrstuvwxyz0123456789", "ck_f6cd5bc2c2e6c3f0"]


def _reference(r: Redactor, line: str) -> str:
    return r._redact_line_slow(line, reference=True)  # noqa: SLF001 - the rules, no pre-filter


spellings = st.sampled_from(NAMES).flatmap(
    lambda n: st.sampled_from([n, n.upper(), n.replace("_", "-"), n.title().replace("_", ""), n.replace("_", ".")]))
pairs = st.builds(lambda k, s, v: f"{k}{s}{v}", spellings, st.sampled_from(SEPARATORS), st.sampled_from(VALUES))
json_values = st.recursive(
    st.sampled_from(VALUES) | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(spellings, inner, max_size=4), max_leaves=8)
json_lines = st.dictionaries(spellings, json_values, max_size=6).map(
    lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":")))
text_lines = st.lists(pairs | st.sampled_from(PIECES) | spellings | st.sampled_from(VALUES), max_size=8).map(" ".join)
glued = st.lists(pairs | st.sampled_from(PIECES + SEPARATORS) | spellings, max_size=8).map("".join)
lines = (text_lines | json_lines | glued).filter(lambda s: "\n" not in s and "\r" not in s)


def _python_passes(make: Callable[[], Redactor]) -> Redactor:
    """The redactor ``make`` builds, with the pre-filter's Python passes instead of the native scan."""
    saved, _prefilter.NATIVE = _prefilter.NATIVE, False
    try:
        return make()
    finally:
        _prefilter.NATIVE = saved


MAKERS: list[Callable[[], Redactor]] = [
    Redactor, lambda: Redactor(extra_keys=["sort_key", "ssn", "foo-", "x2"]), lambda: Redactor(keys=["password", "db"]),
    lambda: Redactor(extra_patterns=[r"ck_[0-9a-f]{16}"])]
# both ways of asking the pre-filter's questions: the native scan (when built) and the Python passes
redactors = st.sampled_from([default_redactor(), *(m() for m in MAKERS[1:]), *(_python_passes(m) for m in MAKERS)])


@PROPERTY
@given(redactors, st.lists(lines, min_size=1, max_size=30))
def test_the_fast_path_equals_the_rules_line_by_line_and_in_chunks(r: Redactor, batch: list[str]) -> None:
    expected = [_reference(r, line) for line in batch]
    assert [r.redact_line(line) for line in batch] == expected
    chunk = "".join(line + "\n" for line in batch).encode("utf-8", "surrogatepass")
    out = r.redact_bytes(chunk)
    assert out == "".join(line + "\n" for line in expected).encode("utf-8", "surrogatepass")
    if expected == batch:
        assert out is chunk  # nothing to redact: not even a copy
    assert r.redact_chunk(chunk, 10.0) == (out, 0)


@PROPERTY
@given(st.lists(lines, min_size=2, max_size=12), st.integers(0, 11))
def test_a_line_is_redacted_the_same_wherever_it_is_in_a_chunk(batch: list[str], at: int) -> None:
    r = default_redactor()
    line = batch.pop(at % len(batch))
    alone = r.redact_bytes(line.encode() + b"\n")
    for i in (0, len(batch) // 2, len(batch)):
        around = batch[:i] + [line] + batch[i:]
        out = r.redact_bytes("".join(x + "\n" for x in around).encode()).split(b"\n")
        assert out[i] + b"\n" == alone


@PROPERTY
@given(redactors, st.lists(lines, min_size=1, max_size=30), st.integers(1, 400))
def test_a_chunk_looked_at_in_pieces_gives_what_the_rules_give(r: Redactor, batch: list[str], piece: int) -> None:
    """The pre-filter cuts a large chunk into pieces of whole lines (a line longer than a piece
    is a piece of its own): with pieces of 1 to 400 bytes, no line is missed or cut."""
    expected = "".join(_reference(r, line) + "\n" for line in batch).encode("utf-8", "surrogatepass")
    chunk = "".join(line + "\n" for line in batch).encode("utf-8", "surrogatepass")
    saved = _prefilter.PIECE
    try:
        _prefilter.PIECE = piece
        assert r.redact_bytes(chunk) == expected
        assert r.redact_bytes(chunk[:-1]) == expected[:-1]  # the last line without its newline
    finally:
        _prefilter.PIECE = saved


def test_a_large_chunk_is_looked_at_in_pieces_below_the_mmap_threshold() -> None:
    r = default_redactor()
    secret = b'{"level":"info","password":"hunter2"}\n'
    clean = b"2026-11-30 07:04:02,123 INFO worker: processed job 42 in 17 ms\n"
    long_line = b"x" * (3 * _prefilter.PIECE) + b" token=abc\n"
    chunk = clean * 2000 + secret + clean * 700 + long_line + clean * 5 + secret
    assert len(chunk) > 4 * _prefilter.PIECE
    out = r.redact_bytes(chunk).split(b"\n")
    lines = chunk.split(b"\n")
    changed = [i for i, (a, b) in enumerate(zip(lines, out, strict=True)) if a != b]
    assert changed == [2000, 2701, 2707]
    assert out[2000] == out[2707] == b'{"level":"info","password":"REDACTED"}'
    assert out[2701].endswith(b" token=REDACTED")
