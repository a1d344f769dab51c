"""Table tests for corral.app.redact: JSON keys at any depth, plain-line patterns, Luhn, bytes chunks."""

from __future__ import annotations

import json
import re

import pytest

from corral.app.redact import (
    PROVIDER_KEYS,
    REDACTED,
    SENSITIVE_KEYS,
    Redactor,
    luhn_ok,
    redact_bytes,
    redact_line,
    redact_obj,
)

CLEAN_LINES = [
    "2026-11-22T10:00:00.123+00:00 INFO  app.web GET /api/users/42 200 12.3ms user=bob ip=10.0.0.1 ok",
    '{"ts":"2026-11-22T10:00:00.123Z","level":"info","logger":"app","message":"request handled"}',
    '{ "spaced" : [1, 2, {"a": "b"}] ,  "x": null }',  # clean JSON keeps its own formatting
    "keyboard monkey=1 passed=yes author: Ann bypass=on tokenizer=bpe max_tokens=5",
    "password reset requested for bob",  # key with no separator
    "basic configuration loaded; bearer of bad news",  # scheme words without credentials
    "epoch 1732269600123 and 1732269600123456789 and id 9999999999999999",  # not card ranges
    "card 4111 1111 1111 1112 fails Luhn",
    "",
    "\n",
    "ünïcödé ✓ line with 🎉 and no secrets",
    '[1, 2, 3]',
    "{not json but braces}",
    "data: loaded 5 rows; db: ok; stream: open",  # payload keys are JSON-only
]


@pytest.mark.parametrize("line", CLEAN_LINES)
def test_clean_lines_come_back_identical(line: str) -> None:
    out = redact_line(line)
    assert out == line
    assert out is line


DIRTY_LINES = [
    # plain key=value / key: value
    ("login password=hunter2 user=bob", "login password=REDACTED user=bob"),
    ("Error: password=hunter2", "Error: password=REDACTED"),
    ("PASSWORD: hunter2", "PASSWORD: REDACTED"),
    ("pass = hunter2, next", "pass = REDACTED, next"),
    ("token=abc&x=1;y", "token=REDACTED&x=1;y"),
    ("url https://x/cb?access_token=abc&state=1", "url https://x/cb?access_token=REDACTED&state=1"),
    ("DB_PASSWORD=s3cret X-Api-Key: zzz", "DB_PASSWORD=REDACTED X-Api-Key: REDACTED"),
    ("spring.datasource.password=pw next", "spring.datasource.password=REDACTED next"),
    ("apiKey='abc' client_secret=\"def\"", "apiKey='REDACTED' client_secret=\"REDACTED\""),
    ("{'password': 'x', 'user': 'bob'}", "{'password': 'REDACTED', 'user': 'bob'}"),
    ("opts password => 'x'", "opts password => 'REDACTED'"),
    ('escaped {\\"password\\":\\"x\\"}', 'escaped {\\"password\\":\\"REDACTED\\"}'),
    ("Cookie: a=1; b=2", "Cookie: REDACTED"),
    ("set-cookie: sid=abc; Path=/; HttpOnly", "set-cookie: REDACTED"),
    ("key=users:42", "key=REDACTED"),  # the provider's `key` is sensitive
    # bearer / basic
    ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer REDACTED"),
    ("authorization=Token abcdef", "authorization=Token REDACTED"),
    ("sent Bearer eyJhbGciOi.eyJzdWIi.sig_-x", "sent Bearer REDACTED"),
    ("BEARER abcdefgh12345678", "BEARER REDACTED"),
    ('curl -H "Authorization: Basic dXNlcjpwYXNz"', 'curl -H "Authorization: Basic REDACTED"'),
    ("header Basic dXNlcjpwYXNz here", "header Basic REDACTED here"),
    # cards (Luhn-valid test numbers)
    ("card 4111 1111 1111 1111 ok", "card REDACTED ok"),
    ("card 4111-1111-1111-1111.", "card REDACTED."),
    ("mc 5555555555554444 amex 3782-822463-10005", "mc REDACTED amex REDACTED"),
    ("visa13 4222222222222 end", "visa13 REDACTED end"),
]


@pytest.mark.parametrize(("line", "expected"), DIRTY_LINES)
def test_plain_line_patterns(line: str, expected: str) -> None:
    assert redact_line(line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    ('{"user":"bob","password":"x"}', {"user": "bob", "password": REDACTED}),
    ('{"a":{"b":[{"c":{"Token":"t","ok":1}},{"apiKey":"k"}]}}',
     {"a": {"b": [{"c": {"Token": REDACTED, "ok": 1}}, {"apiKey": REDACTED}]}}),
    ('[{"secret": {"nested": "whole value goes"}}, 3]', [{"secret": REDACTED}, 3]),
    ('{"PASSWORD": 1, "Api-Key": [1], "private_key": null}',
     {"PASSWORD": REDACTED, "Api-Key": REDACTED, "private_key": REDACTED}),
    ('{"db_password": "x", "x-auth-token": "y", "github_access_token": "z"}',
     {"db_password": REDACTED, "x-auth-token": REDACTED, "github_access_token": REDACTED}),
    ('{"data": {"rows": 5}, "body": "x", "isUTF8Enabled": true}',
     {"data": REDACTED, "body": REDACTED, "isUTF8Enabled": REDACTED}),
    ('{"msg": "login password=hunter2", "h": "Bearer abcdefgh12345678"}',
     {"msg": "login password=REDACTED", "h": "Bearer REDACTED"}),
    ('{"card": "4111 1111 1111 1111", "n": 4111111111111111}', {"card": REDACTED, "n": 4111111111111111}),
    ('  {"password":"ünï"}  \n', {"password": REDACTED}),
])
def test_json_lines(line: str, expected: object) -> None:
    out = redact_line(line)
    assert json.loads(out) == expected
    assert out.strip() == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert out[: len(out) - len(out.lstrip())] == line[: len(line) - len(line.lstrip())]
    assert out.endswith("\n") == line.endswith("\n")


@pytest.mark.parametrize("line", [
    '{"a": 1, "password": "REDACTED"}',  # already redacted: untouched, not re-serialised
    '{"level": "info", "count": 3}',
    '{"keys": [1], "monkey": "x", "hash_algo": "sha256"}',
])
def test_json_lines_without_secrets_are_byte_identical(line: str) -> None:
    assert redact_line(line) is line


def test_non_json_line_starting_with_brace_uses_text_rules() -> None:
    assert redact_line('{"password": "x", broken') == '{"password": "REDACTED", broken'


@pytest.mark.parametrize(("digits", "ok"), [
    ("4111111111111111", True), ("4111111111111112", False), ("5555555555554444", True),
    ("378282246310005", True), ("79927398713", True), ("79927398710", False), ("0", True),
])
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


def test_provider_key_list_is_complete() -> None:
    expected = {
        "body", "data", "password", "new_password", "pass", "passkeys", "token", "tokens", "hash",
        "hashes", "salt", "tls", "ssl", "key", "cert", "ca", "dhparam", "private_key", "dkim_private_key",
        "raw", "socket", "writeStream", "formatResponse", "getQueryResponse", "matchSearchQuery",
        "isUTF8Enabled", "db", "stream", "otp_recovery_keys", "api_token", "otp_token", "verification_pin",
        "auth", "google_access_token", "google_refresh_token", "github_access_token",
    }
    assert PROVIDER_KEYS == expected
    assert {"api_key", "access_token", "refresh_token", "client_secret", "secret", "authorization",
            "cookie", "set_cookie"} <= SENSITIVE_KEYS


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS))
def test_every_sensitive_key_redacted_in_json_and_any_case(key: str) -> None:
    for variant in (key, key.upper(), key.replace("_", "-")):
        line = json.dumps({variant: "v", "other": "o"})
        assert json.loads(redact_line(line)) == {variant: REDACTED, "other": "o"}


def test_extra_keys_and_patterns() -> None:
    r = Redactor(extra_keys=["ssn", "Employee-ID"],
                 extra_patterns=[r"sk_live_[0-9a-z]+", re.compile(r"pin (\d{4})")])
    assert r.redact_line("ssn=123-45-6789 employee_id: 77") == "ssn=REDACTED employee_id: REDACTED"
    assert r.redact_line('{"SSN": "1", "x": "sk_live_abc9"}') == '{"SSN":"REDACTED","x":"REDACTED"}'
    assert r.redact_line("stripe sk_live_abc9 ok") == "stripe REDACTED ok"
    assert r.redact_line("the pin 1234 was wrong") == "the pin REDACTED was wrong"
    assert r.redact_line("clean line") == "clean line"
    assert redact_line("ssn=123") == "ssn=123"  # the default redactor is not affected


def test_keys_can_replace_the_default_list() -> None:
    r = Redactor(keys=["password"])
    assert r.redact_line('{"data": 1, "password": 2}') == '{"data":1,"password":"REDACTED"}'
    assert r.redact_line("token=abc") == "token=REDACTED"  # strong suffixes stay


def test_redact_obj_copies_and_keeps_types() -> None:
    original = {"user": "bob", "password": 1, "items": [{"token": None}, "Bearer abcdefgh12345678"],
                "pair": (1, "password=3"), "n": 5}
    out = redact_obj(original)
    assert out == {"user": "bob", "password": REDACTED, "items": [{"token": REDACTED}, "Bearer REDACTED"],
                   "pair": (1, "password=REDACTED"), "n": 5}
    assert original["password"] == 1 and original["items"][0] == {"token": None}  # not mutated
    clean = {"a": [1, {"b": "c"}], "d": ("e",)}
    assert redact_obj(clean) is clean


def test_redact_obj_deep_nesting_does_not_blow_up() -> None:
    deep: object = {"password": "x"}
    for _ in range(500):
        deep = {"child": deep}
    out = redact_obj(deep)
    assert "x" not in json.dumps(out)


def test_redact_bytes_returns_same_object_when_clean() -> None:
    chunk = "".join(line + "\n" for line in CLEAN_LINES).encode()
    assert redact_bytes(chunk) is chunk
    assert redact_bytes(b"") == b""


def test_redact_bytes_matches_redact_line_per_line() -> None:
    lines = [line for line, _ in DIRTY_LINES] + CLEAN_LINES + ['{"password":"x"}']
    chunk = "".join(line.rstrip("\n") + "\n" for line in lines).encode()
    out = redact_bytes(chunk).decode()
    assert out.splitlines() == [redact_line(line.rstrip("\n")) for line in lines]


def test_redact_bytes_keeps_invalid_utf8_and_partial_last_line() -> None:
    chunk = b"bad \xff\xfe bytes password=x \xc3\n\xe2\x9c clean\npartial token=abc"
    assert redact_bytes(chunk) == b"bad \xff\xfe bytes password=REDACTED \xc3\n\xe2\x9c clean\npartial token=REDACTED"


def test_redact_bytes_with_extra_patterns_finds_the_right_lines() -> None:
    r = Redactor(extra_patterns=[r"sk_live_\w+"])
    chunk = b"one\ntwo sk_live_x1\nthree\nfour sk_live_y2 five\n"
    assert r.redact_bytes(chunk) == b"one\ntwo REDACTED\nthree\nfour REDACTED five\n"
    clean = b"a\nb\n"
    assert r.redact_bytes(clean) is clean


@pytest.mark.parametrize("line", [line for line, _ in DIRTY_LINES] + CLEAN_LINES + [
    "Password\t:\tx", 'TOKEN"  =  "x"', "x.API-KEY=1", "card 4111 1111 1111 1111 1111 111",
    "cookie: a=b", "tls: on", "bearer\tabcdefgh1234", "{\"Secret\" : \"x\"}",
])
def test_pre_filter_never_hides_work(line: str) -> None:
    """The fast pre-filter must flag every line the full rules would change."""
    r = Redactor()
    full = r._redact_line_slow(line)  # noqa: SLF001 - the rules without the pre-filter
    assert r.redact_line(line) == full
    if full != line:
        assert r.needs_work(line)


# -- redaction never loses a line (issue 8) ------------------------------------------------------
WITHHELD = Redactor.WITHHELD


def test_a_line_nested_past_the_interpreters_limit_is_redacted_as_text_and_its_neighbours_kept() -> None:
    """One ``{"token":[[[...`` line 1,000 deep raised RecursionError and lost its whole chunk."""
    deep = '{"token":"abc","x":' + "[" * 1000 + "]" * 1000 + "}"
    chunk = f"user=bob password=hunter2\n{deep}\nsafe\n".encode()
    out = redact_bytes(chunk).decode().split("\n")
    assert out[0] == "user=bob password=REDACTED" and out[2] == "safe"
    assert out[1].startswith('{"token":"REDACTED","x":[[[') and out[1].endswith("]]]}")
    assert Redactor().redact_chunk(chunk) == (redact_bytes(chunk), 0)


def test_json_deeper_than_the_bound_is_redacted_as_text() -> None:
    deep = '{"a":' * 70 + '"password=abc"' + "}" * 70
    assert redact_line(deep) == '{"a":' * 70 + '"password=REDACTED"' + "}" * 70
    shallow = '{"a":' * 10 + '{"password":"abc"}' + "}" * 10
    assert redact_line(shallow) == '{"a":' * 10 + '{"password":"REDACTED"}' + "}" * 10  # by key


def test_redact_chunk_withholds_only_the_lines_it_had_no_time_for() -> None:
    chunk = b"clean\npassword=1\nfine\ntoken=2\npartial Bearer abcdefgh12345678"
    assert Redactor().redact_chunk(chunk, budget=-1.0) == (
        f"clean\n{WITHHELD}\nfine\n{WITHHELD}\n{WITHHELD}".encode(), 3)
    assert Redactor().redact_chunk(chunk) == (redact_bytes(chunk), 0)
    clean = b"a\nb\n"
    assert Redactor().redact_chunk(clean, budget=-1.0) == (clean, 0) and Redactor().redact_chunk(clean)[0] is clean


class _Failing(Redactor):
    """Rules that raise on lines holding "boom" (a stand-in for a bug in the rules)."""

    def _redact_line_slow(self, line: str, reference: bool = False) -> str:
        if "boom" in line:
            raise ValueError("boom")
        return super()._redact_line_slow(line, reference)


def test_a_line_whose_rules_raise_is_withheld_and_the_others_redacted() -> None:
    chunk = b"ok\npassword=1 boom\npassword=2\n"
    assert _Failing().redact_chunk(chunk) == (f"ok\n{WITHHELD}\npassword=REDACTED\n".encode(), 1)
    with pytest.raises(ValueError):
        _Failing().redact_bytes(chunk)  # the plain API still raises: redact_chunk is the log writer's


def test_when_the_pre_filter_fails_every_line_is_withheld() -> None:
    class Broken(Redactor):
        def _dirty_starts(self, data: bytes) -> set[int]:
            raise MemoryError

    assert Broken().redact_chunk(b"a\nb\nc") == (f"{WITHHELD}\n{WITHHELD}\n{WITHHELD}".encode(), 3)
