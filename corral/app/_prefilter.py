"""The redaction pre-filter: which lines of a chunk might hold a secret (internal to corral.app.redact).

Most chunks hold none, so the question is first asked of the whole chunk, with a few passes of C
code (the standard library's ``bytes`` methods and ``re``), never a loop over lines in Python:

1. one ``bytes.translate`` (:data:`FOLD`): ASCII lower-case, ``:`` to ``=``, every digit to ``0``,
   tabs, dashes, quotes and backslashes to a blank.  Positions are kept, so a hit is a byte
   offset of the chunk;
2. keys: the folded chunk reversed, and one regex search for ``=`` followed by the reversed name
   of a secret key (:func:`key_pattern`: a trie of whole names, so ``order_id``,
   ``prompt_tokens``, ``metadata`` or ``cache_key`` do not match while ``db_password``,
   ``x-api-key``, ``stripeKey`` or ``key_`` do).  Every ``:`` and ``=`` of the chunk costs an
   entry into the pattern: its blanks are taken once (possessive), then one character-class test
   of the last letter of the name before it (the letters secret names end with) turns most away
   before the trie's first branch is tried: the main cost on JSON and ``key=value`` logs;
3. cards: three ``rfind`` calls for the shapes the first 9 digits of a card number can take
   (``0`` * 13, ``0000 0000``, ``00000000 0``): an id of 8 digits, a date, a 10-digit epoch
   never match; a run that does is checked where it starts (the card rule: a first digit from
   2 to 6 after a non-digit, 13-19 digits, Luhn), so a 13-digit epoch in milliseconds costs a
   ``find`` and a few byte tests, not a parse;
4. ``bearer`` / ``basic`` followed by a blank: one regex search;
5. one search per extra pattern.

Only when one of them hits are hits located (the same patterns with ``finditer``) and their
lines handed to the rules.  A chunk larger than :data:`PIECE` (32 KiB) goes through these passes
in pieces of whole lines, so that no copy is large enough to be a fresh mapping of its own.

Where corral could build it (``setup.py``; a C compiler is all it needs), the native scan
(``corral/app/_scan.c``) asks questions 2-4 instead, in one pass over the chunk with no copy of
it (no fold, no reversal, no pieces), from the same word list (:func:`key_words`): 0.6-3.4 GB/s
against 0.13-0.24 for the passes above.  Its hits are mapped to lines here; a Kelvin sign and the
extra patterns are looked for as above.  The tests check that both flag the same lines.

The filter is a superset of the rules: every line the rules would change is flagged (the unit
tests and ``bench/redact_corpus.py`` check it).  Known gap, as before: JSON keys written with
``\\u`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from corral.app._secretnames import NOT_SECRET_KEYS, SECRET_WORDS, STRONG_SUFFIXES, norm

try:  # the same passes in one C loop over the chunk (corral/app/_scan.c), built by scripts/setup
    from corral.app import _scan
except ImportError:  # not built (no C compiler): the passes below, in Python, 4-18 times slower
    _scan = None  # type: ignore[assignment]

#: True when the native scan is there (``corral/app/_scan.c``, built by ``pip install``).
NATIVE = _scan is not None

_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: The pre-filter's view of a chunk (see the module docstring); positions are kept.
FOLD = bytes.maketrans(_UPPER + b":0123456789\t-\"'\\", _UPPER.lower() + b"=0000000000     ")
_CARD_SHAPES = (b"0" * 13, b"0000 0000", b"00000000 0")
_AUTH = re.compile(rb"b(?:earer|asic) ")
_KELVIN = "\u212a".encode()  # lower-cases to "k": the one non-ASCII letter that can spell a key
_DIGITS = frozenset(b"0123456789")
_ENDING_ORDER = "edstnlyahmbw"  # the last letters of names in logs, the most frequent first
# the card rule (corral.app.redact._CARD_RE) from a run's first digit, on bytes
_CARD_AT = re.compile(rb"[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9](?:[ -]?[0-9]){4,10}(?![0-9])")
_CARD_FIRST = frozenset(b"23456")
#: A chunk is looked at in pieces of whole lines of at most this size, so that the pieces and
#: their fold and reversal stay below glibc's mmap threshold as the daemon sets it (64 KiB,
#: ``corral.control.client.DAEMON_MALLOC``): a block above it is mapped for each allocation and
#: costs a page fault per 4 KiB touched, 0.4 ms per MiB and per copy here (two copies: 0.8 of the
#: 4-8 ms a MiB of JSON or logging lines takes); below it, the heap's blocks are used again.
PIECE = 32 * 1024


def _fold_word(word: str) -> str:
    return word.encode("utf-8").translate(FOLD).decode("latin-1")


def _forms(name: str) -> set[str]:
    """How a normalised name may be written in folded text: ``_`` or a blank (``-``) or nothing
    between its words."""
    n = norm(name)
    return {_fold_word(v) for v in (n, n.replace("_", " "), n.replace("_", ""))}


def _trie(words: dict[str, str]) -> list[str]:
    """Top-level alternatives of a regex trie of ``words`` (word -> what must follow its end)."""
    root: dict[str, Any] = {}
    for word, after in words.items():
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = after

    def emit(node: dict[str, Any]) -> list[str]:
        alts = [re.escape(ch) + _group(emit(sub)) for ch, sub in sorted(node.items()) if ch]
        if "" in node:
            alts.append(node[""])
        return alts

    return emit(root)


def _group(alts: list[str]) -> str:
    if len(alts) == 1:
        return alts[0]
    return "(?:" + "|".join(alts) + ")"


def key_words(keys: Iterable[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The secret names as folded words, each with its kind, and the identifier words of
    :data:`NOT_SECRET_KEYS` (``cache``, ``sort`` ...): the one list behind :func:`key_pattern`
    and the native scan (``corral/app/_scan.c``).

    Kinds: ``E`` an ending (matches at the end of any name), ``K`` the ending ``key`` (unless an
    identifier word comes before it), ``X`` an exact name (the character before it is not
    ``[a-z0-9_.]``); and for the last-word rule (the name ends with ``[_.]`` then more
    ``[_. ]``): ``W`` a secret word, ``Q`` the word ``key``.  ``keys`` are the exact names (any
    depth of JSON, any ``key=value``); the strong suffixes and secret words of
    :mod:`corral.app._secretnames` are the endings."""
    endings = {w for s in STRONG_SUFFIXES for w in _forms(s)} | {_fold_word(w) for w in SECRET_WORDS}
    endings = {w for w in endings if not any(w != e and w.endswith(e) for e in endings)}
    words: dict[str, str] = {w: ("K" if w == "key" else "E") for w in endings}
    for key in keys:  # a name the endings cover needs no entry, unless an exclusion could hide it
        for form in _forms(key):
            if not any(form.endswith(e) for e in endings if e != "key") and form != "key":
                words.setdefault(form, "X")
    # the blanks between a name and its separator are taken once, before the names, so a name is
    # written without its trailing blanks
    out = [(w.rstrip(" "), kind) for w, kind in words.items()]
    out += [(_fold_word(w), "Q" if w == "key" else "W") for w in sorted(SECRET_WORDS)]
    firsts = sorted({_fold_word(k.rsplit("_", 1)[0]) for k in NOT_SECRET_KEYS})
    return out, firsts


def key_pattern(keys: Iterable[str]) -> str:
    """The regex that finds ``=`` followed by a secret name in the reversed folded text (the
    words of :func:`key_words`)."""
    boundary = "(?![a-z0-9_.])"
    listed, firsts = key_words(keys)
    # "<word>_key" identifiers (cache_key, cacheKey) are not secrets: camelCase is lost to the
    # fold, so "cachekey" is left out too; a blank may be a dash, so "cache key" is kept in
    rev_firsts = [w[::-1] for w in firsts]
    not_id = "(?![_.]?" + _group(_trie(dict.fromkeys(rev_firsts, "(?![a-z0-9\\x80-\\xff])"))) + ")"  # é: a letter too
    after = {"E": "", "K": not_id, "X": boundary, "W": "", "Q": not_id}
    words: dict[str, str] = {}
    last_words: dict[str, str] = {}
    for w, kind in listed:
        (last_words if kind in "WQ" else words)[w[::-1]] = after[kind]
    # Alternatives are tried in order, and skipped fast only when they start with a literal:
    # the last letters that end most names first
    trie = sorted(_trie(words), key=lambda alt: _ENDING_ORDER.find(alt[0]) % 64)
    # the last-word rule ignores trailing separators: "key_", "cookie.", "api-key-" are secret
    last = "[_. ]+" + _group(_trie(last_words))
    return "= *+" + _gate(words) + _group([*trie, last])  # a blank: a JSON key's quote, or a blank


def _gate(words: Iterable[str]) -> str:
    """A lookahead for the characters a name can end with: one test turns away most separators
    (a digit of a time, a key ending in a letter no secret name ends with) before the trie's
    alternatives are tried one by one."""
    firsts = {w[:1] for w in words}
    if "" in firsts:  # a name that is only blanks: anything may follow
        return ""
    return "(?=[" + "".join(re.escape(ch) for ch in sorted(firsts | set("_. "))) + "])"


def _line_start(data: bytes, pos: int) -> int:
    return data.rfind(b"\n", 0, pos) + 1


def card_starts(data: bytes, folded: bytes) -> list[int]:
    """Offsets where the card rule would match and redact: a run of digits shaped like a card
    (one of :data:`_CARD_SHAPES` in the folded text) that starts with 2-6 after a non-digit and
    passes the rule's regex, length and Luhn tests at that offset (mirrors ``_card_sub``)."""
    out = []
    for shape in _CARD_SHAPES:  # rfind: several times faster than find on text full of digits
        end = len(folded)
        pos = folded.rfind(shape, 0, end)
        while pos >= 0:
            start = pos
            while start > 0 and data[start - 1] in _DIGITS:  # where this run of digits starts
                start -= 1
            if data[start] in _CARD_FIRST and _is_card_at(data, start):
                out.append(start)
            end = start + len(shape) - 1  # the other hits in this run have the same start: O(n), not O(n²)
            pos = folded.rfind(shape, 0, end)
    return out


def _is_card_at(data: bytes, start: int) -> bool:
    m = _CARD_AT.match(data, start)
    if m is None:
        return False
    digits = m.group().replace(b" ", b"").replace(b"-", b"")
    return 13 <= len(digits) <= 19 and luhn_ok(digits.decode("ascii"))


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Prefilter:
    """The pre-filter for one set of secret names and extra patterns."""

    def __init__(self, keys: Iterable[str], extras: list[re.Pattern[str]], native: bool | None = None) -> None:
        """``native``: use the native scan (default: when it is built, :data:`NATIVE`)."""
        keys = list(keys)
        native = NATIVE if native is None else native
        self._keys = re.compile(key_pattern(keys).encode("latin-1"))
        self._extras = extras
        self._spec: object = None  # the native scan's compiled words, when it is used
        if native and _scan is not None:
            words, firsts = key_words(keys)
            self._spec = _scan.compile([(w.encode("latin-1"), kind) for w, kind in words],
                                       [w.encode("latin-1") for w in firsts])

    def _folded(self, data: bytes) -> tuple[bytes, bytearray]:
        folded = data.translate(FOLD)
        rev = bytearray(folded)
        rev.reverse()
        return folded, rev

    def chunk_is_clean(self, data: bytes) -> bool:
        """True when no line of ``data`` can need redaction (the whole-chunk test)."""
        if self._spec is not None:
            return not _scan.scan(data, self._spec) and not self._odd(data)
        folded, rev = self._folded(data)
        return (self._keys.search(rev) is None and _AUTH.search(folded) is None and not card_starts(data, folded)
                and not self._odd(data))

    def _odd(self, data: bytes) -> bool:
        """A Kelvin sign (a "k" once lower-cased) or an extra pattern somewhere in ``data``."""
        if not data.isascii() and _KELVIN in data:
            return True
        return any(p.search(data.decode("utf-8", "surrogateescape")) for p in self._extras)

    def dirty_line_starts(self, data: bytes) -> set[int]:
        """Byte offsets of the starts of the lines that may need redaction (empty when clean),
        found in pieces of whole lines of at most :data:`PIECE` bytes (see there)."""
        if self._spec is not None:  # no copy of the chunk: no pieces
            return self._native_line_starts(data)
        size = len(data)
        if size <= PIECE:
            return self._dirty_line_starts(data)
        starts: set[int] = set()
        pos = 0
        while pos < size:
            end = size if size - pos <= PIECE else data.rfind(b"\n", pos, pos + PIECE) + 1
            if end <= pos:  # one line longer than a piece: the piece is that line
                end = data.find(b"\n", pos + PIECE) + 1 or size
            found = self._dirty_line_starts(data[pos:end])
            if found:
                starts.update(pos + start for start in found)
            pos = end
        return starts

    def _dirty_line_starts(self, data: bytes) -> set[int]:
        """:meth:`dirty_line_starts` of one piece: each test runs once; a hit is followed up from
        where it was found."""
        folded, rev = self._folded(data)
        top = len(data) - 1
        hits = card_starts(data, folded)
        first = self._keys.search(rev)
        if first is not None:
            hits += [top - m.start() for m in self._keys.finditer(rev, first.start())]
        first = _AUTH.search(folded)
        if first is not None:
            hits += [m.start() for m in _AUTH.finditer(folded, first.start())]
        return self._line_starts(data, hits)

    def _line_starts(self, data: bytes, hits: list[int]) -> set[int]:
        """The starts of the lines of ``hits`` and of the lines with a Kelvin sign (a "k" once
        lower-cased) or an extra pattern."""
        if not data.isascii():
            hits += [m.start() for m in re.finditer(re.escape(_KELVIN), data)]
        starts = {_line_start(data, pos) for pos in hits}
        if self._extras:
            starts.update(_extra_line_starts(data, self._extras))
        return starts

    def _native_line_starts(self, data: bytes) -> set[int]:
        """:meth:`dirty_line_starts` with the native scan: keys, cards and bearer/basic in one
        pass; a Kelvin sign and the extra patterns as in :meth:`_dirty_line_starts`."""
        return self._line_starts(data, _scan.scan(data, self._spec))

    def key_separators(self, data: bytes) -> list[int]:
        """Offsets of the ``:`` / ``=`` that follow what may be a secret name (ascending)."""
        _, rev = self._folded(data)
        top = len(data) - 1
        return [top - m.start() for m in self._keys.finditer(rev)][::-1]

    def line_may_need_work(self, line: str) -> bool:
        """The same test for one line of text."""
        data = line.encode("utf-8", "surrogatepass")
        return not self.chunk_is_clean(data)


def _extra_line_starts(data: bytes, extras: list[re.Pattern[str]]) -> set[int]:
    """Line starts (byte offsets) of the lines where an extra pattern matches."""
    text = data.decode("utf-8", "surrogateescape")
    line_numbers = {text.count("\n", 0, m.start()) for p in extras for m in p.finditer(text)}
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
