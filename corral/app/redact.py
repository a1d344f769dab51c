"""Redaction of secrets in log lines and structured log records (spec L4).

Two kinds of redaction, both replacing the secret by the word ``REDACTED``:

* **By key** (the provider's rule, reference §3.2 step 4): in a JSON log line, or in a structured
  object given to :func:`redact_obj`, the value of every sensitive key is replaced at any depth
  (dicts inside lists inside dicts ...), whatever the value's type.
* **By pattern**, in plain lines and in every string value of a JSON line:
  ``Authorization: Bearer <token>`` / ``Bearer <token>`` (token of 8+ token68 characters),
  ``Basic <b64>`` (only when the base64 decodes to ``user:password``), ``key=value`` /
  ``key: value`` pairs whose key is sensitive (the value runs up to whitespace, ``&``, ``;``,
  ``,``, a quote or a backslash; for ``cookie``/``set-cookie`` to the end of the line or quoted
  string; a scheme word such as ``Bearer`` is kept: ``Authorization: Bearer REDACTED``), and
  card numbers: 13-19 digits, optionally separated by single spaces or dashes, the first two
  groups at least 4 digits long (every real layout: 4-4-4-4, 4-6-5, plain), first digit 2-6 (the
  card networks' ranges; this keeps 13- and 19-digit epoch timestamps out), passing the Luhn check.
  The whole number is replaced (nothing is kept, not even the last 4 digits).
* **URL credentials**: the password of ``scheme://user:password@host`` (``postgres://u:secret@h/db``,
  ``https://deploy:ghs_...@github.com``) becomes ``REDACTED``; the user name and the rest of
  the URL stay.  :func:`redact_url_credentials` applies this rule alone (``corral describe`` masks
  environment values and arguments with it).

Key matching is :func:`is_secret_name`, the one rule ``corral describe`` also uses to mask
environment variables: a key is compared after lower-casing it and treating ``-`` like ``_``;
multi-word keys also match with the separator removed, so ``api_key``, ``API-Key`` and ``apiKey``
are one key. A key also matches when it *ends* with one of :data:`STRONG_SUFFIXES`
(``db_password``, ``x-api-key``, ``webhook_secret``, ``csrf_token``) or when its last word is one
of :data:`SECRET_WORDS` (``ssh_key``, ``stripeKey``, ``db_pass``; not ``monkey``, nor the
identifiers of :data:`NOT_SECRET_KEYS` such as ``cache_key``). ``pass_word`` does not match
``password``. In plain lines the payload keys of :data:`PAYLOAD_KEYS` (``data``, ``body``, ``db``
...) are not used: the provider redacts them in structured logs for privacy and size, but
``db: connected`` in prose is no secret. Extra keys apply everywhere.

Public API: the names in ``__all__`` (the rules' lists are public so an app can see, and test,
what is hidden); everything else here is internal.

Speed. Most lines need nothing, so every line first goes through a pre-filter on a folded copy
(``bytes.translate``: ASCII lower-case, ``:`` to ``=``, digits to ``0``; for chunks a blank becomes
``-``; for single lines blanks, quotes and backslashes are deleted): one regex search of the
*reversed* copy for ``=`` followed by the reversed last word of any sensitive key (a trie, so the
search has a literal prefix), two ``rfind`` calls for a card's first 8 digits (``00000000``,
``0000-0000``; ``rfind`` is several times faster than ``find`` or a regex on digit-heavy text),
and one search for ``bearer``/``basic`` (plus one search per extra pattern). A single combined case-insensitive regex of all the keys has no literal prefix,
so CPython's ``re`` tries every position: it measured at best 0.2 M lines/s. On a shared 2-core
VM, clean ~100-byte lines run at 0.5-0.8 M lines/s through :meth:`Redactor.redact_line` and
1-2.6 M lines/s through :meth:`Redactor.redact_bytes` on 64 KiB chunks; dirty ones at 60-85 k/s
(bench/redact_speed.py). Use ``redact_bytes`` on the hot path. Only the lines the pre-filter
flags are parsed or rewritten; clean lines and chunks are returned unchanged (the same object).
The pre-filter is a superset of the rules (tests check it), except for JSON keys written with
``\\u`` escapes, which are not recognised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from corral.app._secretnames import (
    DEFAULT_NAMES, NOT_SECRET_KEYS, PAYLOAD_KEYS, PROVIDER_KEYS, SECRET_WORDS, SENSITIVE_KEYS, STRONG_SUFFIXES,
    SecretNames, is_secret_name, norm,
)

__all__ = [
    "REDACTED", "Redactor", "default_redactor", "redact_line", "redact_bytes", "redact_obj",
    "is_secret_name", "luhn_ok", "redact_url_credentials",
    "PROVIDER_KEYS", "SENSITIVE_KEYS", "PAYLOAD_KEYS", "STRONG_SUFFIXES", "SECRET_WORDS", "NOT_SECRET_KEYS",
]

REDACTED = "REDACTED"

_MAX_DEPTH = 64
_CI = re.IGNORECASE | re.ASCII  # ASCII: no Unicode case folding (e.g. "ſ" ~ "s") the pre-filter would miss
_AUTH_SCHEMES = r"(?:bearer|basic|token|digest|negotiate|apikey|api-key)"
# Pre-filter transform: ASCII lower-case, ':' -> '=', every digit -> '0'. For a single line the
# blanks, quotes and backslashes that may sit between a key and its separator are also deleted,
# so the key test is "'=' then a reversed key word" with no repetition in between.
_FOLD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789",
                        b"abcdefghijklmnopqrstuvwxyz=0000000000")
_FOLD_DELETE = b" \t\"'\\"
_CARD_GATE = re.compile(rb"0000-?0000-?0")  # chunks (_CHUNK_FOLD: positions kept, blanks are "-")
_card_gate_line = re.compile(rb"0000-?0000-?0").search  # lines (blanks deleted)
# Chunks: _FOLD, and a blank is "-" too, so a card's first 8 digits are "00000000" or "0000-0000"
_CHUNK_FOLD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789 ",
                              b"abcdefghijklmnopqrstuvwxyz=0000000000-")
_AUTH_GATE = re.compile(rb"b(?:earer|asic)")  # one pass for both words
_PAIR_RE = re.compile(r"(?<![\w.-])(?P<key>[\w.-]+)(?P<sep>\\?[\"']?[ \t]*(?:[:=]>?)[ \t]*\\?[\"']?)")
_VALUE_RE = re.compile(rf"(?P<scheme>{_AUTH_SCHEMES}[ \t]+)?(?![{{\[])[^\s&;,\"'\\]+", _CI)
_COOKIE_VALUE_RE = re.compile(r"[^\"'\r\n]*[^\"'\s\\]")
_BEARER_RE = re.compile(r"\b(bearer[ \t]+)[A-Za-z0-9\-._~+/]{8,}=*", _CI)
_BASIC_RE = re.compile(r"\b(basic[ \t]+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", _CI)
_CARD_RE = re.compile(r"(?<![0-9])[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9](?:[ -]?[0-9]){4,10}(?![0-9])")


def _trie(words: Iterable[str]) -> str:
    """A regex alternation factored as a trie, so each branch starts with one literal."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        parts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not parts:
            return ""
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        return "(?:" + body + ")?" if "" in node else body

    return emit(root)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Redactor:
    """Redacts secrets in lines, byte chunks and structured objects (see the module docstring)."""

    def __init__(self, extra_keys: Iterable[str] = (), extra_patterns: Iterable[str | re.Pattern[str]] = (),
                 *, keys: Iterable[str] | None = None) -> None:
        extra = [k for k in extra_keys if k]
        base = SENSITIVE_KEYS if keys is None else frozenset(keys)
        all_keys = set(base) | set(extra)
        text_keys = (set(base) - PAYLOAD_KEYS) | set(extra)
        self._is_key = SecretNames(all_keys) if keys is not None or extra else DEFAULT_NAMES
        self._is_text_key = SecretNames(text_keys)
        last_words = {norm(k).rsplit("_", 1)[-1] for k in all_keys | set(STRONG_SUFFIXES) | SECRET_WORDS}
        gate_words = {w.encode("utf-8").translate(_FOLD)[::-1].decode("latin-1") for w in last_words if w}
        trie = _trie(gate_words).encode("latin-1")
        self._kv_gate_re = re.compile(b"=[-\t\"'\\\\]*" + trie)  # chunks (_CHUNK_FOLD: blanks are "-")
        self._kv_gate_line = re.compile(b"=" + trie).search  # lines (blanks deleted)
        self._extras = [p if isinstance(p, re.Pattern) else re.compile(p) for p in extra_patterns]

    # -- pre-filter and public API ----------------------------------------------------------------
    def needs_work(self, line: str) -> bool:
        """The pre-filter: False means :meth:`redact_line` would return ``line`` unchanged."""
        folded = line.encode("utf-8", "surrogatepass").translate(_FOLD, _FOLD_DELETE)
        return (self._kv_gate_line(folded[::-1]) is not None or _card_gate_line(folded) is not None
                or folded.find(b"bearer") >= 0 or folded.find(b"basic") >= 0
                or any(p.search(line) for p in self._extras) or _has_url_credentials(line))

    def redact_line(self, line: str) -> str:
        """Redact one line (JSON or plain). Returns ``line`` itself when nothing was redacted."""
        folded = line.encode("utf-8", "surrogatepass").translate(_FOLD, _FOLD_DELETE)  # needs_work, inlined
        if (self._kv_gate_line(folded[::-1]) is None and _card_gate_line(folded) is None
                and folded.find(b"bearer") < 0 and folded.find(b"basic") < 0
                and not any(p.search(line) for p in self._extras) and not _has_url_credentials(line)):
            return line
        return self._redact_line_slow(line)

    def redact_bytes(self, data: bytes) -> bytes:
        """Redact a chunk of ``\\n``-terminated lines; returns ``data`` itself when nothing changed."""
        if not data:
            return data
        starts = self._dirty_line_starts(data)
        if not starts:
            return data
        out: list[bytes] = []
        last = 0
        for start in sorted(starts):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end + 1
            line = data[start:end].decode("utf-8", "surrogateescape")
            new = self._redact_line_slow(line)
            if new != line:
                out.append(data[last:start])
                out.append(_encode(new))
                last = end
        if not out:
            return data
        out.append(data[last:])
        return b"".join(out)

    def redact_obj(self, obj: Any) -> Any:
        """Redact structured data; returns a redacted copy, or ``obj`` itself when it is clean."""
        return self._walk(obj, 0)

    def is_sensitive_key(self, key: str) -> bool:
        """True when the value under ``key`` is replaced in structured data (with the default
        keys: :func:`is_secret_name`)."""
        return self._is_key(key)

    def redact_text(self, text: str) -> str:
        """Pattern redaction only (no JSON parsing); returns ``text`` itself when clean."""
        if not self.needs_work(text):
            return text
        return self._redact_text_slow(text)

    # -- internals --------------------------------------------------------------------------------
    def _dirty_line_starts(self, data: bytes) -> set[int]:
        """Byte offsets of the starts of the lines the pre-filter flags."""
        folded = data.translate(_CHUNK_FOLD)
        hits: list[int] = []
        rev = folded[::-1]
        if self._kv_gate_re.search(rev) is not None:
            top = len(data) - 1
            hits.extend(top - m.start() for m in self._kv_gate_re.finditer(rev))
        # a card starts with 4 digits, maybe a blank or a dash, 4 digits: two rfind()s (much faster
        # than find() or a regex on text full of digits) before the regex that finds the lines
        if folded.rfind(b"00000000") >= 0 or folded.rfind(b"0000-0000") >= 0:
            hits.extend(m.start() for m in _CARD_GATE.finditer(folded))
        if _AUTH_GATE.search(folded) is not None:
            hits.extend(m.start() for m in _AUTH_GATE.finditer(folded))
        hits.extend(_url_credential_hits(data))
        starts = {data.rfind(b"\n", 0, pos) + 1 for pos in hits}
        if self._extras:
            starts.update(self._extra_line_starts(data))
        return starts

    def _extra_line_starts(self, data: bytes) -> set[int]:
        """Line starts (byte offsets) of the lines where an extra pattern matches."""
        text = data.decode("utf-8", "surrogateescape")
        line_numbers = {text.count("\n", 0, m.start()) for p in self._extras for m in p.finditer(text)}
        if not line_numbers:
            return set()
        starts, pos, number = set(), 0, 0
        while number <= max(line_numbers):
            if number in line_numbers:
                starts.add(pos)
            pos = data.find(b"\n", pos) + 1
            if pos == 0:
                break
            number += 1
        return starts

    def _redact_line_slow(self, line: str) -> str:
        body = line.strip()
        if body[:1] in ("{", "["):
            try:
                obj = json.loads(body)
            except ValueError:
                pass
            else:
                new = self._walk(obj, 0)
                if new is obj:
                    return line
                lead = line[: len(line) - len(line.lstrip())]
                trail = line[len(line.rstrip()):]
                return lead + json.dumps(new, ensure_ascii=False, separators=(",", ":")) + trail
        return self._redact_text_slow(line)

    def _redact_text_slow(self, text: str) -> str:
        folded = text.encode("utf-8", "surrogatepass").translate(_FOLD, _FOLD_DELETE)
        new = text
        if self._kv_gate_line(folded[::-1]) is not None:
            new = self._redact_pairs(new)
        if folded.find(b"bearer") >= 0:
            new = _BEARER_RE.sub(_bearer_sub, new)
        if folded.find(b"basic") >= 0:
            new = _BASIC_RE.sub(_basic_sub, new)
        if _card_gate_line(folded) is not None:
            new = _CARD_RE.sub(_card_sub, new)
        for pattern in self._extras:
            new = pattern.sub(_extra_sub, new)
        new = redact_url_credentials(new)
        return text if new == text else new

    def _redact_pairs(self, text: str) -> str:
        """``key=value`` / ``key: value`` pairs with a sensitive key: the value becomes REDACTED."""
        pieces: list[str] = []
        last = 0
        for m in _PAIR_RE.finditer(text):
            if m.start() < last or not self._is_text_key(m["key"]):
                continue
            cookie = norm(m["key"]).replace("_", "").endswith("cookie")
            value = (_COOKIE_VALUE_RE if cookie else _VALUE_RE).match(text, m.end())
            if value is None:
                continue
            scheme = "" if cookie else value["scheme"] or ""
            pieces += [text[last:m.end()], scheme, REDACTED]
            last = value.end()
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def _walk(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, str):
            return self.redact_text(obj)
        if type(obj) is dict or isinstance(obj, Mapping):
            if depth >= _MAX_DEPTH:
                return REDACTED
            out: dict[Any, Any] | None = None
            for key, value in obj.items():
                if isinstance(key, str) and self.is_sensitive_key(key):
                    new = value if isinstance(value, str) and value == REDACTED else REDACTED
                else:
                    new = self._walk(value, depth + 1)
                if new is not value:
                    if out is None:
                        out = dict(obj)
                    out[key] = new
            return obj if out is None else out
        if isinstance(obj, (list, tuple)):
            if depth >= _MAX_DEPTH:
                return REDACTED
            items = [self._walk(item, depth + 1) for item in obj]
            if all(a is b for a, b in zip(items, obj, strict=True)):
                return obj
            return items if isinstance(obj, list) else tuple(items)
        return obj


# -- URL credentials: one pattern and its gates, apart from the rules above ---------------------
_URL_GATE = re.compile(rb"://[^\s/?#@:\"'<>]*:[^\s/?#\"'<>]*@")  # bytes: "://" is its literal prefix
_URL_GATE_STR = re.compile(r"://[^\s/?#@:\"'<>]*:[^\s/?#\"'<>]*@")
_URL_CRED_RE = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:\"'<>]*:)([^\s/?#\"'<>]+)(?=@)")


def _has_url_credentials(text: str) -> bool:
    return "://" in text and _URL_GATE_STR.search(text) is not None


def _url_credential_hits(data: bytes) -> list[int]:
    """Byte offsets of possible URL credentials in a chunk (one ``find`` when there is no URL)."""
    if data.find(b"://") < 0:
        return []
    return [m.start() for m in _URL_GATE.finditer(data)]


def redact_url_credentials(text: str, mask: str = REDACTED) -> str:
    """The password of every ``scheme://user:password@host`` in ``text`` replaced by ``mask``
    (the user name is kept); ``text`` itself when there is none."""
    if not _has_url_credentials(text):
        return text
    return _URL_CRED_RE.sub(lambda m: m[1] + mask, text)


def _bearer_sub(m: re.Match[str]) -> str:
    return m[1] + REDACTED


def _basic_sub(m: re.Match[str]) -> str:
    return m[1] + REDACTED if _is_basic_credential(m[2]) else m[0]


def _card_sub(m: re.Match[str]) -> str:
    digits = m[0].replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits):
        return REDACTED
    return m[0]


def _extra_sub(m: re.Match[str]) -> str:
    """Extra patterns: replace group 1 when the pattern has groups, else the whole match."""
    if m.re.groups and m.group(1) is not None:
        start, end = m.start(1) - m.start(), m.end(1) - m.start()
        return m[0][:start] + REDACTED + m[0][end:]
    return REDACTED


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\\ud800" escape
        return text.encode("utf-8", "surrogatepass")


def _is_basic_credential(token: str) -> bool:
    if len(token) % 4:
        return False
    import binascii  # here, not at the top: it maps libz into the daemon (~0.1 MB) for a rare case

    try:
        raw = binascii.a2b_base64(token, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw


_DEFAULT = Redactor()


def default_redactor() -> Redactor:
    """The shared redactor with the default rules (the one behind :func:`redact_line` & co.)."""
    return _DEFAULT



#: :meth:`Redactor.redact_line` with the default keys (a bound method: no extra call on the hot path).
redact_line = _DEFAULT.redact_line
#: :meth:`Redactor.redact_bytes` with the default keys.
redact_bytes = _DEFAULT.redact_bytes
#: :meth:`Redactor.redact_obj` with the default keys.
redact_obj = _DEFAULT.redact_obj
