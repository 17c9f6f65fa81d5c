/* Fast DER scanner for very large CRLs (RFC 5280 §5.1).
 *
 * The one specialised path of the PKI: walk a CertificateList once, check its DER framing,
 * and index the revokedCertificates by serial in an open-addressing hash table of entry
 * offsets, so that a million-entry CRL loads in a fraction of what a general parser needs and
 * a lookup is a probe or two. Everything else (names, extensions of the list, signature algorithms,
 * signature verification) stays with `cryptography`; jpki/crlindex.py glues the two and the
 * tests cross-check this scanner against `cryptography`'s own CRL parsing. crlindex.py also
 * holds a line-for-line Python port (_scan_python) for installs without a compiler: a rule
 * changed here must change there too; the tests cross-check both on mutated CRLs.
 *
 * Every length is checked against its container before use; a malformed input raises
 * ValueError naming the problem and its offset, never reads out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIAL 32                 /* RFC 5280 allows 20 octets; tolerate more, bounded */
#define MAX_ENTRY_EXTENSIONS 16       /* RFC 5280 defines 4 entry extensions; the bound keeps
                                       * the duplicate check of an entry linear in its size */
#define KEYW (1 + MAX_SERIAL)         /* length octet, then the serial's content octets */
#define HEADER 8                      /* index header: entry count, hash-table bits */
#define SLOTW 16                      /* hash fingerprint (4), unused (4), entry offset + 1 (8) */

#define FLAG_UNKNOWN_CRITICAL 1       /* an entry carries a critical extension we don't know */
#define FLAG_CERTIFICATE_ISSUER 2     /* an entry names another issuer: an indirect CRL */
#define FLAG_DUPLICATE_SERIAL 4

typedef struct {
    const unsigned char *b;
    Py_ssize_t end;
    const char *err;
    Py_ssize_t err_at;
} scan_t;

typedef struct {
    int tag;
    Py_ssize_t start;   /* first octet of the tag */
    Py_ssize_t cstart;  /* first content octet */
    Py_ssize_t cend;    /* one past the last content octet */
} tlv_t;

static int fail(scan_t *s, Py_ssize_t at, const char *why) {
    s->err = why;
    s->err_at = at;
    return -1;
}

/* One DER TLV at pos, which must end at or before limit. */
static int read_tlv(scan_t *s, Py_ssize_t pos, Py_ssize_t limit, tlv_t *t) {
    const unsigned char *b = s->b;
    t->start = pos;
    if (pos >= limit) return fail(s, pos, "truncated: a tag was expected");
    t->tag = b[pos++];
    if ((t->tag & 0x1f) == 0x1f) return fail(s, pos - 1, "high tag numbers do not occur in a CRL");
    if (pos >= limit) return fail(s, pos, "truncated: a length was expected");
    unsigned int first = b[pos++];
    uint64_t len;
    if (first < 0x80) {
        len = first;
    } else if (first == 0x80) {
        return fail(s, pos - 1, "indefinite length (BER) is not allowed in DER");
    } else {
        int k = first & 0x7f;
        if (k > 4) return fail(s, pos - 1, "length field longer than 4 octets");
        if (limit - pos < k) return fail(s, pos, "truncated inside a length field");
        if (b[pos] == 0) return fail(s, pos, "non-minimal length encoding");
        len = 0;
        for (int i = 0; i < k; i++) len = (len << 8) | b[pos++];
        if (len < 0x80) return fail(s, pos - k - 1, "non-minimal length encoding");
    }
    if (len > (uint64_t)(limit - pos))
        return fail(s, t->start, "length runs past the end of its container");
    t->cstart = pos;
    t->cend = pos + (Py_ssize_t)len;
    return 0;
}

static int is_time(const tlv_t *t) {
    Py_ssize_t n = t->cend - t->cstart;
    return (t->tag == 0x17 && n == 13) || (t->tag == 0x18 && n == 15);
}

static const unsigned char OID_REASON[] = {0x55, 0x1d, 0x15};
static const unsigned char OID_HOLD[] = {0x55, 0x1d, 0x17};
static const unsigned char OID_INVALIDITY[] = {0x55, 0x1d, 0x18};
static const unsigned char OID_CERT_ISSUER[] = {0x55, 0x1d, 0x1d};

static int oid_is(scan_t *s, const tlv_t *oid, const unsigned char *want) {
    return oid->cend - oid->cstart == 3 && memcmp(s->b + oid->cstart, want, 3) == 0;
}

/* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
 * Reports the OID and value spans and whether it is critical. */
static int read_extension(scan_t *s, const tlv_t *ext, tlv_t *oid, tlv_t *value, int *critical) {
    if (ext->tag != 0x30) return fail(s, ext->start, "an extension is not a SEQUENCE");
    if (read_tlv(s, ext->cstart, ext->cend, oid) < 0) return -1;
    if (oid->tag != 0x06 || oid->cend == oid->cstart)
        return fail(s, oid->start, "an extension does not start with an OID");
    Py_ssize_t pos = oid->cend;
    *critical = 0;
    if (read_tlv(s, pos, ext->cend, value) < 0) return -1;
    if (value->tag == 0x01) {
        if (value->cend - value->cstart != 1) return fail(s, value->start, "bad BOOLEAN length");
        unsigned char v = s->b[value->cstart];
        if (v != 0xff) return fail(s, value->start, "critical flag is not DER TRUE");
        *critical = 1;
        if (read_tlv(s, value->cend, ext->cend, value) < 0) return -1;
    }
    if (value->tag != 0x04) return fail(s, value->start, "extnValue is not an OCTET STRING");
    if (value->cend != ext->cend) return fail(s, value->cend, "trailing data in an extension");
    return 0;
}

static int check_serial(scan_t *s, const tlv_t *serial) {
    Py_ssize_t n = serial->cend - serial->cstart;
    const unsigned char *v = s->b + serial->cstart;
    if (serial->tag != 0x02) return fail(s, serial->start, "userCertificate is not an INTEGER");
    if (n == 0) return fail(s, serial->start, "empty INTEGER");
    if (n > MAX_SERIAL) return fail(s, serial->start, "serial number longer than 32 octets");
    /* A non-minimal encoding would index under a key no lookup can produce: refuse it. */
    if (n > 1 && ((v[0] == 0x00 && !(v[1] & 0x80)) || (v[0] == 0xff && (v[1] & 0x80))))
        return fail(s, serial->start, "non-minimal INTEGER encoding of a serial number");
    return 0;
}

/* Whether t[0..n) is a UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) content
 * naming a real instant: the same rule as time_tuple() and crlindex._time, checked at scan
 * time so that no lookup can fail later. Stores the fields in v (year, month … second). */
static int time_fields(const unsigned char *t, Py_ssize_t n, int v[6]) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int k;
    if (n != 13 && n != 15) return 0;
    if (t[n - 1] != 'Z') return 0;
    for (Py_ssize_t i = 0; i < n - 1; i++)
        if (t[i] < '0' || t[i] > '9') return 0;
    if (n == 13) {
        v[0] = (t[0] - '0') * 10 + (t[1] - '0');
        v[0] += v[0] >= 50 ? 1900 : 2000;
        k = 2;
    } else {
        v[0] = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
        k = 4;
    }
    for (int f = 1; f < 6; f++, k += 2) v[f] = (t[k] - '0') * 10 + (t[k + 1] - '0');
    if (v[0] < 1 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59)
        return 0;
    int leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
    return v[2] <= days[v[1] - 1] + (v[1] == 2 && leap);
}

/* The reason codes RFC 5280 §5.3.1 defines (7 is unused). */
static int known_reason(int r) { return r >= 0 && r <= 10 && r != 7; }

/* The value of a reasonCode extension (ENUMERATED, one octet, a known code), or -1. */
static int reason_of(scan_t *s, const tlv_t *value) {
    tlv_t inner;
    if (read_tlv(s, value->cstart, value->cend, &inner) < 0) return -1;
    if (inner.tag != 0x0a || inner.cend - inner.cstart != 1 || inner.cend != value->cend ||
        !known_reason(s->b[inner.cstart]))
        return fail(s, inner.start, "malformed or unknown reasonCode");
    return s->b[inner.cstart];
}

/* The GeneralizedTime inside an invalidityDate extension, or -1. */
static int invalidity_of(scan_t *s, const tlv_t *value, tlv_t *inner) {
    int v[6];
    if (read_tlv(s, value->cstart, value->cend, inner) < 0) return -1;
    if (inner->tag != 0x18 || inner->cend != value->cend ||
        !time_fields(s->b + inner->cstart, inner->cend - inner->cstart, v))
        return fail(s, inner->start, "malformed invalidityDate");
    return 0;
}

/* revokedCertificates entry: SEQUENCE { serial INTEGER, revocationDate Time, Extensions OPT }.
 * Checks everything a later lookup decodes (dates, reasonCode, invalidityDate) and refuses an
 * extension that occurs twice (RFC 5280 §4.2: "MUST NOT include more than one instance";
 * a second reasonCode removeFromCRL must not turn a revocation into "good"). */
static int scan_entry(scan_t *s, const tlv_t *entry, tlv_t *serial, tlv_t *date, tlv_t *exts,
                      int *flags) {
    int v[6];
    if (entry->tag != 0x30) return fail(s, entry->start, "a revoked entry is not a SEQUENCE");
    if (read_tlv(s, entry->cstart, entry->cend, serial) < 0) return -1;
    if (check_serial(s, serial) < 0) return -1;
    if (read_tlv(s, serial->cend, entry->cend, date) < 0) return -1;
    if (!is_time(date) || !time_fields(s->b + date->cstart, date->cend - date->cstart, v))
        return fail(s, date->start, "revocationDate is not a valid UTCTime/GeneralizedTime");
    exts->tag = 0;
    if (date->cend == entry->cend) return 0;
    if (read_tlv(s, date->cend, entry->cend, exts) < 0) return -1;
    if (exts->tag != 0x30) return fail(s, exts->start, "crlEntryExtensions is not a SEQUENCE");
    if (exts->cend != entry->cend) return fail(s, exts->cend, "trailing data in a revoked entry");
    tlv_t seen[MAX_ENTRY_EXTENSIONS];
    int n = 0;
    Py_ssize_t pos = exts->cstart;
    while (pos < exts->cend) {
        tlv_t ext, oid, value, inner;
        int critical;
        if (read_tlv(s, pos, exts->cend, &ext) < 0) return -1;
        if (read_extension(s, &ext, &oid, &value, &critical) < 0) return -1;
        if (n == MAX_ENTRY_EXTENSIONS)
            return fail(s, ext.start, "too many extensions in a revoked entry");
        for (int i = 0; i < n; i++)
            if (seen[i].cend - seen[i].cstart == oid.cend - oid.cstart &&
                memcmp(s->b + seen[i].cstart, s->b + oid.cstart,
                       (size_t)(oid.cend - oid.cstart)) == 0)
                return fail(s, ext.start, "duplicate extension in a revoked entry");
        seen[n++] = oid;
        if (oid_is(s, &oid, OID_REASON) && reason_of(s, &value) < 0) return -1;
        if (oid_is(s, &oid, OID_INVALIDITY) && invalidity_of(s, &value, &inner) < 0) return -1;
        if (oid_is(s, &oid, OID_CERT_ISSUER)) *flags |= FLAG_CERTIFICATE_ISSUER;
        if (critical && !oid_is(s, &oid, OID_REASON) && !oid_is(s, &oid, OID_INVALIDITY) &&
            !oid_is(s, &oid, OID_HOLD) && !oid_is(s, &oid, OID_CERT_ISSUER))
            *flags |= FLAG_UNKNOWN_CRITICAL;
        pos = ext.cend;
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t hash_key(const unsigned char *key) {
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (int i = 0; i <= key[0]; i++) { h ^= key[i]; h *= 1099511628211ULL; }
    /* FNV's low bits mix poorly and the table is indexed by them: finish with fmix64. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* The serial's content octets inside the (already validated) entry at off. */
static const unsigned char *serial_at(const unsigned char *der, uint64_t off, int *n) {
    size_t p = (size_t)off + 1;
    unsigned int first = der[p++];
    if (first & 0x80) p += first & 0x7f;
    *n = der[p + 1];
    return der + p + 2;
}

/* Probe for key (hash h); returns the entry offset + 1, or 0 with *slot_out at the empty slot
 * where it would go. Keys are compared against the serial in the CRL itself, after a 32-bit
 * fingerprint check, so a probe touches the CRL only for likely matches. */
static uint64_t probe(const unsigned char *base, const unsigned char *der,
                      const unsigned char *key, uint64_t h, size_t *slot_out) {
    uint32_t bits = get32(base + 4);
    size_t mask = ((size_t)1 << bits) - 1, slot = h & mask;
    uint32_t fp = (uint32_t)(h >> 32);
    const unsigned char *table = base + HEADER;
    for (;;) {
        const unsigned char *entry = table + slot * SLOTW;
        uint64_t off1;
        uint32_t sfp;
        memcpy(&off1, entry + 8, 8);
        if (off1 == 0) { *slot_out = slot; return 0; }
        memcpy(&sfp, entry, 4);
        if (sfp == fp) {
            int n;
            const unsigned char *content = serial_at(der, off1 - 1, &n);
            if (n == key[0] && memcmp(content, key + 1, (size_t)n) == 0) return off1;
        }
        slot = (slot + 1) & mask;
    }
}

/* Returns 1 if the key was already present (a duplicate serial). */
static int insert(unsigned char *base, const unsigned char *der, const unsigned char *key,
                  uint64_t off) {
    size_t slot;
    uint64_t h = hash_key(key);
    if (probe(base, der, key, h, &slot)) return 1;
    unsigned char *entry = base + HEADER + slot * SLOTW;
    uint32_t fp = (uint32_t)(h >> 32);
    uint64_t off1 = off + 1;
    memcpy(entry, &fp, 4);
    memcpy(entry + 8, &off1, 8);
    return 0;
}

static PyObject *raise_scan(scan_t *s) {
    PyErr_Format(PyExc_ValueError, "%s (at offset %zd)", s->err, s->err_at);
    return NULL;
}

/* scan(der) -> (tbs_start, tbs_end, revoked_start, revoked_end, index, count, flags)
 * index: a hash table for lookup() and find(); offsets(index) lists entries in list order.
 * revoked_start/end span the whole revokedCertificates TLV, or are both -1 when absent. */
static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    scan_t s = {view.buf, view.len, NULL, 0};
    tlv_t outer, tbs, t;
    Py_ssize_t rev_start = -1, rev_end = -1, count = 0;
    int flags = 0;
    PyObject *index = NULL, *result = NULL;

    if (read_tlv(&s, 0, s.end, &outer) < 0) goto error;
    if (outer.tag != 0x30) { fail(&s, 0, "a CRL is a SEQUENCE"); goto error; }
    if (outer.cend != s.end) { fail(&s, outer.cend, "trailing data after the CRL"); goto error; }
    if (read_tlv(&s, outer.cstart, outer.cend, &tbs) < 0) goto error;
    if (tbs.tag != 0x30) { fail(&s, tbs.start, "tbsCertList is not a SEQUENCE"); goto error; }

    Py_ssize_t pos = tbs.cstart;
    if (read_tlv(&s, pos, tbs.cend, &t) < 0) goto error;
    if (t.tag == 0x02) { pos = t.cend; if (read_tlv(&s, pos, tbs.cend, &t) < 0) goto error; }
    if (t.tag != 0x30) { fail(&s, t.start, "signature AlgorithmIdentifier expected"); goto error; }
    if (read_tlv(&s, t.cend, tbs.cend, &t) < 0) goto error;
    if (t.tag != 0x30) { fail(&s, t.start, "issuer Name expected"); goto error; }
    if (read_tlv(&s, t.cend, tbs.cend, &t) < 0) goto error;
    if (!is_time(&t)) { fail(&s, t.start, "thisUpdate is not a UTCTime/GeneralizedTime"); goto error; }
    pos = t.cend;
    if (pos < tbs.cend) {
        if (read_tlv(&s, pos, tbs.cend, &t) < 0) goto error;
        if (t.tag == 0x17 || t.tag == 0x18) {
            if (!is_time(&t)) { fail(&s, t.start, "malformed nextUpdate"); goto error; }
            pos = t.cend;
            if (pos < tbs.cend && read_tlv(&s, pos, tbs.cend, &t) < 0) goto error;
        }
    }
    if (pos < tbs.cend && t.tag == 0x30) {
        rev_start = t.start;
        rev_end = t.cend;
        /* Count first so that the record array is allocated once. */
        Py_ssize_t p = t.cstart;
        tlv_t entry;
        while (p < t.cend) {
            if (read_tlv(&s, p, t.cend, &entry) < 0) goto error;
            p = entry.cend;
            count++;
        }
        /* The index is built in place inside the bytes object handed back to Python: a header
         * (count, table bits), then an open-addressing hash table at most half full. */
        int bits = 1;
        while (((Py_ssize_t)1 << bits) < 2 * count) bits++;
        size_t slots = (size_t)1 << bits;
        index = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(HEADER + slots * SLOTW));
        if (!index) goto error;
        unsigned char *base = (unsigned char *)PyBytes_AS_STRING(index);
        memset(base, 0, HEADER + slots * SLOTW);
        put32(base, (uint32_t)count);
        put32(base + 4, (uint32_t)bits);
        p = t.cstart;
        for (Py_ssize_t i = 0; i < count; i++) {
            tlv_t serial, date, exts;
            unsigned char key[KEYW];
            read_tlv(&s, p, t.cend, &entry);  /* framing already checked above */
            if (scan_entry(&s, &entry, &serial, &date, &exts, &flags) < 0) goto error;
            Py_ssize_t n = serial.cend - serial.cstart;
            memset(key, 0, KEYW);
            key[0] = (unsigned char)n;
            memcpy(key + 1, s.b + serial.cstart, (size_t)n);
            if (insert(base, s.b, key, (uint64_t)entry.start)) flags |= FLAG_DUPLICATE_SERIAL;
            p = entry.cend;
        }
        pos = t.cend;
        if (pos < tbs.cend && read_tlv(&s, pos, tbs.cend, &t) < 0) goto error;
    }
    if (pos < tbs.cend) {
        if (t.tag != 0xa0) { fail(&s, t.start, "unexpected field in tbsCertList"); goto error; }
        if (t.cend != tbs.cend) { fail(&s, t.cend, "trailing data in tbsCertList"); goto error; }
    }
    if (!index) {  /* no entries: an empty table of one slot */
        unsigned char empty[HEADER + SLOTW] = {0};
        index = PyBytes_FromStringAndSize((const char *)empty, HEADER + SLOTW);
        if (!index) goto error;
    }
    result = Py_BuildValue("nnnnNni", tbs.start, tbs.cend, rev_start, rev_end, index, count,
                           flags);
    PyBuffer_Release(&view);
    return result;
error:
    Py_XDECREF(index);
    PyBuffer_Release(&view);
    return s.err ? raise_scan(&s) : NULL;
}

/* Key of a serial given as an int (64-bit fast path) or as a ready key (length octet, then
 * the minimal two's-complement content octets). Returns 0 if the key can match nothing. */
static int make_key(PyObject *serial, unsigned char key[KEYW], int *ok) {
    memset(key, 0, KEYW);
    *ok = 0;
    if (PyLong_Check(serial)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(serial, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (overflow > 0) {
            /* 2^63 … 2^64-1, common for random 64-bit serials: 00 then eight octets. */
            unsigned long long u = PyLong_AsUnsignedLongLong(serial);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_SetString(PyExc_OverflowError, "serial beyond 64 bits: pass its key");
                return -1;
            }
            key[0] = 9;
            for (int k = 8; k >= 1; k--) { key[k + 1] = (unsigned char)(u & 0xff); u >>= 8; }
            *ok = 1;
            return 0;
        }
        if (overflow < 0) {
            PyErr_SetString(PyExc_OverflowError, "serial beyond 64 bits: pass its key");
            return -1;
        }
        unsigned char full[8];
        for (int k = 7; k >= 0; k--) { full[k] = (unsigned char)(v & 0xff); v >>= 8; }
        int start = 0;  /* drop redundant sign octets, as DER requires */
        while (start < 7 && ((full[start] == 0x00 && !(full[start + 1] & 0x80)) ||
                             (full[start] == 0xff && (full[start + 1] & 0x80))))
            start++;
        key[0] = (unsigned char)(8 - start);
        memcpy(key + 1, full + start, (size_t)(8 - start));
        *ok = 1;
        return 0;
    }
    const char *k;
    Py_ssize_t klen;
    if (!PyArg_Parse(serial, "y#", &k, &klen)) return -1;
    if (klen < 2 || klen > KEYW || (unsigned char)k[0] != klen - 1) return 0;
    memcpy(key, k, (size_t)klen);
    *ok = 1;
    return 0;
}

/* Offset of the entry for serial, -1 if absent, -2 on error. */
static long long find_offset(const char *index, Py_ssize_t index_len, const Py_buffer *der,
                             PyObject *serial) {
    unsigned char key[KEYW];
    int ok;
    if (make_key(serial, key, &ok) < 0) return -2;
    if (!ok || index_len < HEADER + SLOTW) return -1;
    size_t slot;
    uint64_t off1 = probe((const unsigned char *)index, der->buf, key, hash_key(key), &slot);
    return off1 ? (long long)(off1 - 1) : -1;
}

/* lookup(index, der, serial) -> entry offset or -1; der must be the CRL that was scanned. */
static PyObject *lookup(PyObject *self, PyObject *args) {
    const char *index;
    Py_ssize_t index_len;
    Py_buffer view;
    PyObject *serial;
    if (!PyArg_ParseTuple(args, "y#y*O", &index, &index_len, &view, &serial)) return NULL;
    long long off = find_offset(index, index_len, &view, serial);
    PyBuffer_Release(&view);
    if (off == -2) return NULL;
    return PyLong_FromLongLong(off);
}

/* A UTCTime (YYMMDDHHMMSSZ; 50-99 are 19xx, RFC 5280 §4.1.2.5.1) or GeneralizedTime
 * (YYYYMMDDHHMMSSZ) as an aware datetime in UTC, or NULL with ValueError. scan() has checked
 * every time of the list with time_fields(), so the error is for a caller's wrong offset. */
static PyObject *time_tuple(const unsigned char *t, Py_ssize_t n) {
    int v[6];
    if (!time_fields(t, n, v)) {
        PyErr_SetString(PyExc_ValueError, "malformed UTCTime/GeneralizedTime");
        return NULL;
    }
    return PyDateTimeAPI->DateTime_FromDateAndTime(v[0], v[1], v[2], v[3], v[4], v[5], 0,
                                                   PyDateTime_TimeZone_UTC,
                                                   PyDateTimeAPI->DateTimeType);
}

/* entry(der, offset) -> (serial, revocation_time, reason, invalidity_time)
 * times are datetimes (see time_tuple); reason is -1 and invalidity_time None when absent. */
static PyObject *decode_entry(const unsigned char *der, Py_ssize_t len, Py_ssize_t offset) {
    scan_t s = {der, len, NULL, 0};
    tlv_t e, serial, date, exts;
    int flags = 0, reason = -1;
    PyObject *invalidity = Py_None, *revoked = NULL, *result = NULL;
    Py_INCREF(Py_None);
    if (offset < 0 || offset >= s.end) { fail(&s, offset, "entry offset out of range"); goto error; }
    if (read_tlv(&s, offset, s.end, &e) < 0) goto error;
    if (scan_entry(&s, &e, &serial, &date, &exts, &flags) < 0) goto error;
    if (exts.tag == 0x30) {
        Py_ssize_t pos = exts.cstart;
        while (pos < exts.cend) {
            tlv_t ext, oid, value, inner;
            int critical;
            read_tlv(&s, pos, exts.cend, &ext);  /* checked by scan_entry */
            read_extension(&s, &ext, &oid, &value, &critical);
            if (oid_is(&s, &oid, OID_REASON)) {
                if ((reason = reason_of(&s, &value)) < 0) goto error;
            } else if (oid_is(&s, &oid, OID_INVALIDITY)) {
                if (invalidity_of(&s, &value, &inner) < 0) goto error;
                Py_DECREF(invalidity);
                invalidity = time_tuple(s.b + inner.cstart, inner.cend - inner.cstart);
                if (!invalidity) goto error_noscan;
            }
            pos = ext.cend;
        }
    }
    revoked = time_tuple(s.b + date.cstart, date.cend - date.cstart);
    if (!revoked) goto error_noscan;
    result = Py_BuildValue("y#NiN", (const char *)s.b + serial.cstart,
                           serial.cend - serial.cstart, revoked, reason, invalidity);
    return result;
error:
    Py_XDECREF(invalidity);
    return raise_scan(&s);
error_noscan:
    Py_XDECREF(invalidity);
    return NULL;
}

static PyObject *entry(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "y*n", &view, &offset)) return NULL;
    PyObject *result = decode_entry(view.buf, view.len, offset);
    PyBuffer_Release(&view);
    return result;
}

/* find(index, der, serial) -> entry(der, offset) of serial's entry, or None */
static PyObject *find(PyObject *self, PyObject *args) {
    const char *index;
    Py_ssize_t index_len;
    Py_buffer view;
    PyObject *serial;
    if (!PyArg_ParseTuple(args, "y#y*O", &index, &index_len, &view, &serial)) return NULL;
    long long off = find_offset(index, index_len, &view, serial);
    PyObject *result;
    if (off == -2) result = NULL;
    else if (off == -1) { Py_INCREF(Py_None); result = Py_None; }
    else result = decode_entry(view.buf, view.len, (Py_ssize_t)off);
    PyBuffer_Release(&view);
    return result;
}

static int compare_offsets(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* offsets(index) -> list of entry offsets in list order */
static PyObject *offsets(PyObject *self, PyObject *args) {
    const char *index;
    Py_ssize_t index_len;
    if (!PyArg_ParseTuple(args, "y#", &index, &index_len)) return NULL;
    const unsigned char *base = (const unsigned char *)index;
    if (index_len < HEADER + SLOTW) return PyList_New(0);
    size_t slots = (size_t)1 << get32(base + 4), count = 0;
    uint64_t *found = PyMem_Malloc((get32(base) + 1) * sizeof(uint64_t));
    if (!found) return PyErr_NoMemory();
    for (size_t i = 0; i < slots; i++) {
        uint64_t off1;
        memcpy(&off1, base + HEADER + i * SLOTW + 8, 8);
        if (off1) found[count++] = off1 - 1;
    }
    qsort(found, count, sizeof(uint64_t), compare_offsets);
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *o = PyLong_FromUnsignedLongLong(found[i]);
        if (!o) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, (Py_ssize_t)i, o);
    }
    PyMem_Free(found);
    return list;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Check a DER CRL's framing and index its entries by serial."},
    {"lookup", lookup, METH_VARARGS, "Find a serial's entry offset in an index."},
    {"offsets", offsets, METH_VARARGS, "Entry offsets of an index, in list order."},
    {"entry", entry, METH_VARARGS, "Decode one revoked entry at an offset."},
    {"find", find, METH_VARARGS, "Decode the entry of a serial, or None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_crlscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__crlscan(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyModule_AddIntConstant(m, "FLAG_UNKNOWN_CRITICAL", FLAG_UNKNOWN_CRITICAL);
    PyModule_AddIntConstant(m, "FLAG_CERTIFICATE_ISSUER", FLAG_CERTIFICATE_ISSUER);
    PyModule_AddIntConstant(m, "FLAG_DUPLICATE_SERIAL", FLAG_DUPLICATE_SERIAL);
    return m;
}
