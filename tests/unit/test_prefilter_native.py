"""The native scan (corral/app/_scan.c) asks the pre-filter's questions in one pass over a chunk:
it flags exactly the lines the Python passes flag, on the realistic corpus of bench/ and on
random chunks built from the pieces that matter (secret and look-alike names, separators, blanks,
card-shaped and epoch-shaped digits, scheme words), in its vector form and in its portable
form (built here with -DCORRAL_SCAN_SCALAR), and it is built wherever a C compiler is."""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from corral.app import _prefilter
from corral.app._prefilter import Prefilter, key_words
from corral.app._secretnames import SENSITIVE_KEYS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import corpus  # noqa: E402

KEYS = sorted(SENSITIVE_KEYS | {"x_Extra", "pässwort", "q"})
TOKENS = ["password", "Pass", "key", "KEY", "cache", "sort", "idempotency", "_", ".", "-", " ", "\t", '"', "'", "\\",
          ":", "=", "=>", "db", "ca", "x", "q", "4111", "1111", "4", "5", "0", "2", "3", "6", "9", "12", "345",
          "bearer ", "Basic\t", "bearer", "tokens", "token", "api", "Api", "stripe", "monkey", "é", "\u212a",
          "1764460318151", "secret", "cookie", "salt", "{", "}", ",", "  ", "session", "id", "auth", "author",
          "metadata", "data", "__", "..", "K", "pässwort", "x_extra"]


def random_chunk(rng: random.Random) -> bytes:
    lines = ["".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 30))) + "\n" for _ in range(rng.randint(1, 40))]
    return "".join(lines).encode()


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_scan", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def native_prefilter(module: ModuleType | None = None) -> Prefilter:
    saved = _prefilter._scan
    try:
        if module is not None:
            _prefilter._scan = module
        return Prefilter(KEYS, [], native=True)
    finally:
        _prefilter._scan = saved


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The scan's portable form (no SSE2), compiled here as setup.py compiles the other."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler here")
    out = tmp_path_factory.mktemp("scan") / "_scan.so"
    include = sysconfig.get_paths()["include"]
    sources = [str(ROOT / "corral/app" / name) for name in ("_scan.c", "_scan_match.c")]
    subprocess.run([cc, "-O2", "-std=c99", "-DCORRAL_SCAN_SCALAR", "-fPIC", "-shared", f"-I{include}",
                    f"-I{ROOT / 'corral/app'}", *sources, "-o", str(out)], check=True)
    return load(out)


def test_the_native_scan_is_built_where_a_c_compiler_is() -> None:
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler: corral runs the Python passes")
    assert _prefilter.NATIVE, "corral/app/_scan.c was not built: run scripts/setup (pip install -e .)"


needs_native = pytest.mark.skipif(not _prefilter.NATIVE, reason="the native scan is not built")


@needs_native
@pytest.mark.parametrize("kind", corpus.KINDS)
def test_it_flags_the_lines_the_python_passes_flag_on_the_corpus(kind: str) -> None:
    data = b"".join(corpus.lines(kind, 5000))
    python = Prefilter(KEYS, [], native=False)
    assert native_prefilter().dirty_line_starts(data) == python.dirty_line_starts(data)


@needs_native
@pytest.mark.parametrize("seed", range(4))
def test_it_flags_the_lines_the_python_passes_flag_on_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    native, python = native_prefilter(), Prefilter(KEYS, [], native=False)
    for _ in range(1500):
        chunk = random_chunk(rng)
        assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), chunk
        assert native.chunk_is_clean(chunk) == python.chunk_is_clean(chunk), chunk


def test_its_portable_form_flags_the_same_lines(portable: ModuleType) -> None:
    rng = random.Random(99)
    native, python = native_prefilter(portable), Prefilter(KEYS, [], native=False)
    for _ in range(3000):
        chunk = random_chunk(rng)
        assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), chunk
    for kind in corpus.KINDS:
        data = b"".join(corpus.lines(kind, 2000))
        assert native.dirty_line_starts(data) == python.dirty_line_starts(data), kind


@needs_native
def test_hits_at_the_edges_of_its_64_byte_blocks() -> None:
    """A card or a key that starts or ends at any offset around the vector blocks' edges."""
    native, python = native_prefilter(), Prefilter(KEYS, [], native=False)
    for pad in range(0, 140):
        for text in (b"4111 1111 1111 1111\n", b"4111111111111111", b"password=x\n", b"Bearer abcdefghij\n",
                     b"1764460318151\n", b"3782 822463 10005"):
            chunk = b"x" * pad + text
            assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), (pad, text)
            chunk = b"1" * pad + b" " + text  # digits right before it
            assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), (pad, text)


@needs_native
def test_it_takes_any_bytes_like_object_and_refuses_a_bad_word_list() -> None:
    from corral.app import _scan

    words, firsts = key_words(KEYS)
    spec = _scan.compile([(w.encode("latin-1"), k) for w, k in words], [f.encode("latin-1") for f in firsts])
    data = b"ok\npassword: x\n"
    assert _scan.scan(data, spec) == _scan.scan(bytearray(data), spec) == _scan.scan(memoryview(data), spec) == [11]
    with pytest.raises(ValueError, match="non-empty bytes"):
        _scan.compile([(b"", "E")], [])
    with pytest.raises(ValueError, match="one of E X K W Q"):
        _scan.compile([(b"token", "Z")], [])
    with pytest.raises(TypeError):
        _scan.scan("text", spec)
    with pytest.raises(ValueError):
        _scan.scan(data, object())


@needs_native
@pytest.mark.parametrize("text", [b"ab=1\n", b"b=1\n", b"xx ab=1\n", b"=ab=\n"])
def test_a_word_longer_than_the_name_before_it_never_matches(text: bytes) -> None:
    """Words are compared by their last four characters first; a word with NUL bytes (a key from
    a hostile config) must not match a shorter name whose missing characters read as zeros, nor
    make the scan look before the chunk."""
    from corral.app import _scan

    # "ab" (the last-word rule: not for a plain name) lets a name ending in "ab" past the first test
    spec = _scan.compile([(b"ab", "W"), (b"\x00ab", "X"), (b"\x00\x00ab", "E"), (b"\x00b", "X")], [])
    assert _scan.scan(text, spec) == []
    assert _scan.scan(b"\x00ab=1\n", spec) == [3]


SSE2_CHECK = """
import random, sys
sys.path[:0] = [{root!r}, {tests!r}]
from corral.app import _scan
from test_prefilter_native import KEYS, random_chunk, native_prefilter
from corral.app._prefilter import Prefilter
import corpus
assert _scan.AVX2 == 0
native, python = native_prefilter(), Prefilter(KEYS, [], native=False)
rng = random.Random(7)
for _ in range(2000):
    chunk = random_chunk(rng)
    assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), chunk
for kind in corpus.KINDS:
    data = b"".join(corpus.lines(kind, 2000))
    assert native.dirty_line_starts(data) == python.dirty_line_starts(data), kind
print("same")
"""


@needs_native
def test_its_sse2_form_flags_the_same_lines_where_avx2_would_be_chosen() -> None:
    """The scan picks its AVX2 form at import when the CPU has it; CORRAL_SCAN_NO_AVX2 makes it
    take the SSE2 form, which other CPUs run: the same lines, in a process of its own."""
    import os

    code = SSE2_CHECK.format(root=str(ROOT), tests=str(ROOT / "tests" / "unit"))
    env = {**os.environ, "CORRAL_SCAN_NO_AVX2": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "same", out.stderr[-2000:]


@needs_native
@pytest.mark.parametrize("seed", range(3))
def test_it_flags_the_same_lines_on_hostile_bytes(seed: int) -> None:
    """Any bytes an app may write (NUL, invalid UTF-8, the Kelvin sign, long runs of digits,
    separators, blanks or b's): the same lines as the Python passes, and no crash."""
    rng = random.Random(1000 + seed)
    alphabet = list(b"0123456789:= \t-_.\"'\\\nbBeEaAsSkKyY") + [0, 0x80, 0xBF, 0xE2, 0x84, 0xAA, 0xFF]
    native, python = native_prefilter(), Prefilter(KEYS, [], native=False)
    for _ in range(400):
        size = rng.choice([1, 2, 17, 33, 64, 65, 500, 4096, 40_000])
        if rng.random() < 0.2:  # one byte repeated: the worst case for one kind of event
            chunk = bytes([rng.choice(alphabet)]) * size
        else:
            chunk = bytes(rng.choice(alphabet) for _ in range(size))
        assert native.dirty_line_starts(chunk) == python.dirty_line_starts(chunk), chunk[:200]
