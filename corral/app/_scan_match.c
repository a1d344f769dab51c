/* The native scan itself (see corral/app/_scan.c): the checks of a separator's name, of a card and
 * of bearer/basic, mirroring the Python pre-filter, and the loops that find where to make them. */
#include "_scan.h" /* first: Python.h sets the feature macros */

#include <stdlib.h>
#include <string.h>

unsigned char FOLD[256];
unsigned char CLS[256];

static int is_name(unsigned char f) { return (f >= 'a' && f <= 'z') || f == '0' || f == '_' || f == '.'; }
static int is_alnum_high(unsigned char f) { return (f >= 'a' && f <= 'z') || f == '0' || f >= 0x80; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_card_sep(unsigned char c) { return c == ' ' || c == '-'; }

/* The folded text ending at j (inclusive) ends with w. */
static int ends_with(const unsigned char *d, Py_ssize_t j, const Word *w)
{
    if (j + 1 < w->len)
        return 0;
    for (Py_ssize_t k = 0; k < w->len; k++)
        if (FOLD[d[j - k]] != w->text[w->len - 1 - k])
            return 0;
    return 1;
}

/* The folded characters ending at j, up to four (fewer at the chunk's start), the last one lowest. */
static inline uint32_t last_chars(const unsigned char *d, Py_ssize_t j)
{
    if (j >= 3)
        return FOLD[d[j]] | (uint32_t)FOLD[d[j - 1]] << 8 | (uint32_t)FOLD[d[j - 2]] << 16 | (uint32_t)FOLD[d[j - 3]] << 24;
    uint32_t v = 0;
    for (Py_ssize_t k = 0; k <= j; k++)
        v |= (uint32_t)FOLD[d[j - k]] << (8 * k);
    return v;
}

/* Whether a word may end where the folded characters LAST end (last_chars; j: where they end,
 * so how many there are); no word does when this is false; when true, compare them. */
static inline int maybe_word(const Spec *s, uint32_t last, Py_ssize_t j)
{
    int hit = bit(s->singles, last & 0xFF);
    if (j >= 1)
        hit |= bit(s->pairs, last & 0xFFFF);
    if (j >= 2)
        hit |= bit(s->triples, hash16(last & 0xFFFFFF));
    if (j >= 3)
        hit |= bit(s->quads, hash16(last));
    return hit;
}

/* Before the "key" that starts at start: [_.]? then an identifier word (cache, sort, ...) that
 * starts the name or follows a character outside [a-z0-9\x80-\xff]. */
static int excluded(const Spec *s, const unsigned char *d, Py_ssize_t start)
{
    for (int consume = 1; consume >= 0; consume--) {
        Py_ssize_t q = start - 1;
        if (consume) {
            if (q < 0 || (FOLD[d[q]] != '_' && FOLD[d[q]] != '.'))
                continue;
            q--;
        }
        if (q < 0)
            continue;
        uint32_t last = last_chars(d, q);
        for (Py_ssize_t e = 0; e < s->nexcl; e++) {
            const Word *w = &s->excl[e];
            if ((last & w->mask4) == w->last4 && ends_with(d, q, w)) {
                Py_ssize_t b = q - w->len + 1;
                if (b == 0 || !is_alnum_high(FOLD[d[b - 1]]))
                    return 1;
            }
        }
    }
    return 0;
}

static int word_hit(const Spec *s, const unsigned char *d, Py_ssize_t j, int last_rule)
{
    unsigned char c = FOLD[d[j]];
    uint32_t last = last_chars(d, j);
    if (!maybe_word(s, last, j))
        return 0; /* no word ends with the name's last characters: most names */
    for (Py_ssize_t i = s->first[c]; i < s->first[c + 1]; i++) {
        const Word *w = &s->words[i];
        if ((last & w->mask4) != w->last4 || (w->kind == 'W' || w->kind == 'Q') != last_rule || w->len > j + 1
            || (w->len > 4 && !ends_with(d, j, w)))
            continue; /* w->len > j + 1: longer than what is there (a word of NUL bytes matches zeros) */
        Py_ssize_t start = j - w->len + 1;
        switch (w->kind) {
        case 'E':
        case 'W':
            return 1;
        case 'X':
            if (start == 0 || !is_name(FOLD[d[start - 1]]))
                return 1;
            break;
        case 'K':
        case 'Q':
            if (!excluded(s, d, start))
                return 1;
            break;
        }
    }
    return 0;
}

static int key_at(const Spec *s, const unsigned char *d, Py_ssize_t sep)
{
    Py_ssize_t j = sep - 1;
    while (j >= 0 && FOLD[d[j]] == ' ')
        j--;
    if (j < 0)
        return 0;
    if (word_hit(s, d, j, 0))
        return 1;
    unsigned char f = FOLD[d[j]];
    if (f != '_' && f != '.')
        return 0;
    while (j >= 0 && (FOLD[d[j]] == '_' || FOLD[d[j]] == '.' || FOLD[d[j]] == ' '))
        j--;
    return j >= 0 && word_hit(s, d, j, 1);
}

static int luhn_ok(const unsigned char *digits, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++) {
        int v = digits[n - 1 - i] - '0';
        if (i % 2)
            v = v > 4 ? v * 2 - 9 : v * 2;
        total += v;
    }
    return total % 10 == 0;
}

/* The card rule's regex matched greedily at p, then 13-19 digits and the Luhn check. */
static int card_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t p)
{
    unsigned char digits[19];
    int nd = 0;
    for (int part = 0; part < 3; part++) {
        int want = part == 2 ? 1 : 4;
        if (part > 0 && p + 1 < n && is_card_sep(d[p]) && is_digit(d[p + 1]))
            p++;
        for (int k = 0; k < want; k++, p++) {
            if (p >= n || !is_digit(d[p]))
                return 0;
            digits[nd++] = d[p];
        }
    }
    Py_ssize_t ends[10];
    int groups = 0;
    while (groups < 10) {
        if (p + 1 < n && is_card_sep(d[p]) && is_digit(d[p + 1]))
            p++;
        else if (!(p < n && is_digit(d[p])))
            break;
        digits[nd++] = d[p++];
        ends[groups++] = p;
    }
    for (int g = groups; g >= 4; g--) {
        Py_ssize_t end = ends[g - 1];
        if (end >= n || !is_digit(d[end]))
            return luhn_ok(digits, 9 + g);
    }
    return 0;
}

static int auth_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t p)
{
    static const unsigned char bearer[] = "bearer", basic[] = "basic";
    if (p + 5 >= n) /* "basic" and a blank at least */
        return 0;
    const unsigned char *word = FOLD[d[p + 1]] == 'e' ? bearer : FOLD[d[p + 1]] == 'a' ? basic : NULL;
    if (word == NULL)
        return 0;
    Py_ssize_t len = word == bearer ? 6 : 5;
    if (p + len >= n)
        return 0;
    for (Py_ssize_t k = 2; k < len; k++)
        if (FOLD[d[p + k]] != word[k])
            return 0;
    return FOLD[d[p + len]] == ' ';
}

static int append(PyObject *out, Py_ssize_t pos)
{
    PyObject *v = PyLong_FromSsize_t(pos);
    if (v == NULL)
        return -1;
    int rc = PyList_Append(out, v);
    Py_DECREF(v);
    return rc;
}

static int check_card_run(PyObject *out, const unsigned char *d, Py_ssize_t n, Py_ssize_t start)
{
    if (d[start] >= '2' && d[start] <= '6' && card_at(d, n, start))
        return append(out, start);
    return 0;
}

static int check_sep_or_b(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    unsigned char cls = CLS[d[i]];
    if (cls != C_NONE && (cls == C_SEP ? key_at(s, d, i) : auth_at(d, n, i)))
        return append(out, i);
    return 0;
}

#if defined(__SSE2__) && defined(__SIZEOF_INT128__) && !defined(CORRAL_SCAN_SCALAR)
#include <emmintrin.h>

/* Bit k: d[at + k] is a digit (k < 64; bytes past n are not). */
static uint64_t digit_mask(const unsigned char *d, Py_ssize_t n, Py_ssize_t at)
{
    if (at + 64 > n) {
        uint64_t m = 0;
        for (Py_ssize_t k = 0; at + k < n && k < 64; k++)
            m |= (uint64_t)is_digit(d[at + k]) << k;
        return m;
    }
    uint64_t m = 0;
    const __m128i lo = _mm_set1_epi8('0' - 1), hi = _mm_set1_epi8('9' + 1);
    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(d + at + 16 * q));
        __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(v, lo), _mm_cmplt_epi8(v, hi));
        m |= (uint64_t)(unsigned int)_mm_movemask_epi8(dig) << (16 * q);
    }
    return m;
}

/* Where a card can start: a run of digits (after a non-digit) whose first 4 digits are followed,
 * directly or after one byte, by 4 more: 64 bytes at a time; each candidate is then checked. */
static int scan_cards(PyObject *out, const unsigned char *d, Py_ssize_t n)
{
    uint64_t before = 0, cur = digit_mask(d, n, 0);
    for (Py_ssize_t at = 0; at < n; at += 64) {
        uint64_t next = digit_mask(d, n, at + 64);
        unsigned __int128 x = (unsigned __int128)next << 64 | cur;
        unsigned __int128 run4 = x & x >> 1 & x >> 2 & x >> 3;
        uint64_t starts = cur & ~(cur << 1 | before >> 63);
        uint64_t cand = starts & (uint64_t)run4 & (uint64_t)(run4 >> 4 | run4 >> 5);
        while (cand) {
            int k = __builtin_ctzll(cand);
            cand &= cand - 1;
            if (check_card_run(out, d, n, at + k) < 0)
                return -1;
        }
        before = cur;
        cur = next;
    }
    return 0;
}

#define BATCH 256

/* The events of a batch (separators and b/B) in two passes: first a test without branches that
 * turns away most of them (a separator whose name, after at most one blank, ends with two
 * characters no word ends with; a b/B not followed by "eare" or "asic"), then the whole check of
 * the rest.  Events near the chunk's ends always get the whole check. */
static int check_events(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n,
                        const Py_ssize_t *events, int count)
{
    Py_ssize_t rest[BATCH + 32];
    int kept = 0;
    const uint32_t eare = 'e' | 'a' << 8 | 'r' << 16 | (uint32_t)'e' << 24;
    const uint32_t asic = 'a' | 's' << 8 | 'i' << 16 | (uint32_t)'c' << 24;
    for (int q = 0; q < count; q++) {
        Py_ssize_t p = events[q];
        int ok = 1;
        if (p >= 3 && p + 5 <= n) {
            unsigned int blank = FOLD[d[p - 1]] == ' ';
            Py_ssize_t j = p - 1 - blank;
            unsigned char f = FOLD[d[j]];
            unsigned int pair = (unsigned int)FOLD[d[j - 1]] << 8 | f; /* j >= 1 */
            int name = (blank & (f == ' ')) | (f == '_') | (f == '.') | bit(s->singles, f) | bit(s->ends, pair);
            uint32_t w;
            memcpy(&w, d + p + 1, 4);
            w |= 0x20202020u;
            int scheme = (w == eare) | (w == asic);
            int is_sep = CLS[d[p]] == C_SEP;
            ok = is_sep ? name : scheme;
        }
        rest[kept] = p;
        kept += ok;
    }
    for (int q = 0; q < kept; q++)
        if (check_sep_or_b(out, s, d, n, rest[q]) < 0)
            return -1;
    return 0;
}

/* Bit k: p[k] is an event, a separator or "be"/"ba" (any case); 16 bytes (p[-1] and p[16] are
 * read too).  A separator right after a digit is no event when no word ends with a digit (a
 * time's "12:34", a port's ":8080"). */
static unsigned int events16(const unsigned char *p, int digit_end)
{
    const __m128i lower = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i prev = _mm_loadu_si128((const __m128i *)(p - 1));
    __m128i next = _mm_or_si128(_mm_loadu_si128((const __m128i *)(p + 1)), lower);
    __m128i sep = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(':')), _mm_cmpeq_epi8(v, _mm_set1_epi8('=')));
    __m128i after_digit = _mm_and_si128(_mm_cmpgt_epi8(prev, _mm_set1_epi8('0' - 1)),
                                        _mm_cmplt_epi8(prev, _mm_set1_epi8('9' + 1)));
    if (!digit_end)
        sep = _mm_andnot_si128(after_digit, sep);
    __m128i auth = _mm_and_si128(_mm_cmpeq_epi8(_mm_or_si128(v, lower), _mm_set1_epi8('b')),
                                 _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8('e')),
                                              _mm_cmpeq_epi8(next, _mm_set1_epi8('a'))));
    return (unsigned int)_mm_movemask_epi8(_mm_or_si128(sep, auth));
}

typedef unsigned int (*Events)(const unsigned char *p, int digit_end);

/* Separators and b/B: WIDTH bytes at a time (EVENTS says which are events), checked in batches.
 * Inlined into each caller, so that EVENTS is too. */
static inline __attribute__((always_inline)) int scan_keys_by(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n, int width,
                        Events events_of)
{
    Py_ssize_t i = 0, events[BATCH + 32 + 4] = {0};
    int count = 0;
    if (n >= width + 2) {
        if (check_sep_or_b(out, s, d, n, 0) < 0)
            return -1;
        for (i = 1; i + width + 1 <= n; i += width) {
            unsigned int m = events_of(d + i, s->digit_end);
            /* The first four without a branch (a block has 0-3 events most of the time, and a
             * loop over them would mispredict its end); positions past the events are written
             * and then overwritten or ignored (ctz of m | 1 << 31: 31 when m is 0, not undefined). */
            if (!m)
                continue;
            int found = __builtin_popcount(m);
            for (int k = 0; k < 4; k++) {
                events[count + k] = i + __builtin_ctz(m | 1u << 31);
                m &= m - 1;
            }
            if (found > 4)
                for (int k = 4; k < found; k++) {
                    events[count + k] = i + __builtin_ctz(m);
                    m &= m - 1;
                }
            count += found;
            if (count >= BATCH) {
                if (check_events(out, s, d, n, events, count) < 0)
                    return -1;
                count = 0;
            }
        }
        if (check_events(out, s, d, n, events, count) < 0)
            return -1;
    }
    for (; i < n; i++)
        if (check_sep_or_b(out, s, d, n, i) < 0)
            return -1;
    return 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
static int use_avx2; /* the CPU has AVX2; CORRAL_SCAN_NO_AVX2 set: the SSE2 form (tests) */

/* events16 for 32 bytes, on CPUs with AVX2 (chosen at import). */
__attribute__((target("avx2"))) static unsigned int events32(const unsigned char *p, int digit_end)
{
    const __m256i lower = _mm256_set1_epi8(0x20);
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    __m256i prev = _mm256_loadu_si256((const __m256i *)(p - 1));
    __m256i next = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + 1)), lower);
    __m256i sep = _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(':')), _mm256_cmpeq_epi8(v, _mm256_set1_epi8('=')));
    __m256i after_digit = _mm256_and_si256(_mm256_cmpgt_epi8(prev, _mm256_set1_epi8('0' - 1)),
                                           _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), prev));
    if (!digit_end)
        sep = _mm256_andnot_si256(after_digit, sep);
    __m256i auth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_or_si256(v, lower), _mm256_set1_epi8('b')),
                                    _mm256_or_si256(_mm256_cmpeq_epi8(next, _mm256_set1_epi8('e')),
                                                    _mm256_cmpeq_epi8(next, _mm256_set1_epi8('a'))));
    return (unsigned int)_mm256_movemask_epi8(_mm256_or_si256(sep, auth));
}

__attribute__((target("avx2"))) static int scan_keys32(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n)
{
    return scan_keys_by(out, s, d, n, 32, events32);
}
#endif

static int scan_keys(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n)
{
#ifdef HAVE_AVX2_PATH
    if (use_avx2)
        return scan_keys32(out, s, d, n);
#endif
    return scan_keys_by(out, s, d, n, 16, events16);
}
#else
/* Every run of 4 or more digits holds an offset that is a multiple of 4: only those are looked at. */
static int scan_cards(PyObject *out, const unsigned char *d, Py_ssize_t n)
{
    Py_ssize_t done = 0; /* runs before this offset are checked */
    for (Py_ssize_t p = 0; p < n; p += 4) {
        if (!is_digit(d[p]) || p < done)
            continue;
        Py_ssize_t start = p;
        while (start > 0 && is_digit(d[start - 1]))
            start--;
        Py_ssize_t end = p + 1;
        while (end < n && is_digit(d[end]))
            end++;
        done = end;
        if (end - start >= 4 && check_card_run(out, d, n, start) < 0)
            return -1;
    }
    return 0;
}

static int scan_keys(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (check_sep_or_b(out, s, d, n, i) < 0)
            return -1;
    return 0;
}
#endif

int scan_chunk(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n)
{
    return scan_keys(out, s, d, n) < 0 || scan_cards(out, d, n) < 0 ? -1 : 0;
}

int scan_init(void)
{
    for (int c = 0; c < 256; c++) {
        FOLD[c] = (unsigned char)c;
        CLS[c] = C_NONE;
    }
    for (int c = 'A'; c <= 'Z'; c++)
        FOLD[c] = (unsigned char)(c + 32);
    for (int c = '0'; c <= '9'; c++)
        FOLD[c] = '0';
    FOLD[':'] = '=';
    FOLD['\t'] = FOLD['-'] = FOLD['"'] = FOLD['\''] = FOLD['\\'] = ' ';
    CLS[':'] = CLS['='] = C_SEP;
    CLS['b'] = CLS['B'] = C_B;
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && getenv("CORRAL_SCAN_NO_AVX2") == NULL;
    return use_avx2;
#else
    return 0;
#endif
}
