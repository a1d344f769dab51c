"""The redaction pre-filter never hides work: the fast path (pre-filter, then the rules on the
flagged lines) gives exactly what the rules give on every line (the reference: no pre-filter,
no shortcut), line by line and chunk by chunk; clean chunks come back as the same object."""

from __future__ import annotations

import json
import random

import pytest

from corral.app._prefilter import FOLD, card_starts
from corral.app._secretnames import NOT_SECRET_KEYS, SENSITIVE_KEYS
from corral.app.redact import Redactor, default_redactor

TRICKY = [
    # digits that are not cards: epochs (ms, us, ns), 10-digit runs, ids, dates, hex ids
    '{"level":30,"time":1764460318123,"pid":4242,"msg":"order paid","orderId":94233030}',
    "ts=1764460318123456 ns=1764460318123456789 s=1764460318 id=12345678 day=2026-11-29",
    "L00000001 abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abc 001",
    "rid=c0cd221407ab7e79978432b3547ea1a0 trace=4bf92f3577b34da6a3ce929d0e0e4736",
    "uuid 550e8400-e29b-41d4-a716-446655440000 phone +49 30 1234 5678",
    "rid=fb0b5791f81dc6fff3a5620282854967 seq=0000139",  # a Luhn-valid run inside a hex id
    # cards in every layout the rule accepts
    "card 4111 1111 1111 1111 ok", "card 4111-1111-1111-1111.", "amex 3782 822463 10005",
    "visa13 4222222222222 end", "19 digits 6250941006528599123 x", "odd 41111111 1 1 1 1 1 1 1 end",
    "9999 4111 1111 1111 1111", "12 4111 1111 1111 1111", "4111 1111 1111 1111 2 too long",
    '{"card":"5555555555554444","n":4111111111111111}', "card:4111111111111111;",
    # names close to secret ones, and secret ones in every form
    '{"prompt_tokens":12,"completion_tokens":3,"cache_key":"ck_1","metadata":{"env":"prod"}}',
    '{"author":"ann","order_id":5,"idempotency_key":"ik","sortKey":"a","cacheKey":"b"}',
    "monkey=1 keyboard=2 bypass=3 passed=4 hash_algo=sha256 tokenizer=bpe max_tokens=5",
    'x-api-key: k1 X-Auth-Token: t1 "password" : "p1" \\"secret\\":\\"s1\\" db_pass=p2',
    "apiKey=k2 stripeKey=k3 sessionId=s2 session-id=s3 SESSION_ID=s4 cache key=k4 cache-key=k5",
    "{'password': 'x', 'user': 'bob'} opts password => 'y' spring.datasource.password=z",
    "Authorization: Bearer abcdefgh12345678 sent Basic dXNlcjpwYXNz basic configuration",
    "Cookie: a=1; b=2", "set-cookie: sid=abc; Path=/", "token=abc&x=1", "\u212aEY=abc",
    '{"headers":{"Authorization":"Bearer abcdefgh12345678"},"data":{"x":1},"body":"b"}',
    "data: loaded 5 rows; db: ok; stream: open", "upstream=10.0.0.1:8080 metadata=x",
]

NAMES = sorted(SENSITIVE_KEYS) + sorted(NOT_SECRET_KEYS) + [
    "order_id", "user_id", "prompt_tokens", "maxTokens", "metadata", "author", "monkey", "level",
    "dbPassword", "x-api-key", "github_token", "webhookSecret", "ssh_key", "stripeKey", "db_pass",
    "hash_salt", "aws_credentials", "cacheKey", "xcache_key", "my.cache.key", "cache__key"]
SEPARATORS = ["=", ": ", ":", " = ", '": "', '":', "' : '", '\\":\\"', "=>", " => "]
VALUES = ["hunter2", "4111 1111 1111 1111", "1764460318123", "Bearer abcdefgh12345678", "x"]


def generated(count: int = 3000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        name = rng.choice(NAMES)
        name = rng.choice([name, name.upper(), name.replace("_", "-")])
        sep = rng.choice(SEPARATORS)
        lead = '"' if sep.startswith('"') else "'" if sep.startswith("'") else ""
        pair = f"{lead}{name}{sep}{rng.choice(VALUES)}"
        out.append(rng.choice([f"{rng.choice(NAMES)}=1 {pair} end", json.dumps({name: rng.choice(VALUES)}), pair]))
    return out


def _reference(r: Redactor, line: str) -> str:
    return r._redact_line_slow(line, reference=True)  # noqa: SLF001 - the rules, no pre-filter


@pytest.mark.parametrize("line", TRICKY)
def test_tricky_lines_match_the_reference(line: str) -> None:
    r = default_redactor()
    assert r.redact_line(line) == _reference(r, line)
    assert r.redact_bytes(line.encode() + b"\n") == (_reference(r, line) + "\n").encode()


@pytest.mark.parametrize("redactor", [default_redactor(), Redactor(extra_keys=["sort_key", "ssn"]),
                                      Redactor(keys=["password"]), Redactor(extra_patterns=[r"sk_live_\w+"])])
def test_generated_lines_match_the_reference_line_by_line_and_in_chunks(redactor: Redactor) -> None:
    lines = generated() + TRICKY
    expected = [_reference(redactor, line) for line in lines]
    assert [redactor.redact_line(line) for line in lines] == expected
    chunk = "".join(line + "\n" for line in lines).encode()
    assert redactor.redact_bytes(chunk).decode().splitlines() == expected


def test_an_extra_key_is_not_hidden_by_the_identifier_exclusion() -> None:
    r = Redactor(extra_keys=["sort_key"])
    assert r.redact_bytes(b"sort_key=abc x\n") == b"sort_key=REDACTED x\n"
    assert default_redactor().redact_line("sort_key=abc x") == "sort_key=abc x"


def test_clean_chunks_come_back_as_the_same_object() -> None:
    r = default_redactor()
    clean = [line for line in TRICKY if _reference(r, line) == line]
    assert len(clean) >= 8
    chunk = "".join(line + "\n" for line in clean).encode()
    assert r.redact_bytes(chunk) is chunk


@pytest.mark.parametrize(("text", "starts"), [
    (b"card 4111 1111 1111 1111 ok", [5]),
    (b"t=1764460318123 id=4111111111111112", []),  # an epoch (starts with 1); a number failing Luhn
    (b"9999 4111 1111 1111 1111", [5]),
    (b"x 5555555555554444 y 378282246310005", [2, 21]),
])
def test_card_candidates_are_checked_where_the_digits_start(text: bytes, starts: list[int]) -> None:
    assert sorted(set(card_starts(text, text.translate(FOLD)))) == starts


FUZZ = ["password", "token", "key", "cache_key", "api-key", "Secret", "db", "ca", "x", "1", "=", ":", "=>", " ",
        "\t", '"', "'", "\\", "&", ";", ",", ".", "-", "_", "Bearer ", "Basic ", "cookie", "é", "\u212a", "{", "]",
        "4111 1111 1111 1111", "1764460318123"]


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_strings_match_the_reference(seed: int) -> None:
    """Short strings of names, separators, quotes and punctuation (this found names with trailing
    separators, "key_" or "cookie.", and "écache_key", which are secret)."""
    rng = random.Random(seed)
    r = Redactor(extra_keys=["sort_key"])
    lines = ["".join(rng.choice(FUZZ) for _ in range(rng.randrange(1, 14))) for _ in range(4000)]
    expected = [_reference(r, line) for line in lines]
    assert [r.redact_line(line) for line in lines] == expected
    chunk = "".join(line + "\n" for line in lines).encode()
    assert r.redact_bytes(chunk).decode().split("\n")[:-1] == expected
