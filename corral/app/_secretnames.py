"""The one rule for which names hold secrets: JSON keys in logs, ``key=value`` pairs, and the
environment variables ``corral describe`` masks.  Public through :mod:`corral.app.redact`
(``is_secret_name`` and the lists); this module only keeps that one under its size budget.

A name is secret when, compared after lower-casing it and treating ``-`` like ``_``:

* it is one of :data:`SENSITIVE_KEYS` (the provider's list plus common Python/HTTP names); a
  multi-word name also matches without separators, so ``api_key``, ``API-Key``, ``apiKey`` and
  ``APIKEY`` are one name;
* or it *ends* with one of :data:`STRONG_SUFFIXES` (``db_password``, ``x-api-key``,
  ``GITHUB_TOKEN``, ``webhookSecret``);
* or its last *word* is one of :data:`SECRET_WORDS` (``SSH_KEY``, ``stripeKey``, ``DB_PASS``,
  ``hash_salt``), words being split at ``_ - .`` and at camelCase humps, unless the name is one
  of the well-known non-secret ``..._key`` names of :data:`NOT_SECRET_KEYS` (``cache_key``,
  ``sort_key``, ``public_key`` ...).  A whole word is needed: ``MONKEY``, ``TURKEY``,
  ``KEYBOARD_LAYOUT``, ``BYPASS`` and ``COMPASS`` are not secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The provider's REDACTED_FIELDS, complete (reference §3.2 step 4).
PROVIDER_KEYS: frozenset[str] = frozenset("""
    body data password new_password pass passkeys token tokens hash hashes salt tls ssl key cert ca
    dhparam private_key dkim_private_key raw socket writeStream formatResponse getQueryResponse
    matchSearchQuery isUTF8Enabled db stream otp_recovery_keys api_token otp_token verification_pin
    auth google_access_token google_refresh_token github_access_token
""".split())

#: Common Python/HTTP names added to the provider's list.
PYTHON_KEYS: frozenset[str] = frozenset("""
    api_key access_token refresh_token id_token auth_token client_secret secret secret_key
    access_key passwd authorization proxy_authorization cookie set_cookie github_refresh_token
    session_id sessionid csrf_token secret_key_base
""".split())

SENSITIVE_KEYS: frozenset[str] = PROVIDER_KEYS | PYTHON_KEYS

#: Names redacted in structured data only, never as ``key=value`` in plain text.
PAYLOAD_KEYS: frozenset[str] = frozenset("""
    body data raw socket writeStream formatResponse getQueryResponse matchSearchQuery
    isUTF8Enabled db stream tls ssl
""".split())

#: A name ending with one of these (after normalisation) is secret.
STRONG_SUFFIXES: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "token", "credentials",
    "api_key", "private_key", "secret_key", "access_key",
)

#: A name whose last word is one of these is secret.
SECRET_WORDS: frozenset[str] = frozenset({"key", "pass", "salt", "cookie"})

#: ``<word>_key`` names that are identifiers, not secrets.
NOT_SECRET_KEYS: frozenset[str] = frozenset(f"{word}_key" for word in """
    public cache sort primary foreign partition range routing idempotency object row lookup dedup
    dedupe group index map dict
""".split())

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[_.\-\s]+")
_CACHE_LIMIT = 4096


def norm(name: str) -> str:
    return name.lower().replace("-", "_")


def variants(names: Iterable[str]) -> set[str]:
    """Normalised names plus, for multi-word names, the form without separators."""
    out: set[str] = set()
    for name in names:
        n = norm(name)
        out.add(n)
        out.add(n.replace("_", ""))
    return out


_STRONG = tuple(sorted(variants(STRONG_SUFFIXES)))


def _last_words(name: str) -> list[str]:
    words = [w for w in _WORDS.split(_CAMEL.sub("_", name).lower()) if w]
    return words[-2:]


class SecretNames:
    """The rule above for a list of exact names (:data:`SENSITIVE_KEYS`, or another list plus
    extra names); call it with a name.  Answers are cached (up to 4096 names)."""

    def __init__(self, exact: Iterable[str] = SENSITIVE_KEYS) -> None:
        self._exact = frozenset(variants(exact))
        self._cache: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            n = norm(name)
            hit = n in self._exact or n.endswith(_STRONG) or _secret_last_word(name)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[name] = hit
        return hit


def _secret_last_word(name: str) -> bool:
    words = _last_words(name)
    return bool(words) and words[-1] in SECRET_WORDS and "_".join(words) not in NOT_SECRET_KEYS


DEFAULT_NAMES = SecretNames()  # is_secret_name's, shared by the default Redactor


def is_secret_name(name: str) -> bool:
    """True when a value under ``name`` (a JSON key, a ``key=value`` key, an environment variable)
    is a secret: the rule the logs' redaction and ``corral describe``'s masking share."""
    return DEFAULT_NAMES(name)
