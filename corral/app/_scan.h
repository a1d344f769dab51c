/* The native scan's shared parts (corral/app/_scan.c: the Python module; _scan_match.c: the scan). */
#ifndef CORRAL_SCAN_H
#define CORRAL_SCAN_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

extern unsigned char FOLD[256]; /* ASCII lower-case, digits to '0', ':' to '=', tab - " ' \\ to a blank */
enum { C_NONE = 0, C_SEP = 1, C_B = 2 };
extern unsigned char CLS[256];  /* which bytes start an event: a separator, a b/B */

typedef struct {
    const unsigned char *text;
    Py_ssize_t len;
    uint32_t last4, mask4; /* its last four characters (all when fewer), the last one lowest, and
                            * which bytes of a last_chars() value they are compared with */
    char kind;
} Word;

typedef struct {
    Word *words;        /* sorted by last character */
    Py_ssize_t nwords;
    Py_ssize_t first[257]; /* words ending with c: words[first[c] .. first[c + 1]) */
    /* A first test, before the words are compared: bit c of singles, a word is the one character c;
     * bit (a << 8 | b) of pairs, a word is "ab"; bit hash("abc") of triples, a three-character word
     * is "abc"; bit hash("abcd") of quads, a longer word ends with "abcd". */
    unsigned char singles[256 / 8];
    unsigned char pairs[65536 / 8];
    unsigned char triples[65536 / 8];
    unsigned char quads[65536 / 8];
    unsigned char ends[65536 / 8]; /* bit (a << 8 | b): a word of two characters or more ends with "ab" */
    int digit_end; /* a word ends with a digit ('0' once folded) */
    Word *excl;
    Py_ssize_t nexcl;
    PyObject *keep;     /* the bytes objects the words point into */
} Spec;

static inline int bit(const unsigned char *set, unsigned int k) { return set[k >> 3] >> (k & 7) & 1; }
static inline void set_bit(unsigned char *set, unsigned int k) { set[k >> 3] |= (unsigned char)(1 << (k & 7)); }
static inline unsigned int hash16(uint32_t chars) { return (chars * 2654435761u) >> 16; }

/* The hits of the chunk d[0:n] appended to OUT (a list): 0, or -1 with an exception set. */
int scan_chunk(PyObject *out, const Spec *s, const unsigned char *d, Py_ssize_t n);
/* The tables, and which vector loop this CPU runs; returns 1 for AVX2. */
int scan_init(void);

#endif
