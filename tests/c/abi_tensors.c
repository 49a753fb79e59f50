/*
 * Typed samples and token streams through the C ABI: an npy array of every dtype comes out of
 * thresher_batch_data bit for bit (and through DLPack with the right type code), targets and
 * masks through thresher_batch_targets / thresher_batch_mask, and bad files are refused naming
 * the file and the config key. Under ASan + UBSan with the rest of abi_test.
 */
#include "abi_test.h"

typedef struct {
    thresher_dtype dtype;
    const char *name;  /* config name */
    const char *descr; /* NumPy type string written to the file */
    size_t size;
    uint8_t dl_code, dl_bits;
} dtype_case;

static const dtype_case CASES[] = {
    {THRESHER_U8, "u8", "|u1", 1, 1, 8},      {THRESHER_I8, "i8", "|i1", 1, 0, 8},
    {THRESHER_U16, "u16", "<u2", 2, 1, 16},   {THRESHER_I16, "i16", "<i2", 2, 0, 16},
    {THRESHER_U32, "u32", "<u4", 4, 1, 32},   {THRESHER_I32, "i32", "<i4", 4, 0, 32},
    {THRESHER_I64, "i64", "<i8", 8, 0, 64},   {THRESHER_F16, "f16", "<f2", 2, 2, 16},
    {THRESHER_BF16, "bf16", "<u2", 2, 4, 16}, {THRESHER_F32, "f32", "<f4", 4, 2, 32},
    {THRESHER_F64, "f64", "<f8", 8, 2, 64},
};

/* Writes a version-1 .npy file: header padded so the data starts at a multiple of 64. */
static void write_npy(const char *path, const char *descr, const size_t *shape, int ndim,
                      const void *data, size_t bytes) {
    char header[256], dims[128] = "";
    size_t len, i;
    unsigned char *out;
    int d;
    for (d = 0; d < ndim; d++) {
        size_t at = strlen(dims);
        snprintf(dims + at, sizeof dims - at, "%zu,%s", shape[d], d + 1 < ndim ? " " : "");
    }
    snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
             descr, dims);
    len = strlen(header);
    while ((10 + len + 1) % 64 != 0) header[len++] = ' ';
    header[len++] = '\n';
    out = malloc(10 + len + bytes);
    if (out == NULL) exit(2);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(len & 0xff);
    out[9] = (unsigned char)(len >> 8);
    memcpy(out + 10, header, len);
    for (i = 0; i < bytes; i++) out[10 + len + i] = ((const unsigned char *)data)[i];
    write_file(path, out, 10 + len + bytes);
    free(out);
}

/* Deterministic bytes covering every bit pattern (NaNs included). */
static void noise(unsigned char *out, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    size_t i;
    for (i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        out[i] = (unsigned char)(s >> 11);
    }
}

static thresher_loader *open_json(const char *json) {
    thresher_loader *l = NULL;
    CHECK_OK(thresher_loader_new(json, &l));
    return l;
}

static void expect_refused(const char *json, thresher_status want, const char *needle1,
                           const char *needle2, int line) {
    thresher_loader *l = NULL;
    check_status_impl(thresher_loader_new(json, &l), want, needle1, json, __FILE__, line);
    if (needle2 != NULL) check_impl(strstr(last_error(), needle2) != NULL, needle2, __FILE__, line);
    check_impl(l == NULL, "no loader on failure", __FILE__, line);
    thresher_loader_free(l);
}

/* Checks the DLPack export of `field` against the C view `t`. */
static void check_dl(thresher_batch *b, int32_t field, const thresher_tensor *t, uint8_t code,
                     uint8_t bits) {
    void *out = NULL;
    DLManagedTensor *m;
    uint32_t d;
    CHECK_OK(thresher_batch_dlpack(b, field, &out));
    m = (DLManagedTensor *)out;
    if (m == NULL) return;
    CHECK(m->dl_tensor.data == t->data && m->dl_tensor.ndim == (int32_t)t->ndim);
    CHECK(m->dl_tensor.dtype.code == code && m->dl_tensor.dtype.bits == bits);
    for (d = 0; d < t->ndim; d++) CHECK(m->dl_tensor.shape[d] == t->shape[d]);
    m->deleter(m);
}

void test_tensor_dtypes(void) {
    char dir[] = "/tmp/thresher-c-tensors-XXXXXX", x[256], y[256], json[1024];
    enum { N = 10, A = 3, B = 2 };
    size_t shape[3] = {N, A, B}, yshape[2] = {N, 4}, c;
    unsigned char data[N * A * B * 8], targets[N * 4 * 4];
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(y, sizeof y, "%s/y.npy", dir);
    noise(targets, sizeof targets, 99);
    write_npy(y, "<f4", yshape, 2, targets, sizeof targets);
    for (c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const dtype_case *k = &CASES[c];
        size_t bytes = N * A * B * k->size, seen = 0, seen_y = 0;
        thresher_loader *l;
        thresher_batch *b;
        noise(data, bytes, (uint32_t)c);
        write_npy(x, k->descr, shape, 3, data, bytes);
        snprintf(json, sizeof json,
                 "{\"source\": {\"kind\": \"npy\", \"x\": \"%s\", \"y\": \"%s\"%s}, "
                 "\"batch_size\": 4, \"shuffle\": false, \"workers\": 2}",
                 x, y, k->dtype == THRESHER_BF16 ? ", \"x_dtype\": \"bf16\"" : "");
        l = open_json(json);
        if (l == NULL) continue;
        while (thresher_loader_next(l, &b) == THRESHER_OK) {
            thresher_tensor t, ty, tm;
            size_t len = thresher_batch_len(b), n;
            CHECK_OK(thresher_batch_data(b, &t));
            CHECK(t.dtype == k->dtype && t.ndim == 3);
            CHECK(t.shape[0] == (int64_t)len && t.shape[1] == A && t.shape[2] == B);
            CHECK(t.shape[3] == 0 && t.shape[THRESHER_MAX_NDIM - 1] == 0);
            CHECK((uintptr_t)t.data % 64 == 0);
            n = len * A * B * k->size;
            CHECK(seen + n <= bytes && memcmp(t.data, data + seen, n) == 0);
            seen += n;
            check_dl(b, THRESHER_FIELD_DATA, &t, k->dl_code, k->dl_bits);
            /* f32 [N, 4] targets, no class labels, no mask. */
            CHECK_OK(thresher_batch_targets(b, &ty));
            CHECK(ty.dtype == THRESHER_F32 && ty.ndim == 2 && ty.shape[1] == 4);
            CHECK((uintptr_t)ty.data % 64 == 0);
            CHECK(memcmp(ty.data, targets + seen_y, len * 16) == 0);
            seen_y += len * 16;
            check_dl(b, THRESHER_FIELD_TARGETS, &ty, 2, 32);
            CHECK(thresher_batch_labels(b) == NULL);
            CHECK_STATUS(thresher_batch_mask(b, &tm), THRESHER_STATE, "no mask");
            {
                void *out = NULL;
                CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_LABELS, &out), THRESHER_STATE,
                             "no class labels");
                CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_MASK, &out), THRESHER_STATE,
                             "no mask");
                CHECK(out == NULL);
            }
            thresher_batch_release(b);
        }
        CHECK(seen == bytes && seen_y == sizeof targets);
        thresher_loader_free(l);
    }
    /* Integer labels: int64 labels and the targets in the file's dtype (int16). */
    {
        int16_t labels[N];
        size_t i, lshape[1] = {N};
        thresher_loader *l;
        thresher_batch *b;
        thresher_tensor ty;
        for (i = 0; i < N; i++) labels[i] = (int16_t)(7 - 3 * (int)i);
        write_npy(y, "<i2", lshape, 1, labels, sizeof labels);
        snprintf(json, sizeof json,
                 "{\"source\": {\"kind\": \"npy\", \"x\": \"%s\", \"y\": \"%s\"}, "
                 "\"batch_size\": 4, \"shuffle\": false}",
                 x, y);
        l = open_json(json);
        if (l != NULL && thresher_loader_next(l, &b) == THRESHER_OK) {
            const int64_t *lab = thresher_batch_labels(b);
            CHECK(lab != NULL && lab[0] == 7 && lab[3] == -2);
            CHECK_OK(thresher_batch_targets(b, &ty));
            CHECK(ty.dtype == THRESHER_I16 && ty.ndim == 1 && ty.shape[0] == 4);
            CHECK(memcmp(ty.data, labels, 8) == 0);
            thresher_batch_release(b);
        }
        thresher_loader_free(l);
    }
    /* Bad inputs name file and key. */
    {
        size_t short_shape[1] = {N - 1};
        int64_t z[N] = {0};
        write_npy(y, "<i8", short_shape, 1, z, sizeof z - 8);
        snprintf(json, sizeof json, "{\"source\": {\"kind\": \"npy\", \"x\": \"%s\", \"y\": \"%s\"}}",
                 x, y);
        expect_refused(json, THRESHER_FORMAT, "source.y", "y.npy", __LINE__);
        snprintf(json, sizeof json,
                 "{\"source\": {\"kind\": \"npy\", \"x\": \"%s\", \"x_dtype\": \"f16\"}}", x);
        expect_refused(json, THRESHER_INVALID_ARGUMENT, "source.x_dtype", "x.npy", __LINE__);
        snprintf(json, sizeof json,
                 "{\"source\": {\"kind\": \"npy\", \"x\": \"%s\"}, \"transform\": {}}", x);
        expect_refused(json, THRESHER_INVALID_ARGUMENT, "config key `transform`", NULL, __LINE__);
    }
    unlink(x);
    unlink(y);
    rmdir(dir);
}

void test_tokens(void) {
    char dir[] = "/tmp/thresher-c-tokens-XXXXXX", p[256], o[256], json[1024];
    uint16_t tok[13];
    int64_t off[4] = {0, 3, 10, 12};
    size_t i, oshape[1] = {4};
    thresher_loader *l;
    thresher_batch *b;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(p, sizeof p, "%s/t.bin", dir);
    snprintf(o, sizeof o, "%s/o.npy", dir);
    for (i = 0; i < 13; i++) tok[i] = (uint16_t)(500 + 11 * i);
    write_file(p, tok, sizeof tok);
    write_npy(o, "<i8", oshape, 1, off, sizeof off);
    /* Contiguous, block 4: windows at 0, 4, 8; x = tok[s..s+4], y = tok[s+1..s+5]. */
    snprintf(json, sizeof json,
             "{\"source\": {\"kind\": \"tokens\", \"path\": \"%s\", \"dtype\": \"u16\", "
             "\"block\": 4}, \"batch_size\": 8, \"shuffle\": false}",
             p);
    l = open_json(json);
    if (l != NULL && thresher_loader_next(l, &b) == THRESHER_OK) {
        thresher_tensor x, y, m;
        CHECK(thresher_batch_len(b) == 3);
        CHECK_OK(thresher_batch_data(b, &x));
        CHECK_OK(thresher_batch_targets(b, &y));
        CHECK(x.dtype == THRESHER_U16 && x.ndim == 2 && x.shape[1] == 4);
        CHECK(y.dtype == THRESHER_U16 && y.ndim == 2 && y.shape[0] == 3);
        CHECK(memcmp(x.data, tok, 24) == 0);
        for (i = 0; i < 3; i++)
            CHECK(memcmp((uint16_t *)y.data + 4 * i, tok + 4 * i + 1, 8) == 0);
        CHECK(thresher_batch_labels(b) == NULL);
        CHECK_STATUS(thresher_batch_mask(b, &m), THRESHER_STATE, "offsets");
        thresher_batch_release(b);
    }
    thresher_loader_free(l);
    /* Ragged: documents of 3, 7 and 2 tokens, padded or truncated, with a mask. */
    snprintf(json, sizeof json,
             "{\"source\": {\"kind\": \"tokens\", \"path\": \"%s\", \"dtype\": \"u16\", "
             "\"block\": 4, \"offsets\": \"%s\"}, \"batch_size\": 8, \"shuffle\": false}",
             p, o);
    l = open_json(json);
    if (l != NULL && thresher_loader_next(l, &b) == THRESHER_OK) {
        thresher_tensor x, y, m;
        static const uint8_t want_mask[12] = {1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0};
        const uint16_t *xs, *ys;
        CHECK_OK(thresher_batch_data(b, &x));
        CHECK_OK(thresher_batch_targets(b, &y));
        CHECK_OK(thresher_batch_mask(b, &m));
        CHECK(m.dtype == THRESHER_U8 && m.ndim == 2 && m.shape[0] == 3 && m.shape[1] == 4);
        CHECK(memcmp(m.data, want_mask, 12) == 0);
        check_dl(b, THRESHER_FIELD_MASK, &m, 1, 8);
        check_dl(b, THRESHER_FIELD_TARGETS, &y, 1, 16);
        xs = x.data;
        ys = y.data;
        CHECK(xs[0] == tok[0] && xs[2] == tok[2] && xs[3] == 0);
        CHECK(ys[0] == tok[1] && ys[1] == tok[2] && ys[2] == 0);
        CHECK(xs[4] == tok[3] && xs[7] == tok[6] && ys[7] == tok[7]);
        CHECK(xs[8] == tok[10] && ys[8] == tok[11] && ys[9] == 0);
        thresher_batch_release(b);
    }
    thresher_loader_free(l);
    /* block larger than the stream; offsets past the end; a stride with offsets. */
    snprintf(json, sizeof json,
             "{\"source\": {\"kind\": \"tokens\", \"path\": \"%s\", \"dtype\": \"u16\", "
             "\"block\": 13}}",
             p);
    expect_refused(json, THRESHER_INVALID_ARGUMENT, "source.block", "t.bin", __LINE__);
    snprintf(json, sizeof json,
             "{\"source\": {\"kind\": \"tokens\", \"path\": \"%s\", \"dtype\": \"u32\", "
             "\"block\": 2}}",
             p);
    expect_refused(json, THRESHER_FORMAT, "source.path", "u32", __LINE__);
    off[3] = 14;
    write_npy(o, "<i8", oshape, 1, off, sizeof off);
    snprintf(json, sizeof json,
             "{\"source\": {\"kind\": \"tokens\", \"path\": \"%s\", \"dtype\": \"u16\", "
             "\"block\": 4, \"offsets\": \"%s\"}}",
             p, o);
    expect_refused(json, THRESHER_FORMAT, "source.offsets", "past the end", __LINE__);
    off[3] = 2;
    write_npy(o, "<i8", oshape, 1, off, sizeof off);
    expect_refused(json, THRESHER_FORMAT, "source.offsets", "not increasing", __LINE__);
    /* NULL arguments. */
    {
        thresher_tensor t;
        CHECK_STATUS(thresher_batch_targets(NULL, &t), THRESHER_INVALID_ARGUMENT, "NULL");
        CHECK_STATUS(thresher_batch_mask(NULL, &t), THRESHER_INVALID_ARGUMENT, "NULL");
    }
    unlink(p);
    unlink(o);
    rmdir(dir);
}
