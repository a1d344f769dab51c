/* The redaction pre-filter's scan in one pass over a chunk (internal to corral.app._prefilter).
 *
 * The same questions as the Python pre-filter (corral/app/_prefilter.py), asked of every byte once,
 * with no copy of the chunk (no fold, no reversal):
 *
 *   - keys: at each ':' or '=', the blanks before it are skipped (the characters the Python fold
 *     turns into a blank: space, tab, '-', quotes, backslash), then the name before them is compared,
 *     folded (ASCII lower-case, digits as '0'), with the secret words that end with its last
 *     character: a word of kind 'E' (an ending) matches as it is, 'X' (an exact name) when the
 *     character before it is not [a-z0-9_.], 'K' (the ending "key") unless a non-secret identifier
 *     word (cache, sort, ...) comes before it; and the last-word rule: after [_.] and more [_. ],
 *     a word of kind 'W' (or 'Q', "key" with the same exception).  The words and their kinds come
 *     from Python (corral.app._prefilter.key_words), so there is one list;
 *   - cards: at the start of a run of digits (after a non-digit), a first digit 2-6 and the card
 *     rule's shape (4 digits, [ -]?, 4 digits, [ -]?, 1 digit, then 4-10 more, each after an
 *     optional [ -], not followed by a digit: greedy, as the regex), then the Luhn check;
 *   - "bearer" / "basic" (any case) followed by a blank.
 *
 * scan(data, spec) returns the offsets of the hits (the separator of a key, the 'b' of bearer/basic,
 * then the first digit of a card); spec is compile(words, exclusions).  Python keeps what
 * is rare or user-given (a Kelvin sign, extra patterns, URL credentials) and maps hits to lines.
 * The unit tests and bench/redact_corpus.py check that it flags what the Python pre-filter flags.
 */
#include "_scan.h"

#include <string.h>

static const char *CAPSULE = "corral.app._scan.Spec";

static PyObject *scan(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    PyObject *capsule;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O:scan", &buf, &capsule))
        return NULL;
    Spec *s = PyCapsule_GetPointer(capsule, CAPSULE);
    PyObject *out = s == NULL ? NULL : PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (scan_chunk(out, s, buf.buf, buf.len) < 0)
        Py_CLEAR(out);
    PyBuffer_Release(&buf);
    return out;
}

static void spec_free(PyObject *capsule)
{
    Spec *s = PyCapsule_GetPointer(capsule, CAPSULE);
    if (s == NULL)
        return;
    PyMem_Free(s->words);
    PyMem_Free(s->excl);
    Py_XDECREF(s->keep);
    PyMem_Free(s);
}

static int word_order(const void *a, const void *b)
{
    const Word *x = a, *y = b;
    return (int)x->text[x->len - 1] - (int)y->text[y->len - 1];
}

/* words: a list of (bytes, kind) with kind one of "EXKWQ"; excl: a list of bytes. */
static int read_words(PyObject *list, Word **out, Py_ssize_t *count, int with_kind, PyObject *keep)
{
    PyObject *seq = PySequence_Fast(list, "a list is needed");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *out = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Word));
    *count = n;
    if (*out == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i), *text = item;
        const char *kind = "E";
        if (with_kind && !PyArg_ParseTuple(item, "Ss", &text, &kind)) {
            Py_DECREF(seq);
            return -1;
        }
        if (!PyBytes_Check(text) || PyBytes_GET_SIZE(text) == 0 || !strchr("EXKWQ", kind[0]) || kind[0] == 0) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a word is non-empty bytes and its kind one of E X K W Q");
            return -1;
        }
        if (PyList_Append(keep, text) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        (*out)[i].text = (const unsigned char *)PyBytes_AS_STRING(text);
        (*out)[i].len = PyBytes_GET_SIZE(text);
        (*out)[i].kind = kind[0];
        Word *w = &(*out)[i];
        for (Py_ssize_t k = 0; k < 4 && k < w->len; k++) {
            w->last4 |= (uint32_t)w->text[w->len - 1 - k] << (8 * k);
            w->mask4 |= (uint32_t)0xFF << (8 * k);
        }
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *compile(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *words, *excl;
    if (!PyArg_ParseTuple(args, "OO:compile", &words, &excl))
        return NULL;
    Spec *s = PyMem_Calloc(1, sizeof(Spec));
    if (s == NULL)
        return PyErr_NoMemory();
    s->keep = PyList_New(0);
    PyObject *capsule = s->keep == NULL ? NULL : PyCapsule_New(s, CAPSULE, spec_free);
    if (capsule == NULL) {
        Py_XDECREF(s->keep);
        PyMem_Free(s);
        return NULL;
    }
    if (read_words(words, &s->words, &s->nwords, 1, s->keep) < 0
        || read_words(excl, &s->excl, &s->nexcl, 0, s->keep) < 0) {
        Py_DECREF(capsule);
        return NULL;
    }
    qsort(s->words, (size_t)s->nwords, sizeof(Word), word_order);
    for (Py_ssize_t k = 0; k < s->nwords; k++) {
        const Word *w = &s->words[k];
        s->digit_end |= w->text[w->len - 1] == '0';
        uint32_t last = 0;
        for (int c = 0; c < 4 && c < w->len; c++)
            last |= (uint32_t)w->text[w->len - 1 - c] << (8 * c);
        if (w->len > 1)
            set_bit(s->ends, last & 0xFFFF);
        if (w->len == 1)
            set_bit(s->singles, last);
        else if (w->len == 2)
            set_bit(s->pairs, last);
        else
            set_bit(w->len == 3 ? s->triples : s->quads, hash16(last));
    }
    Py_ssize_t i = 0;
    for (int c = 0; c <= 256; c++) {
        while (c < 256 && i < s->nwords && s->words[i].text[s->words[i].len - 1] < c)
            i++;
        s->first[c] = c == 256 ? s->nwords : i;
    }
    return capsule;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "scan(data, spec) -> offsets of the hits (see the module's source)"},
    {"compile", compile, METH_VARARGS, "compile(words, exclusions) -> the spec scan() takes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void)
{
    int avx2 = scan_init();
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "AVX2", avx2) < 0)
        Py_CLEAR(m);
    return m;
}
