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

Speed. Most lines need nothing, so a chunk of lines first goes through a pre-filter
(:mod:`corral.app._prefilter`): ``:`` / ``=`` after a whole secret name (``order_id``,
``prompt_tokens`` or ``cache_key`` do not stop it), card-shaped runs of digits (checked where
they start: a 13-digit epoch or an 8-digit id costs a test, not a parse), ``bearer`` / ``basic``
(plus one search per extra pattern). Only the lines it flags are parsed or rewritten; clean lines
and chunks are returned unchanged (the same object). Where corral could build its native scan
(``corral/app/_scan.c``) these questions are asked in one pass over the chunk: 0.87-2.5 GB/s on the
clean lines of ``bench/corpus.py`` on a shared 2-core VM (``bench/redact_corpus.py``); otherwise
by ``bytes.translate``, ``rfind`` and ``re`` passes, 130-240 MB/s, whose cost grows with the number
of ``:`` / ``=`` a chunk has. Use ``redact_bytes`` on the hot path. The pre-filter is a superset of
the rules: the tests and the benchmark compare it, line by line, with the rules applied without
any shortcut (``_redact_line_slow(line, reference=True)``); known gap, as before: JSON keys
written with ``\\u`` escapes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from corral.app._prefilter import Prefilter, luhn_ok
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
_PAIR_RE = re.compile(r"(?<![\w.-])(?P<key>[\w.-]+)(?P<sep>\\?[\"']?[ \t]*(?:[:=]>?)[ \t]*\\?[\"']?)")
_VALUE_RE = re.compile(rf"(?P<scheme>{_AUTH_SCHEMES}[ \t]+)?(?![{{\[])[^\s&;,\"'\\]+", _CI)
_COOKIE_VALUE_RE = re.compile(r"[^\"'\r\n]*[^\"'\s\\]")
_BEARER_RE = re.compile(r"\b(bearer[ \t]+)[A-Za-z0-9\-._~+/]{8,}=*", _CI)
_BASIC_RE = re.compile(r"\b(basic[ \t]+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", _CI)
_CARD_RE = re.compile(r"(?<![0-9])[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9](?:[ -]?[0-9]){4,10}(?![0-9])")
_CARD_HINT = re.compile(r"[0-9]{4}[ -]?[0-9]{4}")  # every card has this: a cheap test before _CARD_RE
_SEPARATOR_RE = re.compile(r"[:=]")
# what a string needs for a pattern rule to change it: a separator, a scheme word, 8 digits
_TEXT_HINT = re.compile(r"[:=]|bearer|basic|[0-9]{4}[ -]?[0-9]{4}", _CI)


class _TooDeep(Exception):
    """A JSON line nested deeper than :data:`_MAX_DEPTH`: redacted as text instead."""


_WITHHELD = "[line withheld: redaction failed]"  # instead of a line the rules could not redact


class Redactor:
    """Redacts secrets in lines, byte chunks and structured objects (see the module docstring)."""

    #: What :meth:`redact_chunk` writes instead of a line it could not redact.
    WITHHELD = _WITHHELD

    def __init__(self, extra_keys: Iterable[str] = (), extra_patterns: Iterable[str | re.Pattern[str]] = (),
                 *, keys: Iterable[str] | None = None) -> None:
        extra = [k for k in extra_keys if k]
        base = SENSITIVE_KEYS if keys is None else frozenset(keys)
        all_keys = set(base) | set(extra)
        text_keys = (set(base) - PAYLOAD_KEYS) | set(extra)
        self._is_key = SecretNames(all_keys) if keys is not None or extra else DEFAULT_NAMES
        self._is_text_key = SecretNames(text_keys)
        self._extras = [p if isinstance(p, re.Pattern) else re.compile(p) for p in extra_patterns]
        self._prefilter = Prefilter(all_keys, self._extras)

    # -- public API -------------------------------------------------------------------------------
    def needs_work(self, line: str) -> bool:
        """The pre-filter: False means :meth:`redact_line` would return ``line`` unchanged."""
        return self._prefilter.line_may_need_work(line) or _has_url_credentials(line)

    def redact_line(self, line: str) -> str:
        """Redact one line (JSON or plain). Returns ``line`` itself when nothing was redacted."""
        if not self._prefilter.line_may_need_work(line) and not _has_url_credentials(line):
            return line
        return self._redact_line_slow(line)

    def redact_bytes(self, data: bytes) -> bytes:
        """Redact a chunk of ``\\n``-terminated lines; returns ``data`` itself when nothing changed."""
        if not data:
            return data
        starts = self._dirty_starts(data)
        if not starts:
            return data
        return self._rewrite(data, starts, None)[0]

    def redact_chunk(self, data: bytes, budget: float = 0.25) -> tuple[bytes, int]:
        """:meth:`redact_bytes` that never raises and stops after ``budget`` seconds; for a log
        writer, which must never lose a line.  A line the rules could not redact (they raised, or
        the budget ran out before they reached it) is replaced as a whole by :attr:`WITHHELD`
        (its newline kept); clean lines pass as they are.  Returns the chunk (``data`` itself
        when nothing changed) and how many lines were withheld."""
        if not data:
            return data, 0
        deadline = time.monotonic() + budget
        try:
            starts = self._dirty_starts(data)
        except Exception:  # noqa: BLE001 - no line can be told clean: every one is withheld
            whole, tail, line = data.count(b"\n"), not data.endswith(b"\n"), _WITHHELD.encode()
            return (line + b"\n") * whole + (line if tail else b""), whole + tail
        if not starts:
            return data, 0
        return self._rewrite(data, starts, deadline)

    def _dirty_starts(self, data: bytes) -> set[int]:
        """The offsets where the lines that may need redaction start (the pre-filter's answer)."""
        starts = self._prefilter.dirty_line_starts(data)
        hits = _url_credential_hits(data)
        if hits:
            starts = set(starts) | {data.rfind(b"\n", 0, pos) + 1 for pos in hits}
        return starts

    def _rewrite(self, data: bytes, starts: set[int], deadline: float | None) -> tuple[bytes, int]:
        """The rules applied to the lines starting at ``starts``; with a ``deadline``, a line whose
        rules raise or that comes after it is withheld (see :meth:`redact_chunk`)."""
        out: list[bytes] = []
        last = withheld = 0
        late = False
        for start in sorted(starts):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end + 1
            line = data[start:end].decode("utf-8", "surrogateescape")
            if deadline is None:
                new = self._redact_line_slow(line)
            else:
                late = late or time.monotonic() > deadline
                try:
                    new = _WITHHELD if late else self._redact_line_slow(line)
                except Exception:  # noqa: BLE001 - this line could not be redacted: withheld, counted
                    new = _WITHHELD
                if new is _WITHHELD:
                    withheld += 1
                    new = _WITHHELD + "\n" if line.endswith("\n") else _WITHHELD
            if new != line:
                out.append(data[last:start])
                out.append(_encode(new))
                last = end
        if not out:
            return data, withheld
        out.append(data[last:])
        return b"".join(out), withheld

    def redact_obj(self, obj: Any) -> Any:
        """Redact structured data; returns a redacted copy, or ``obj`` itself when it is clean."""
        return self._walk(obj, 0, False)

    def is_sensitive_key(self, key: str) -> bool:
        """True when the value under ``key`` is replaced in structured data (with the default
        keys: :func:`is_secret_name`)."""
        return self._is_key(key)

    def redact_text(self, text: str) -> str:
        """Pattern redaction only (no JSON parsing); returns ``text`` itself when clean."""
        if not self.needs_work(text):
            return text
        return self._redact_text_slow(text)

    # -- the rules, after the pre-filter ----------------------------------------------------------
    def _redact_line_slow(self, line: str, reference: bool = False) -> str:
        """The rules applied to one line.  ``reference``: without a single shortcut (the slow,
        plain version the fast path is checked against: tests, bench/redact_corpus.py)."""
        body = line.strip()
        if body[:1] in ("{", "["):
            try:
                obj = json.loads(body)
                new = self._walk(obj, 0, reference, True)
            except (ValueError, RecursionError, _TooDeep):  # not JSON, or nested too deep: as text
                pass
            else:
                if new is obj:
                    return line
                lead = line[: len(line) - len(line.lstrip())]
                trail = line[len(line.rstrip()):]
                return lead + json.dumps(new, ensure_ascii=False, separators=(",", ":")) + trail
        return self._redact_text_slow(line, reference)

    def _redact_text_slow(self, text: str, reference: bool = False) -> str:
        """The pattern rules; each skipped when ``text`` lacks what it needs (unless ``reference``)."""
        new = text
        lower = text.lower()
        if reference or "=" in text or ":" in text:
            new = self._redact_pairs(new, reference)
        if reference or "bearer" in lower:
            new = _BEARER_RE.sub(_bearer_sub, new)
        if reference or "basic" in lower:
            new = _BASIC_RE.sub(_basic_sub, new)
        if reference or _CARD_HINT.search(new) is not None:
            new = _CARD_RE.sub(_card_sub, new)
        for pattern in self._extras:
            new = pattern.sub(_extra_sub, new)
        new = redact_url_credentials(new)
        return text if new == text else new

    def _redact_pairs(self, text: str, reference: bool = False) -> str:
        """``key=value`` / ``key: value`` pairs with a sensitive key: the value becomes REDACTED."""
        pieces: list[str] = []
        last = 0
        for m in _PAIR_RE.finditer(text) if reference else self._pairs_near_secret_names(text):
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

    def _pairs_near_secret_names(self, text: str) -> Iterator[re.Match[str]]:
        """The matches of ``_PAIR_RE.finditer(text)`` whose key may be secret, found from the
        separators instead of trying the regex at every word (the same matches: a pair is a
        whole run of ``[\\w.-]`` directly followed by a separator)."""
        if text.isascii():
            seps = self._prefilter.key_separators(text.encode("ascii"))
        else:
            seps = [m.start() for m in _SEPARATOR_RE.finditer(text)]
        for sep in seps:
            end = sep
            while end > 0 and text[end - 1] in " \t":
                end -= 1
            if end > 0 and text[end - 1] in "\"'":
                end -= 1
            if end > 0 and text[end - 1] == "\\":
                end -= 1
            start = end
            while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
                start -= 1
            if start < end:
                m = _PAIR_RE.match(text, start)
                if m is not None and m.end("key") == end:
                    yield m

    def _walk(self, obj: Any, depth: int, reference: bool, strict: bool = False) -> Any:
        """``obj`` redacted by key and pattern.  Past :data:`_MAX_DEPTH` levels a container is
        replaced by REDACTED, or with ``strict`` (a log line) the walk gives up (``_TooDeep``):
        the line is redacted as text."""
        if isinstance(obj, str):
            if reference or self._extras or _TEXT_HINT.search(obj) is not None:
                return self._redact_text_slow(obj, reference)
            return obj
        if type(obj) is dict or isinstance(obj, Mapping):
            if depth >= _MAX_DEPTH:
                if strict:
                    raise _TooDeep
                return REDACTED
            out: dict[Any, Any] | None = None
            for key, value in obj.items():
                if isinstance(key, str) and self.is_sensitive_key(key):
                    new = value if isinstance(value, str) and value == REDACTED else REDACTED
                else:
                    new = self._walk(value, depth + 1, reference, strict)
                if new is not value:
                    if out is None:
                        out = dict(obj)
                    out[key] = new
            return obj if out is None else out
        if isinstance(obj, (list, tuple)):
            if depth >= _MAX_DEPTH:
                if strict:
                    raise _TooDeep
                return REDACTED
            items = [self._walk(item, depth + 1, reference, strict) for item in obj]
            if all(a is b for a, b in zip(items, obj, strict=True)):
                return obj
            return items if isinstance(obj, list) else tuple(items)
        return obj


# -- URL credentials: one pattern and its gates, apart from the rules above ---------------------
_URL_GATE = re.compile(rb"://[^\s/?#@:\"'<>]*:[^\s/?#\"'<>]*@")  # bytes: "://" is its literal prefix
_URL_GATE_STR = re.compile(r"://[^\s/?#@:\"'<>]*:[^\s/?#\"'<>]*@")
_URL_CRED_RE = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:\"'<>]*:)([^\s/?#\"'<>]+)(?=@)")


def _has_url_credentials(text: str) -> bool:
    return "@" in text and "://" in text and _URL_GATE_STR.search(text) is not None


def _url_credential_hits(data: bytes) -> list[int]:
    """Byte offsets of possible URL credentials in a chunk: a chunk without ``@`` has none (one
    ``memchr``, several times faster than looking for ``://``, which most access logs have)."""
    if data.find(b"@") < 0 or data.find(b"://") < 0:
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
