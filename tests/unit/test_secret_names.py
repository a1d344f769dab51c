"""One rule for secret names: the logs redact exactly the names ``corral describe`` masks."""

from __future__ import annotations

import json

import pytest

from corral.app.redact import REDACTED, Redactor, is_secret_name, redact_line
from corral.daemon.ops.apps import MASK, mask_env

SECRET = [
    # the four, shown in clear by describe before
    "AUTHORIZATION", "COOKIE", "SESSION_ID", "SALT",
    # describe's old suffixes and the logs' names
    "DB_PASSWORD", "API_KEY", "GITHUB_TOKEN", "SMTP_PASS", "DB_PASSWD", "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS", "SSH_KEY", "STRIPE_KEY", "ENCRYPTION_KEY", "GPG_PASSPHRASE",
    "SECRET_KEY_BASE", "WEBHOOK_SECRET", "PASSWORD", "TOKEN", "KEY", "HASH_SALT", "SESSION_COOKIE",
    # JSON spellings: case, separators and camelCase do not matter
    "api_token", "apiToken", "API-TOKEN", "Api_Token", "apitoken", "sshKey", "dbPass", "x-api-key",
    "clientSecret", "refreshToken", "set-cookie",
    # the provider's payload names: structured data only in logs, so masked in the environment too
    "DB", "DATA", "BODY", "TLS",
]
NOT_SECRET = [
    "PATH", "HOME", "LOG_LEVEL", "PORT", "LANG", "USER", "NODE_ENV", "PYTHONUNBUFFERED", "CORRAL_APP",
    "KEYBOARD_LAYOUT", "MONKEY", "TURKEY", "BYPASS", "COMPASS", "PASSED", "AUTHOR", "TOKENIZER",
    "MAX_TOKENS", "KEYS", "HASH_ALGO", "CACHE_KEY", "cacheKey", "SORT_KEY", "PUBLIC_KEY", "PRIMARY_KEY",
    "AWS_ACCESS_KEY_ID", "PASSWORD_FILE", "TOKEN_TTL", "SALT_ROUNDS", "monkey",
]


@pytest.mark.parametrize("name", SECRET)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", NOT_SECRET)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def _log_redacts(name: str) -> bool:
    return json.loads(redact_line(json.dumps({name: "v"})))[name] == REDACTED


@pytest.mark.parametrize("name", SECRET + NOT_SECRET)
def test_describe_masks_exactly_what_the_logs_redact(name: str) -> None:
    masked = mask_env({name: "v", "PATH": "/bin"})
    assert masked["PATH"] == "/bin"
    assert (masked[name] == MASK) is _log_redacts(name) is (name in SECRET)


def test_describe_masks_the_apps_own_redact_keys_too() -> None:
    env = {"SSN": "1", "EMPLOYEE_ID": "2", "LOG_LEVEL": "info", "API_KEY": "k"}
    assert mask_env(env, ["ssn", "employee-id"]) == {"SSN": MASK, "EMPLOYEE_ID": MASK, "LOG_LEVEL": "info",
                                                      "API_KEY": MASK}
    r = Redactor(["ssn", "employee-id"])
    assert r.redact_line('{"SSN": "1", "EMPLOYEE_ID": "2"}') == '{"SSN":"REDACTED","EMPLOYEE_ID":"REDACTED"}'


@pytest.mark.parametrize(("line", "expected"), [
    ("ssh_key=abc user=bob", "ssh_key=REDACTED user=bob"),
    ("stripeKey: sk_123 ok", "stripeKey: REDACTED ok"),
    ("DB_PASS=hunter2", "DB_PASS=REDACTED"),
    ("GOOGLE_APPLICATION_CREDENTIALS=/etc/creds.json", "GOOGLE_APPLICATION_CREDENTIALS=REDACTED"),
    ("cache_key=users:42 monkey=1", "cache_key=users:42 monkey=1"),
])
def test_plain_lines_follow_the_same_rule(line: str, expected: str) -> None:
    r = Redactor()
    assert redact_line(line) == expected == r._redact_line_slow(line)  # noqa: SLF001 - pre-filter agrees
