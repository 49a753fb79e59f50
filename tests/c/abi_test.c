/*
 * abi_test.c — the thresher C ABI exercised from a strict C99 program.
 *
 * Built by `make test-c` with -std=c99 -pedantic -Werror under AddressSanitizer, UBSan and
 * LeakSanitizer, linked against the static library. Usage: abi_test MNIST_DIR, where MNIST_DIR
 * holds the raw (uncompressed) MNIST IDX files. Covers every function in thresher.h and every
 * status a caller can provoke; prints "N passed, M failed" and exits nonzero on any failure.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, pthreads */

#include "thresher.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a tiny test harness ------------------------------------------------------------------ */

static int g_passed, g_failed;

/* This thread's last thresher error, copied into a static buffer (main thread only). */
static const char *last_error(void) {
    static char buf[2048];
    buf[0] = '\0';
    thresher_last_error(buf, sizeof buf);
    return buf;
}

static void check_impl(int ok, const char *expr, const char *file, int line) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n    (last thresher error, may be older: \"%s\")\n",
            file, line, expr, last_error());
}

#define CHECK(cond) check_impl((cond) != 0, #cond, __FILE__, __LINE__)

static const char *status_name(thresher_status s) {
    switch (s) {
    case THRESHER_OK: return "THRESHER_OK";
    case THRESHER_END_OF_EPOCH: return "THRESHER_END_OF_EPOCH";
    case THRESHER_INVALID_ARGUMENT: return "THRESHER_INVALID_ARGUMENT";
    case THRESHER_IO: return "THRESHER_IO";
    case THRESHER_FORMAT: return "THRESHER_FORMAT";
    case THRESHER_STATE: return "THRESHER_STATE";
    case THRESHER_PANIC: return "THRESHER_PANIC";
    }
    return "(unknown status)";
}

/* A call must return `want`, and (when `needle` is not NULL) its message must contain it. */
static void check_status_impl(thresher_status got, thresher_status want, const char *needle,
                              const char *expr, const char *file, int line) {
    const char *msg;
    if (got != want) {
        g_failed++;
        fprintf(stderr, "%s:%d: %s returned %s, expected %s\n    thresher_last_error: \"%s\"\n",
                file, line, expr, status_name(got), status_name(want), last_error());
        return;
    }
    g_passed++;
    if (needle == NULL) return;
    msg = last_error();
    if (strstr(msg, needle) != NULL) {
        g_passed++;
    } else {
        g_failed++;
        fprintf(stderr, "%s:%d: %s: message \"%s\" does not contain \"%s\"\n", file, line, expr,
                msg, needle);
    }
}

#define CHECK_STATUS(call, want, needle) \
    check_status_impl((call), (want), (needle), #call, __FILE__, __LINE__)
#define CHECK_OK(call) CHECK_STATUS(call, THRESHER_OK, NULL)

/* ---- helpers ------------------------------------------------------------------------------ */

enum { ROWS = 28, COLS = 28, PIXELS = ROWS * COLS, IMG_HEADER = 16, LAB_HEADER = 8 };

static char train_images[1024], train_labels[1024], test_images[1024], test_labels[1024];

/* A raw IDX file read whole into memory. */
typedef struct {
    unsigned char *bytes;
    size_t size;
} blob;

static blob read_file(const char *path) {
    blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    long size;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot size %s\n", path);
        exit(2);
    }
    b.size = (size_t)size;
    b.bytes = malloc(b.size ? b.size : 1);
    if (b.bytes == NULL || fread(b.bytes, 1, b.size, f) != b.size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Writes a JSON string literal for `s` (quotes and backslashes escaped). */
static size_t json_string(char *out, size_t cap, const char *s) {
    size_t n = 0;
    if (n < cap) out[n] = '"';
    n++;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            if (n < cap) out[n] = '\\';
            n++;
        }
        if (n < cap) out[n] = *s;
        n++;
    }
    if (n < cap) out[n] = '"';
    n++;
    if (n < cap) out[n] = '\0';
    return n;
}

/* A config: the idx source over (images, labels), then `extra` (more top-level keys or ""). */
static void make_config(char *out, size_t cap, const char *images, const char *labels,
                        const char *extra) {
    char img[2100], lab[2100];
    json_string(img, sizeof img, images);
    json_string(lab, sizeof lab, labels);
    snprintf(out, cap, "{\"source\": {\"kind\": \"idx\", \"images\": %s, \"labels\": %s}%s%s}",
             img, lab, extra[0] ? ", " : "", extra);
}

/* A loader over (images, labels) with `extra` keys; NULL (and a failed check) on error. */
static thresher_loader *open_loader(const char *images, const char *labels, const char *extra) {
    char cfg[8192];
    thresher_loader *l = NULL;
    make_config(cfg, sizeof cfg, images, labels, extra);
    CHECK_OK(thresher_loader_new(cfg, &l));
    CHECK(l != NULL);
    return l;
}

/* thresher_loader_new on `extra` must fail with `want` naming `needle`; no loader is made. */
static void expect_config_error(const char *images, const char *labels, const char *extra,
                                thresher_status want, const char *needle, int line) {
    char cfg[8192];
    static char untouched;
    thresher_loader *l = (thresher_loader *)(void *)&untouched;
    make_config(cfg, sizeof cfg, images, labels, extra);
    check_status_impl(thresher_loader_new(cfg, &l), want, needle, cfg, __FILE__, line);
    check_impl(l == (thresher_loader *)(void *)&untouched, "*out untouched on failure", __FILE__,
               line);
    if (l != (thresher_loader *)(void *)&untouched) thresher_loader_free(l);
}

/* Bytes of a batch's data, from its tensor description. */
static size_t tensor_bytes(const thresher_tensor *t) {
    size_t n = t->dtype == THRESHER_F32 ? 4 : 1;
    uint32_t d;
    for (d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* ---- versions ----------------------------------------------------------------------------- */

static void test_versions(void) {
    char built[64];
    CHECK(thresher_abi_version() == THRESHER_ABI_VERSION);
    CHECK(thresher_version() != NULL);
    CHECK(strcmp(thresher_version(), THRESHER_VERSION) == 0);
    snprintf(built, sizeof built, "%d.%d.%d", THRESHER_VERSION_MAJOR, THRESHER_VERSION_MINOR,
             THRESHER_VERSION_PATCH);
    CHECK(strcmp(built, THRESHER_VERSION) == 0);
    /* The status and dtype values are ABI: they must never change. */
    CHECK(THRESHER_OK == 0 && THRESHER_END_OF_EPOCH == 1 && THRESHER_INVALID_ARGUMENT == 2);
    CHECK(THRESHER_IO == 3 && THRESHER_FORMAT == 4 && THRESHER_STATE == 5);
    CHECK(THRESHER_PANIC == 6);
    CHECK(THRESHER_U8 == 0 && THRESHER_F32 == 1);
}

/* ---- thresher_last_error ------------------------------------------------------------------ */

static void test_last_error(void) {
    char buf[4], big[512], one[1];
    size_t n;
    thresher_loader *l = NULL;
    thresher_epoch_info info;

    /* Nothing has failed on this thread yet. */
    CHECK(thresher_last_error(NULL, 0) == 0);

    CHECK_STATUS(thresher_loader_new("{\"batch_sise\": 3}", &l), THRESHER_INVALID_ARGUMENT,
                 "batch_sise");
    n = thresher_last_error(NULL, 0);
    CHECK(n > 3);
    CHECK(n < sizeof big);
    /* The size query gives the full length; a big enough buffer gets all of it. */
    memset(big, 'x', sizeof big);
    CHECK(thresher_last_error(big, sizeof big) == n);
    CHECK(strlen(big) == n);
    CHECK(strstr(big, "batch_sise") != NULL);
    /* Truncation: 3 bytes and a NUL, and the full length is still returned. */
    memset(buf, 'x', sizeof buf);
    CHECK(thresher_last_error(buf, sizeof buf) == n);
    CHECK(buf[3] == '\0');
    CHECK(strlen(buf) == 3);
    CHECK(memcmp(buf, big, 3) == 0);
    /* len 1: just the NUL. */
    one[0] = 'x';
    CHECK(thresher_last_error(one, 1) == n);
    CHECK(one[0] == '\0');
    /* len 0 with a buffer: nothing written. */
    buf[0] = 'q';
    CHECK(thresher_last_error(buf, 0) == n);
    CHECK(buf[0] == 'q');

    /* A successful call does not clear the message. */
    CHECK(thresher_abi_version() == THRESHER_ABI_VERSION);
    CHECK(thresher_batch_len(NULL) == 0);
    l = open_loader(test_images, test_labels, "\"batch_size\": 5000");
    if (l == NULL) return;
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    memset(big, 0, sizeof big);
    CHECK(thresher_last_error(big, sizeof big) == n);
    CHECK(strstr(big, "batch_sise") != NULL);
    thresher_loader_free(l);
}

/* Each thread has its own message. */
typedef struct {
    thresher_loader *loader;
    thresher_batch *batch;
    size_t fresh_len;     /* last_error length before this thread failed */
    int status;           /* of the bad feedback call */
    int names_ids;        /* its message names "ids[0]" */
    size_t batch_len;     /* read from the batch on this thread */
} thread_job;

static void *thread_main(void *arg) {
    thread_job *job = arg;
    char msg[512];
    uint64_t id = 1u << 30;
    float loss = 1.0f;
    thresher_feedback fb;
    job->fresh_len = thresher_last_error(NULL, 0);
    memset(&fb, 0, sizeof fb);
    fb.len = 1;
    fb.ids = &id;
    fb.loss = &loss;
    job->status = thresher_loader_feedback(job->loader, &fb);
    msg[0] = '\0';
    thresher_last_error(msg, sizeof msg);
    job->names_ids = strstr(msg, "ids[0]") != NULL;
    /* A batch may be read and released on any thread. */
    job->batch_len = thresher_batch_len(job->batch);
    thresher_batch_release(job->batch);
    return NULL;
}

static void test_threads(void) {
    thresher_loader *l;
    thread_job job;
    pthread_t t;
    size_t before;
    thresher_status st;
    CHECK_STATUS(thresher_loader_new(NULL, &l), THRESHER_INVALID_ARGUMENT, "config_json");
    before = thresher_last_error(NULL, 0);
    l = open_loader(test_images, test_labels, "\"batch_size\": 1000, \"workers\": 3");
    if (l == NULL) return;
    memset(&job, 0, sizeof job);
    job.loader = l;
    st = thresher_loader_next(l, &job.batch);
    CHECK(st == THRESHER_OK);
    if (st != THRESHER_OK) {
        thresher_loader_free(l);
        return;
    }
    CHECK(pthread_create(&t, NULL, thread_main, &job) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(job.fresh_len == 0);
    CHECK(job.status == THRESHER_INVALID_ARGUMENT);
    CHECK(job.names_ids);
    CHECK(job.batch_len == 1000);
    /* This thread's message is unchanged by the other thread's failure. */
    CHECK(thresher_last_error(NULL, 0) == before);
    CHECK(strstr(last_error(), "config_json") != NULL);
    thresher_loader_free(l);
}

/* ---- NULL arguments ----------------------------------------------------------------------- */

static void test_null_arguments(void) {
    static char untouched;
    thresher_loader *l, *sentinel = (thresher_loader *)(void *)&untouched;
    thresher_batch *b = NULL, *bsentinel = (thresher_batch *)(void *)&untouched;
    thresher_feedback fb;
    thresher_epoch_info info, info_before;
    thresher_tensor t, t_before;
    char cfg[4096];

    make_config(cfg, sizeof cfg, test_images, test_labels, "\"batch_size\": 100");

    l = sentinel;
    CHECK_STATUS(thresher_loader_new(NULL, &l), THRESHER_INVALID_ARGUMENT, "config_json");
    CHECK(l == sentinel);
    CHECK_STATUS(thresher_loader_new(cfg, NULL), THRESHER_INVALID_ARGUMENT, "out");

    b = bsentinel;
    CHECK_STATUS(thresher_loader_next(NULL, &b), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK(b == bsentinel);
    memset(&fb, 0, sizeof fb);
    CHECK_STATUS(thresher_loader_feedback(NULL, &fb), THRESHER_INVALID_ARGUMENT, "loader");
    memset(&info, 0xab, sizeof info);
    info_before = info;
    CHECK_STATUS(thresher_loader_epoch_info(NULL, &info), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK(memcmp(&info, &info_before, sizeof info) == 0);
    memset(&t, 0xab, sizeof t);
    t_before = t;
    CHECK_STATUS(thresher_batch_data(NULL, &t), THRESHER_INVALID_ARGUMENT, "batch");
    CHECK(memcmp(&t, &t_before, sizeof t) == 0);

    CHECK(thresher_batch_len(NULL) == 0);
    CHECK(thresher_batch_ids(NULL) == NULL);
    CHECK(thresher_batch_labels(NULL) == NULL);
    CHECK(thresher_batch_weights(NULL) == NULL);
    CHECK(thresher_batch_padding(NULL) == 0);
    thresher_loader_free(NULL);
    thresher_batch_release(NULL);
    g_passed++; /* survived the two NULL frees */

    l = NULL;
    CHECK_OK(thresher_loader_new(cfg, &l));
    if (l == NULL) return;
    CHECK_STATUS(thresher_loader_next(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    CHECK_STATUS(thresher_loader_feedback(l, NULL), THRESHER_INVALID_ARGUMENT, "fb");
    CHECK_STATUS(thresher_loader_epoch_info(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    b = NULL;
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK(b != NULL);
    CHECK_STATUS(thresher_batch_data(b, NULL), THRESHER_INVALID_ARGUMENT, "out");
    thresher_batch_release(b);
    thresher_loader_free(l);
}

/* ---- configuration and file errors -------------------------------------------------------- */

static void test_config_errors(void) {
    char path[1100];
    thresher_loader *l = NULL;
    const char *ti = test_images, *tl = test_labels;

    CHECK_STATUS(thresher_loader_new("{", &l), THRESHER_INVALID_ARGUMENT, "config");
    CHECK_STATUS(thresher_loader_new("not json", &l), THRESHER_INVALID_ARGUMENT, "config");
    CHECK_STATUS(thresher_loader_new("[1, 2]", &l), THRESHER_INVALID_ARGUMENT, "config");
    CHECK_STATUS(thresher_loader_new("", &l), THRESHER_INVALID_ARGUMENT, "config");
    CHECK_STATUS(thresher_loader_new("{}", &l), THRESHER_INVALID_ARGUMENT, "source");
    CHECK_STATUS(thresher_loader_new("{\"source\": {\"kind\": \"idx\"}}", &l),
                 THRESHER_INVALID_ARGUMENT, "source");
    CHECK(l == NULL);

    /* unknown keys are named, wherever they are */
    expect_config_error(ti, tl, "\"batch_sise\": 3", THRESHER_INVALID_ARGUMENT, "batch_sise",
                        __LINE__);
    expect_config_error(ti, tl, "\"transform\": {\"dtype\": \"f32\", \"colour\": 1}",
                        THRESHER_INVALID_ARGUMENT, "colour", __LINE__);
    expect_config_error(ti, tl, "\"policy\": {\"kind\": \"random\", \"explore\": 0.1}",
                        THRESHER_INVALID_ARGUMENT, "explore", __LINE__);
    /* bad values name their key */
    expect_config_error(ti, tl, "\"batch_size\": 0", THRESHER_INVALID_ARGUMENT, "batch_size",
                        __LINE__);
    expect_config_error(ti, tl, "\"batch_size\": \"big\"", THRESHER_INVALID_ARGUMENT,
                        "batch_size", __LINE__);
    expect_config_error(ti, tl, "\"workers\": 0", THRESHER_INVALID_ARGUMENT, "workers", __LINE__);
    expect_config_error(ti, tl, "\"prefetch\": 0", THRESHER_INVALID_ARGUMENT, "prefetch",
                        __LINE__);
    expect_config_error(ti, tl, "\"seed\": -1", THRESHER_INVALID_ARGUMENT, "seed", __LINE__);
    expect_config_error(ti, tl, "\"shuffle\": 1", THRESHER_INVALID_ARGUMENT, "shuffle", __LINE__);
    expect_config_error(ti, tl, "\"policy\": {\"kind\": \"random\", \"prune\": 1.5}",
                        THRESHER_INVALID_ARGUMENT, "prune", __LINE__);
    expect_config_error(ti, tl, "\"policy\": {\"kind\": \"random\", \"prune\": -0.1}",
                        THRESHER_INVALID_ARGUMENT, "prune", __LINE__);
    expect_config_error(ti, tl, "\"policy\": {\"kind\": \"random\", \"period\": 0}",
                        THRESHER_INVALID_ARGUMENT, "period", __LINE__);
    expect_config_error(ti, tl, "\"policy\": {\"kind\": \"nope\"}", THRESHER_INVALID_ARGUMENT,
                        "nope", __LINE__);
    expect_config_error(ti, tl, "\"transform\": {\"layout\": \"chw\"}",
                        THRESHER_INVALID_ARGUMENT, "layout", __LINE__);
    expect_config_error(ti, tl, "\"transform\": {\"dtype\": \"f64\"}", THRESHER_INVALID_ARGUMENT,
                        "dtype", __LINE__);
    expect_config_error(ti, tl,
                        "\"transform\": {\"dtype\": \"u8\", "
                        "\"normalize\": {\"mean\": [0.5], \"std\": [0.5]}}",
                        THRESHER_INVALID_ARGUMENT, "normalize", __LINE__);
    expect_config_error(ti, tl,
                        "\"transform\": {\"dtype\": \"f32\", "
                        "\"normalize\": {\"mean\": [0.5], \"std\": [0.0]}}",
                        THRESHER_INVALID_ARGUMENT, "std", __LINE__);
    /* one channel: three means do not fit */
    expect_config_error(ti, tl,
                        "\"transform\": {\"dtype\": \"f32\", \"normalize\": "
                        "{\"mean\": [0.5, 0.5, 0.5], \"std\": [1, 1, 1]}}",
                        THRESHER_INVALID_ARGUMENT, "normalize", __LINE__);

    /* a missing file is THRESHER_IO naming the path */
    snprintf(path, sizeof path, "%s.does-not-exist", test_images);
    expect_config_error(path, tl, "", THRESHER_IO, path, __LINE__);
    snprintf(path, sizeof path, "%s.does-not-exist", test_labels);
    expect_config_error(ti, path, "", THRESHER_IO, path, __LINE__);
    /* images and labels of different sizes: the labels' path is named */
    expect_config_error(ti, train_labels, "", THRESHER_FORMAT, train_labels, __LINE__);
}

static void test_format_errors(void) {
    char dir[] = "/tmp/thresher-abi-test-XXXXXX";
    char truncated[1024], garbage[1024], bad_gz[1024];
    blob img;
    static const char not_idx[] = "this is not an IDX file, just some text\n";
    static const unsigned char bad_gzip[] = {0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5};

    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(truncated, sizeof truncated, "%s/truncated-images-idx3-ubyte", dir);
    snprintf(garbage, sizeof garbage, "%s/garbage", dir);
    snprintf(bad_gz, sizeof bad_gz, "%s/bad.gz", dir);

    /* The header promises 10000 images; the file holds 10 and a bit. */
    img = read_file(test_images);
    write_file(truncated, img.bytes, IMG_HEADER + 10 * PIXELS + 100);
    free(img.bytes);
    expect_config_error(truncated, test_labels, "", THRESHER_FORMAT, truncated, __LINE__);
    expect_config_error(truncated, test_labels, "", THRESHER_FORMAT, "truncated", __LINE__);

    write_file(garbage, not_idx, sizeof not_idx - 1);
    expect_config_error(garbage, test_labels, "", THRESHER_FORMAT, garbage, __LINE__);
    expect_config_error(test_images, garbage, "", THRESHER_FORMAT, garbage, __LINE__);
    write_file(garbage, not_idx, 2); /* shorter than any header */
    expect_config_error(garbage, test_labels, "", THRESHER_FORMAT, garbage, __LINE__);

    write_file(bad_gz, bad_gzip, sizeof bad_gzip);
    expect_config_error(bad_gz, test_labels, "", THRESHER_FORMAT, "gzip", __LINE__);

    /* A labels file (1 dimension) given as images. */
    expect_config_error(test_labels, test_labels, "", THRESHER_FORMAT, test_labels, __LINE__);

    CHECK(unlink(truncated) == 0);
    CHECK(unlink(garbage) == 0);
    CHECK(unlink(bad_gz) == 0);
    CHECK(rmdir(dir) == 0);
}

/* ---- feedback ----------------------------------------------------------------------------- */

static void expect_feedback_error(thresher_loader *l, const thresher_feedback *fb,
                                  const char *needle, int line) {
    check_status_impl(thresher_loader_feedback(l, fb), THRESHER_INVALID_ARGUMENT, needle,
                      "thresher_loader_feedback", __FILE__, line);
}

static void test_feedback_errors(void) {
    thresher_loader *l = open_loader(train_images, train_labels, "\"batch_size\": 64");
    uint64_t ids[3] = {5, 7, 9}, dup[3] = {5, 7, 5}, far[2] = {60000, 3}, last[1] = {59999};
    float loss[3] = {1.0f, 2.0f, 3.0f}, nan_loss[3] = {1.0f, NAN, 3.0f};
    float inf_loss[3] = {INFINITY, 2.0f, 3.0f}, neg[3] = {0.5f, -1.0f, 0.5f};
    float emb[6] = {1, 2, 3, 4, 5, 6}, nan_emb[6] = {1, 2, 3, 4, NAN, 6};
    uint8_t correct[3] = {1, 0, 1}, bad_correct[3] = {1, 0, 3};
    thresher_feedback fb, ok;
    if (l == NULL) return;

    memset(&ok, 0, sizeof ok);
    ok.len = 3;
    ok.ids = ids;
    ok.loss = loss;

    fb = ok;
    fb.loss = nan_loss;
    expect_feedback_error(l, &fb, "loss[1]", __LINE__);
    fb = ok;
    fb.loss = inf_loss;
    expect_feedback_error(l, &fb, "loss[0]", __LINE__);
    fb = ok;
    fb.ids = far;
    fb.len = 2;
    expect_feedback_error(l, &fb, "ids[0]", __LINE__);
    expect_feedback_error(l, &fb, "60000", __LINE__);
    fb = ok;
    fb.ids = NULL;
    expect_feedback_error(l, &fb, "ids", __LINE__);
    fb = ok;
    fb.loss = NULL;
    expect_feedback_error(l, &fb, "loss", __LINE__);
    fb = ok;
    fb.ids = dup;
    expect_feedback_error(l, &fb, "ids[0]", __LINE__);
    expect_feedback_error(l, &fb, "ids[2]", __LINE__);
    fb = ok;
    fb.embedding = emb;
    fb.embedding_dim = 0;
    expect_feedback_error(l, &fb, "embedding_dim", __LINE__);
    fb = ok;
    fb.embedding_dim = 2; /* but no embedding */
    expect_feedback_error(l, &fb, "embedding", __LINE__);
    fb = ok;
    fb.embedding = nan_emb;
    fb.embedding_dim = 2;
    expect_feedback_error(l, &fb, "embedding[4]", __LINE__);
    fb = ok;
    fb.grad_norm = neg;
    expect_feedback_error(l, &fb, "grad_norm[1]", __LINE__);
    fb = ok;
    fb.el2n = neg;
    expect_feedback_error(l, &fb, "el2n[1]", __LINE__);
    fb = ok;
    fb.correct = bad_correct;
    expect_feedback_error(l, &fb, "correct[2]", __LINE__);

    /* Valid calls: the minimum, everything at once, the last id, and an empty call. */
    CHECK_OK(thresher_loader_feedback(l, &ok));
    fb = ok;
    fb.grad_norm = loss;
    fb.el2n = loss;
    fb.correct = correct;
    fb.embedding = emb;
    fb.embedding_dim = 2;
    CHECK_OK(thresher_loader_feedback(l, &fb));
    fb = ok;
    fb.ids = last;
    fb.len = 1;
    CHECK_OK(thresher_loader_feedback(l, &fb));
    memset(&fb, 0, sizeof fb);
    CHECK_OK(thresher_loader_feedback(l, &fb));
    thresher_loader_free(l);
}

/* ---- one full epoch against the raw files ------------------------------------------------- */

static void test_epoch_pixels_and_labels(void) {
    blob img = read_file(train_images), lab = read_file(train_labels);
    thresher_loader *l;
    thresher_epoch_info info;
    thresher_batch *b;
    thresher_status st;
    unsigned char *seen;
    size_t n, i, batches = 0, samples = 0, bad_pixels = 0, bad_labels = 0, bad_weights = 0;
    size_t bad_ids = 0, bad_shapes = 0, bad_feedback = 0;
    int finished = 0;

    CHECK(img.size >= IMG_HEADER && be32(img.bytes) == 0x803);
    CHECK(lab.size >= LAB_HEADER && be32(lab.bytes) == 0x801);
    n = be32(lab.bytes + 4);
    CHECK(n == 60000);
    CHECK(be32(img.bytes + 4) == n && be32(img.bytes + 8) == ROWS && be32(img.bytes + 12) == COLS);
    CHECK(img.size == IMG_HEADER + n * PIXELS && lab.size == LAB_HEADER + n);

    l = open_loader(train_images, train_labels,
                    "\"transform\": {\"dtype\": \"u8\"}, \"shuffle\": true, "
                    "\"policy\": {\"kind\": \"full\"}, \"workers\": 2, \"batch_size\": 100");
    seen = calloc(n, 1);
    if (l == NULL || seen == NULL) goto out;

    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 0);
    CHECK(info.batches == 600);
    CHECK(info.samples == 60000);
    CHECK(info.dataset_len == 60000);
    CHECK(info.prune_fraction == 0.0);

    for (;;) {
        const uint64_t *ids;
        const int64_t *labels;
        const float *weights;
        thresher_tensor t;
        thresher_feedback fb;
        float loss[100];
        size_t len;
        b = NULL;
        st = thresher_loader_next(l, &b);
        if (st == THRESHER_END_OF_EPOCH) {
            CHECK(b == NULL);
            finished = 1;
            break;
        }
        CHECK_STATUS(st, THRESHER_OK, NULL);
        if (st != THRESHER_OK || b == NULL) break;
        batches++;
        len = thresher_batch_len(b);
        ids = thresher_batch_ids(b);
        labels = thresher_batch_labels(b);
        weights = thresher_batch_weights(b);
        CHECK_OK(thresher_batch_data(b, &t));
        if (len != 100 || ids == NULL || labels == NULL || weights == NULL ||
            t.dtype != THRESHER_U8 || t.ndim != 4 || t.shape[0] != (int64_t)len ||
            t.shape[1] != 1 || t.shape[2] != ROWS || t.shape[3] != COLS || t.data == NULL ||
            (uintptr_t)t.data % 64 != 0) {
            bad_shapes++;
            thresher_batch_release(b);
            continue;
        }
        for (i = 0; i < len; i++) {
            uint64_t id = ids[i];
            const unsigned char *pixels = (const unsigned char *)t.data + i * PIXELS;
            if (id >= n || seen[id]) {
                bad_ids++;
                continue;
            }
            seen[id] = 1;
            if (memcmp(pixels, img.bytes + IMG_HEADER + id * PIXELS, PIXELS) != 0) bad_pixels++;
            if (labels[i] != (int64_t)lab.bytes[LAB_HEADER + id]) bad_labels++;
            if (weights[i] != 1.0f) bad_weights++;
            loss[i] = (float)labels[i] * 0.1f + 0.5f;
        }
        samples += len;
        /* Valid feedback for the whole batch. */
        memset(&fb, 0, sizeof fb);
        fb.len = len;
        fb.ids = ids;
        fb.loss = loss;
        if (thresher_loader_feedback(l, &fb) != THRESHER_OK) bad_feedback++;
        thresher_batch_release(b);
    }
    CHECK(finished);
    CHECK(bad_shapes == 0);
    CHECK(bad_ids == 0);
    CHECK(bad_pixels == 0);
    CHECK(bad_labels == 0);
    CHECK(bad_weights == 0);
    CHECK(bad_feedback == 0);
    CHECK(batches == info.batches);
    CHECK(samples == info.samples);
    for (i = 0; i < n && seen[i]; i++) {
    }
    CHECK(i == n); /* every id exactly once */

    /* The plan of epoch 1 is made now; the epoch-0 stream is over. */
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 1);
    CHECK(info.batches == 600 && info.samples == 60000);

out:
    thresher_loader_free(l);
    free(seen);
    free(img.bytes);
    free(lab.bytes);
}

/* ---- f32 output --------------------------------------------------------------------------- */

/* The first batch of a t10k loader with `extra` keys, compared to f(pixel). */
static void check_first_batch_f32(const char *extra, float mean, float std, int nhwc) {
    blob img = read_file(test_images);
    thresher_loader *l = open_loader(test_images, test_labels, extra);
    thresher_batch *b = NULL;
    thresher_tensor t;
    size_t i, j, len, bad = 0;
    const uint64_t *ids;
    if (l == NULL) goto out;
    CHECK_OK(thresher_loader_next(l, &b));
    if (b == NULL) goto out;
    len = thresher_batch_len(b);
    ids = thresher_batch_ids(b);
    CHECK(len == 256);
    CHECK_OK(thresher_batch_data(b, &t));
    CHECK(t.dtype == THRESHER_F32 && t.ndim == 4 && t.shape[0] == (int64_t)len);
    if (nhwc)
        CHECK(t.shape[1] == ROWS && t.shape[2] == COLS && t.shape[3] == 1);
    else
        CHECK(t.shape[1] == 1 && t.shape[2] == ROWS && t.shape[3] == COLS);
    CHECK((uintptr_t)t.data % 64 == 0);
    if (t.dtype == THRESHER_F32 && tensor_bytes(&t) == len * PIXELS * sizeof(float)) {
        const float *x = t.data;
        for (i = 0; i < len; i++) {
            const unsigned char *px = img.bytes + IMG_HEADER + ids[i] * PIXELS;
            for (j = 0; j < PIXELS; j++) {
                float want = ((float)px[j] / 255.0f - mean) / std;
                if (fabsf(x[i * PIXELS + j] - want) > 1e-6f) bad++;
            }
        }
        CHECK(bad == 0);
    }
    thresher_batch_release(b);
out:
    thresher_loader_free(l);
    free(img.bytes);
}

static void test_f32(void) {
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\", "
                          "\"normalize\": {\"mean\": [0.5], \"std\": [0.25]}}",
                          0.5f, 0.25f, 0);
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\"}", 0.0f, 1.0f, 0);
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\", \"layout\": \"nhwc\"}", 0.0f,
                          1.0f, 1);
}

/* ---- random pruning ----------------------------------------------------------------------- */

static void test_random_pruning(void) {
    thresher_loader *l = open_loader(
        test_images, test_labels,
        "\"policy\": {\"kind\": \"random\", \"prune\": 0.3, \"rescale\": true}");
    thresher_epoch_info info;
    thresher_batch *b;
    thresher_status st;
    unsigned char seen[10000];
    size_t i, samples = 0, distinct = 0, dups = 0, bad_weights = 0, batches = 0, last_len = 0;
    const float want = (float)(1.0 / (1.0 - 0.3));
    if (l == NULL) return;
    memset(seen, 0, sizeof seen);
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 0);
    CHECK(info.samples == 7000);
    CHECK(info.dataset_len == 10000);
    CHECK(fabs(info.prune_fraction - 0.3) < 1e-9);
    CHECK(info.batches == (7000 + 255) / 256);
    while ((st = thresher_loader_next(l, &b)) == THRESHER_OK) {
        const uint64_t *ids = thresher_batch_ids(b);
        const float *w = thresher_batch_weights(b);
        size_t len = thresher_batch_len(b);
        for (i = 0; i < len; i++) {
            if (ids[i] >= 10000) {
                dups++;
                continue;
            }
            if (seen[ids[i]]) dups++;
            else distinct++;
            seen[ids[i]] = 1;
            if (fabsf(w[i] - want) > 1e-6f) bad_weights++;
        }
        samples += len;
        batches++;
        last_len = len;
        thresher_batch_release(b);
    }
    CHECK(st == THRESHER_END_OF_EPOCH);
    CHECK(samples == 7000);
    CHECK(distinct == 7000);
    CHECK(dups == 0);
    CHECK(bad_weights == 0);
    CHECK(batches == info.batches);
    CHECK(last_len == 7000 - 27 * 256);
    thresher_loader_free(l);
}

/* drop_last cuts the short batch off. */
static void test_drop_last(void) {
    thresher_loader *l = open_loader(test_images, test_labels,
                                     "\"batch_size\": 3000, \"drop_last\": true, \"prefetch\": 1");
    thresher_epoch_info info;
    thresher_batch *b;
    size_t samples = 0, batches = 0;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.batches == 3 && info.samples == 9000);
    while (thresher_loader_next(l, &b) == THRESHER_OK) {
        CHECK(thresher_batch_len(b) == 3000);
        samples += thresher_batch_len(b);
        batches++;
        thresher_batch_release(b);
    }
    CHECK(batches == 3 && samples == 9000);
    thresher_loader_free(l);
}

/* ---- determinism across thread counts ----------------------------------------------------- */

/* Two loaders that differ only in their thread count deliver the same bytes in the same order,
 * epoch after epoch. */
static void test_determinism(void) {
    static const char *cfg1 = "\"seed\": 42, \"workers\": 1, \"batch_size\": 128, "
                              "\"policy\": {\"kind\": \"random\", \"prune\": 0.5}";
    static const char *cfg4 = "\"seed\": 42, \"workers\": 4, \"batch_size\": 128, "
                              "\"policy\": {\"kind\": \"random\", \"prune\": 0.5}";
    thresher_loader *a = open_loader(test_images, test_labels, cfg1);
    thresher_loader *c = open_loader(test_images, test_labels, cfg4);
    uint64_t *first_ids = calloc(5000, sizeof *first_ids);
    int epoch;
    size_t same_as_first = 0;
    if (a == NULL || c == NULL || first_ids == NULL) goto out;
    for (epoch = 0; epoch < 2; epoch++) {
        size_t samples = 0, mismatches = 0;
        thresher_status sa, sc;
        thresher_epoch_info ia, ic;
        CHECK_OK(thresher_loader_epoch_info(a, &ia));
        CHECK_OK(thresher_loader_epoch_info(c, &ic));
        CHECK(ia.epoch == (uint64_t)epoch && ic.epoch == (uint64_t)epoch);
        CHECK(ia.samples == 5000 && ic.samples == 5000 && ia.batches == ic.batches);
        for (;;) {
            thresher_batch *ba = NULL, *bc = NULL;
            thresher_tensor ta, tc;
            size_t len;
            sa = thresher_loader_next(a, &ba);
            sc = thresher_loader_next(c, &bc);
            if (sa != THRESHER_OK || sc != THRESHER_OK) {
                thresher_batch_release(ba);
                thresher_batch_release(bc);
                break;
            }
            len = thresher_batch_len(ba);
            CHECK_OK(thresher_batch_data(ba, &ta));
            CHECK_OK(thresher_batch_data(bc, &tc));
            if (len != thresher_batch_len(bc) || samples + len > 5000 ||
                memcmp(thresher_batch_ids(ba), thresher_batch_ids(bc), len * 8) != 0 ||
                memcmp(thresher_batch_labels(ba), thresher_batch_labels(bc), len * 8) != 0 ||
                memcmp(thresher_batch_weights(ba), thresher_batch_weights(bc), len * 4) != 0 ||
                tensor_bytes(&ta) != tensor_bytes(&tc) ||
                memcmp(ta.data, tc.data, tensor_bytes(&ta)) != 0) {
                mismatches++;
            } else if (epoch == 0) {
                memcpy(first_ids + samples, thresher_batch_ids(ba), len * 8);
            } else {
                const uint64_t *ids = thresher_batch_ids(ba);
                size_t i;
                for (i = 0; i < len; i++) same_as_first += first_ids[samples + i] == ids[i];
            }
            samples += len;
            thresher_batch_release(ba);
            thresher_batch_release(bc);
        }
        CHECK(sa == THRESHER_END_OF_EPOCH && sc == THRESHER_END_OF_EPOCH);
        CHECK(mismatches == 0);
        CHECK(samples == 5000);
    }
    /* Each epoch draws (and shuffles) anew. */
    CHECK(same_as_first < 5000);
out:
    thresher_loader_free(a);
    thresher_loader_free(c);
    free(first_ids);
}

/* ---- lending: batches outlive their loader ------------------------------------------------ */

static void test_lending(void) {
    blob img = read_file(test_images), lab = read_file(test_labels);
    thresher_loader *l = open_loader(test_images, test_labels,
                                     "\"transform\": {\"dtype\": \"u8\"}, \"batch_size\": 100, "
                                     "\"workers\": 3, \"prefetch\": 8");
    thresher_batch *b1 = NULL, *b2 = NULL, *b3 = NULL;
    thresher_batch *held[2];
    int k;
    if (l == NULL) goto out;
    CHECK_OK(thresher_loader_next(l, &b1));
    CHECK_OK(thresher_loader_next(l, &b2));
    CHECK_OK(thresher_loader_next(l, &b3));
    thresher_batch_release(b3); /* back to the pool while the loader lives */
    /* Mid-epoch, with workers busy prefetching and two batches lent out. */
    thresher_loader_free(l);
    held[0] = b1;
    held[1] = b2;
    for (k = 0; k < 2; k++) {
        thresher_tensor t;
        const uint64_t *ids = thresher_batch_ids(held[k]);
        const int64_t *labels = thresher_batch_labels(held[k]);
        size_t i, len = thresher_batch_len(held[k]), bad = 0;
        CHECK(len == 100);
        CHECK(ids != NULL && labels != NULL && thresher_batch_weights(held[k]) != NULL);
        CHECK_OK(thresher_batch_data(held[k], &t));
        CHECK(t.dtype == THRESHER_U8 && t.shape[0] == 100);
        if (ids == NULL || labels == NULL || t.data == NULL) continue;
        for (i = 0; i < len; i++) {
            if (ids[i] >= 10000 ||
                memcmp((const unsigned char *)t.data + i * PIXELS,
                       img.bytes + IMG_HEADER + ids[i] * PIXELS, PIXELS) != 0 ||
                labels[i] != lab.bytes[LAB_HEADER + ids[i]])
                bad++;
        }
        CHECK(bad == 0);
    }
    thresher_batch_release(b1);
    thresher_batch_release(b2);
out:
    free(img.bytes);
    free(lab.bytes);
}

/* Freeing a loader that was never read from, and one at the end of an epoch. */
static void test_free_states(void) {
    thresher_loader *l = open_loader(test_images, test_labels, "\"workers\": 8");
    thresher_batch *b;
    thresher_loader_free(l);
    l = open_loader(test_images, test_labels, "\"batch_size\": 10000");
    if (l == NULL) return;
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    CHECK_STATUS(thresher_loader_next(l, &b), THRESHER_END_OF_EPOCH, NULL);
    thresher_loader_free(l);
}

/* ---- epoch boundaries --------------------------------------------------------------------- */

static void test_after_end_of_epoch(void) {
    thresher_loader *l = open_loader(test_images, test_labels, "\"batch_size\": 5000");
    static char untouched;
    thresher_batch *b;
    thresher_epoch_info info;
    int i;
    if (l == NULL) return;
    for (i = 0; i < 2; i++) {
        b = NULL;
        CHECK_OK(thresher_loader_next(l, &b));
        CHECK(thresher_batch_len(b) == 5000);
        thresher_batch_release(b);
    }
    b = (thresher_batch *)(void *)&untouched;
    CHECK_STATUS(thresher_loader_next(l, &b), THRESHER_END_OF_EPOCH, NULL);
    CHECK(b == NULL);
    /* The call after END_OF_EPOCH starts epoch 1. */
    b = NULL;
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK(b != NULL && thresher_batch_len(b) == 5000);
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 1 && info.batches == 2 && info.samples == 10000);
    thresher_batch_release(b);
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    CHECK_STATUS(thresher_loader_next(l, &b), THRESHER_END_OF_EPOCH, NULL);
    /* thresher_loader_epoch_info right after END_OF_EPOCH fixes epoch 2's plan; next delivers it
     * (and does not skip to epoch 3). */
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 2);
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 2);
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 2);
    thresher_batch_release(b);
    thresher_loader_free(l);
}

/* ---- thresher_loader_report --------------------------------------------------------------- */

static void test_report(void) {
    thresher_loader *l = open_loader(
        test_images, test_labels,
        "\"seed\": 5, \"policy\": {\"kind\": \"random\", \"prune\": 0.3, \"rescale\": true}");
    thresher_epoch_report r, before;
    thresher_epoch_info info;
    thresher_batch *b;
    size_t delivered = 0;
    int epoch;
    if (l == NULL) return;
    memset(&r, 0xab, sizeof r);
    before = r;
    CHECK_STATUS(thresher_loader_report(NULL, &r), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK(memcmp(&r, &before, sizeof r) == 0);
    CHECK_STATUS(thresher_loader_report(l, NULL), THRESHER_INVALID_ARGUMENT, "out");

    /* Before the first batch: the plan is made, nothing delivered. */
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 0 && r.batches == (7000 + 255) / 256 && r.delivered == 0);
    for (epoch = 0; epoch < 2; epoch++) {
        delivered = 0;
        while (thresher_loader_next(l, &b) == THRESHER_OK) {
            delivered++;
            if (delivered == 3) {
                /* Mid-epoch: the report counts what was delivered so far. */
                CHECK_OK(thresher_loader_report(l, &r));
                CHECK(r.epoch == (uint64_t)epoch && r.delivered == 3);
            }
            thresher_batch_release(b);
        }
        /* After END_OF_EPOCH the report describes the epoch that ended. */
        CHECK_OK(thresher_loader_report(l, &r));
        CHECK(r.epoch == (uint64_t)epoch);
        CHECK(r.samples == 7000);
        CHECK(r.dataset_len == 10000);
        CHECK(fabs(r.prune_fraction - 0.3) < 1e-9);
        /* Cumulative over epochs 0..=epoch: 30% of the visits each epoch. */
        CHECK(fabs(r.saved_fraction - 0.3) < 1e-9);
        /* Every kept sample carries 1/(1-0.3). */
        CHECK(fabs(r.mean_weight - 1.0 / 0.7) < 1e-5);
        CHECK(r.batches == (7000 + 255) / 256 && r.delivered == r.batches);
        CHECK(delivered == r.batches);
        CHECK(r.consumer_wait_s >= 0.0 && r.worker_busy_s >= 0.0);
        /* The report never begins an epoch: asking twice gives the same epoch. */
        CHECK_OK(thresher_loader_report(l, &r));
        CHECK(r.epoch == (uint64_t)epoch);
    }
    /* thresher_loader_epoch_info does begin epoch 2; the report follows it. */
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 2);
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 2 && r.delivered == 0);
    thresher_loader_free(l);

    /* Without rescaling the kept samples weigh 1. */
    l = open_loader(test_images, test_labels,
                    "\"batch_size\": 1000, \"policy\": {\"kind\": \"random\", \"prune\": 0.5}");
    if (l == NULL) return;
    while (thresher_loader_next(l, &b) == THRESHER_OK) thresher_batch_release(b);
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.samples == 5000 && fabs(r.mean_weight - 1.0) < 1e-9);
    CHECK(fabs(r.saved_fraction - 0.5) < 1e-9);
    thresher_loader_free(l);
}

/* ---- thresher_loader_save_scores and thresher_loader_save_state --------------------------- */

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

static void test_save_scores(void) {
    char dir[] = "/tmp/thresher-abi-scores-XXXXXX";
    char path[1024], missing_dir[1024], under_file[1100];
    thresher_loader *l;
    thresher_batch *b;
    thresher_feedback fb;
    float loss[256];
    size_t i;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/scores.thsc", dir);
    snprintf(missing_dir, sizeof missing_dir, "%s/no-such-dir/scores.thsc", dir);
    l = open_loader(test_images, test_labels, "\"policy\": {\"kind\": \"full\"}");
    if (l == NULL) goto out;
    /* Some feedback so the file holds something. */
    CHECK_OK(thresher_loader_next(l, &b));
    for (i = 0; i < thresher_batch_len(b); i++) loss[i] = (float)i * 0.01f;
    memset(&fb, 0, sizeof fb);
    fb.len = thresher_batch_len(b);
    fb.ids = thresher_batch_ids(b);
    fb.loss = loss;
    CHECK_OK(thresher_loader_feedback(l, &fb));
    thresher_batch_release(b);

    CHECK_OK(thresher_loader_save_scores(l, path));
    CHECK(file_exists(path));
    /* Overwriting an existing file is fine (atomic rename). */
    CHECK_OK(thresher_loader_save_scores(l, path));
    CHECK_STATUS(thresher_loader_save_scores(l, NULL), THRESHER_INVALID_ARGUMENT, "path");
    CHECK_STATUS(thresher_loader_save_scores(NULL, path), THRESHER_INVALID_ARGUMENT, "loader");
    /* A directory that does not exist: THRESHER_IO naming the path; nothing is created. */
    CHECK_STATUS(thresher_loader_save_scores(l, missing_dir), THRESHER_IO, missing_dir);
    CHECK(!file_exists(missing_dir));
    /* The same for checkpoints. */
    CHECK_STATUS(thresher_loader_save_state(l, NULL), THRESHER_INVALID_ARGUMENT, "path");
    CHECK_STATUS(thresher_loader_save_state(NULL, path), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_STATUS(thresher_loader_save_state(l, missing_dir), THRESHER_IO, missing_dir);
    /* A "directory" that is a regular file (ENOTDIR): unwritable even for root, which
     * permission bits would not stop. */
    snprintf(under_file, sizeof under_file, "%s/scores", path);
    CHECK_STATUS(thresher_loader_save_scores(l, under_file), THRESHER_IO, under_file);
    CHECK_STATUS(thresher_loader_save_state(l, under_file), THRESHER_IO, under_file);
    thresher_loader_free(l);
    CHECK(unlink(path) == 0);
out:
    CHECK(rmdir(dir) == 0); /* empty: no temporary file was left behind */
}

/* Feedback for a whole batch: a loss that depends on the sample only, so two loaders fed the
 * same batches book the same scores. */
static void feed_batch(thresher_loader *l, thresher_batch *b) {
    float loss[500];
    size_t i, len = thresher_batch_len(b);
    const uint64_t *ids = thresher_batch_ids(b);
    thresher_feedback fb;
    if (len > 500) len = 500;
    for (i = 0; i < len; i++) loss[i] = (float)((ids[i] * 2654435761u) % 1000) / 250.0f;
    memset(&fb, 0, sizeof fb);
    fb.len = len;
    fb.ids = ids;
    fb.loss = loss;
    CHECK_OK(thresher_loader_feedback(l, &fb));
}

/* 1 when two batches have the same ids, labels, weights and bytes. */
static int same_batch(thresher_batch *a, thresher_batch *b) {
    thresher_tensor ta, tb;
    size_t len = thresher_batch_len(a);
    if (len == 0 || len != thresher_batch_len(b)) return 0;
    if (thresher_batch_data(a, &ta) != THRESHER_OK || thresher_batch_data(b, &tb) != THRESHER_OK)
        return 0;
    return memcmp(thresher_batch_ids(a), thresher_batch_ids(b), len * 8) == 0 &&
           memcmp(thresher_batch_labels(a), thresher_batch_labels(b), len * 8) == 0 &&
           memcmp(thresher_batch_weights(a), thresher_batch_weights(b), len * 4) == 0 &&
           tensor_bytes(&ta) == tensor_bytes(&tb) &&
           memcmp(ta.data, tb.data, tensor_bytes(&ta)) == 0;
}

static void test_state_resume(void) {
    /* InfoBatch: the next plans depend on the ScoreBook, so the checkpoint must carry it. */
    static const char *keys = "\"seed\": 9, \"batch_size\": 500, \"workers\": 2, "
                              "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, "
                              "\"epochs\": 4}";
    char dir[] = "/tmp/thresher-abi-state-XXXXXX";
    char path[1024], extra[2048], quoted[1100];
    thresher_loader *a, *c = NULL;
    thresher_batch *ba, *bc;
    thresher_epoch_info ia, ic;
    thresher_status sa, sc;
    size_t compared = 0, mismatches = 0, expected = 0;
    int k;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/loader.ckpt", dir);
    a = open_loader(test_images, test_labels, keys);
    if (a == NULL) goto out;
    /* Epoch 0 whole with feedback, then 4 batches into epoch 1 (a pruned epoch). */
    while (thresher_loader_next(a, &ba) == THRESHER_OK) {
        feed_batch(a, ba);
        thresher_batch_release(ba);
    }
    for (k = 0; k < 4; k++) {
        CHECK_OK(thresher_loader_next(a, &ba));
        feed_batch(a, ba);
        thresher_batch_release(ba);
    }
    CHECK_OK(thresher_loader_save_state(a, path));
    CHECK(file_exists(path));

    json_string(quoted, sizeof quoted, path);
    snprintf(extra, sizeof extra, "%s, \"resume_from\": %s", keys, quoted);
    c = open_loader(test_images, test_labels, extra);
    if (c == NULL) goto out;
    CHECK_OK(thresher_loader_epoch_info(a, &ia));
    CHECK_OK(thresher_loader_epoch_info(c, &ic));
    CHECK(ia.epoch == 1 && ic.epoch == 1);
    CHECK(ia.samples < 10000 && ia.samples == ic.samples && ia.batches == ic.batches);
    /* The rest of epoch 1, then all of epoch 2 (planned from the fed-back scores): the same
     * batches from both, byte for byte. */
    expected = ia.batches - 4;
    for (k = 0; k < 2; k++) {
        if (k == 1) {
            /* Epoch 2's plan, fixed now in both loaders from the same ScoreBook. */
            CHECK_OK(thresher_loader_epoch_info(a, &ia));
            CHECK_OK(thresher_loader_epoch_info(c, &ic));
            CHECK(ia.epoch == 2 && ic.epoch == 2);
            CHECK(ia.samples == ic.samples && ia.batches == ic.batches);
            expected += ia.batches;
        }
        for (;;) {
            sa = thresher_loader_next(a, &ba);
            sc = thresher_loader_next(c, &bc);
            if (sa != THRESHER_OK || sc != THRESHER_OK) break;
            if (same_batch(ba, bc)) compared++;
            else mismatches++;
            feed_batch(a, ba);
            feed_batch(c, bc);
            thresher_batch_release(ba);
            thresher_batch_release(bc);
        }
        CHECK(sa == THRESHER_END_OF_EPOCH && sc == THRESHER_END_OF_EPOCH);
        if (sa == THRESHER_OK) thresher_batch_release(ba);
        if (sc == THRESHER_OK) thresher_batch_release(bc);
    }
    CHECK(mismatches == 0);
    CHECK(compared == expected);
    CHECK_OK(thresher_loader_epoch_info(a, &ia));
    CHECK_OK(thresher_loader_epoch_info(c, &ic));
    CHECK(ia.epoch == 3 && ic.epoch == 3 && ia.samples == ic.samples);

    /* A checkpoint is refused by a loader whose config does not match it. */
    snprintf(extra, sizeof extra,
             "\"seed\": 10, \"batch_size\": 500, \"resume_from\": %s, "
             "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": 4}",
             quoted);
    {
        char cfg[8192];
        thresher_loader *bad = NULL;
        thresher_status st;
        make_config(cfg, sizeof cfg, test_images, test_labels, extra);
        st = thresher_loader_new(cfg, &bad);
        CHECK(st != THRESHER_OK);
        CHECK(bad == NULL);
        thresher_loader_free(bad);
    }
    /* A checkpoint that does not exist: THRESHER_IO naming it. */
    snprintf(extra, sizeof extra, "%s, \"resume_from\": \"%s/nope.ckpt\"", keys, dir);
    {
        char needle[1100];
        snprintf(needle, sizeof needle, "%s/nope.ckpt", dir);
        expect_config_error(test_images, test_labels, extra, THRESHER_IO, needle, __LINE__);
    }
out:
    thresher_loader_free(a);
    thresher_loader_free(c);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

/* ---- thresher_batch_dlpack ---------------------------------------------------------------- */

/* DLPack 0.8 (dlpack.h, ABI unchanged since 0.6), declared here as a consumer declares it:
 * thresher.h deliberately does not, so it never clashes with a program's own dlpack.h. */
typedef struct {
    int32_t device_type; /* DLDeviceType: kDLCPU = 1 */
    int32_t device_id;
} DLDevice;
typedef struct {
    uint8_t code; /* DLDataTypeCode: kDLInt = 0, kDLUInt = 1, kDLFloat = 2 */
    uint8_t bits;
    uint16_t lanes;
} DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

/* Checks one exported tensor's description; returns it (NULL when the export failed). */
static DLManagedTensor *export_field(thresher_batch *b, int32_t field, const void *want_data,
                                     int32_t ndim, const int64_t *shape, uint8_t code,
                                     uint8_t bits) {
    void *out = NULL;
    DLManagedTensor *m;
    int32_t d;
    CHECK_OK(thresher_batch_dlpack(b, field, &out));
    if (out == NULL) return NULL;
    m = out;
    CHECK(m->deleter != NULL);
    CHECK(m->dl_tensor.data == want_data);
    CHECK(m->dl_tensor.device.device_type == 1 && m->dl_tensor.device.device_id == 0);
    CHECK(m->dl_tensor.ndim == ndim);
    CHECK(m->dl_tensor.dtype.code == code && m->dl_tensor.dtype.bits == bits &&
          m->dl_tensor.dtype.lanes == 1);
    CHECK(m->dl_tensor.shape != NULL);
    for (d = 0; d < ndim && m->dl_tensor.shape != NULL; d++)
        CHECK(m->dl_tensor.shape[d] == shape[d]);
    CHECK(m->dl_tensor.strides == NULL); /* compact row-major */
    CHECK(m->dl_tensor.byte_offset == 0);
    return m;
}

static void check_dlpack(const char *extra, uint8_t data_code, uint8_t data_bits) {
    thresher_loader *l = open_loader(test_images, test_labels, extra);
    thresher_batch *b = NULL;
    thresher_tensor t;
    DLManagedTensor *m[4] = {NULL, NULL, NULL, NULL};
    uint64_t ids[100];
    int64_t labels[100];
    float weights[100];
    unsigned char *bytes = NULL;
    size_t len, nbytes = 0;
    int64_t n;
    void *out;
    static char untouched;
    int k;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_next(l, &b));
    if (b == NULL) goto out;
    len = thresher_batch_len(b);
    CHECK(len == 100);
    if (len != 100) goto out;
    n = (int64_t)len;
    CHECK_OK(thresher_batch_data(b, &t));
    nbytes = tensor_bytes(&t);
    bytes = malloc(nbytes);
    if (bytes == NULL) goto out;
    memcpy(bytes, t.data, nbytes);
    memcpy(ids, thresher_batch_ids(b), sizeof ids);
    memcpy(labels, thresher_batch_labels(b), sizeof labels);
    memcpy(weights, thresher_batch_weights(b), sizeof weights);

    m[THRESHER_FIELD_DATA] =
        export_field(b, THRESHER_FIELD_DATA, t.data, 4, t.shape, data_code, data_bits);
    m[THRESHER_FIELD_LABELS] =
        export_field(b, THRESHER_FIELD_LABELS, thresher_batch_labels(b), 1, &n, 0, 64);
    m[THRESHER_FIELD_IDS] =
        export_field(b, THRESHER_FIELD_IDS, thresher_batch_ids(b), 1, &n, 1, 64);
    m[THRESHER_FIELD_WEIGHTS] =
        export_field(b, THRESHER_FIELD_WEIGHTS, thresher_batch_weights(b), 1, &n, 2, 32);

    /* Bad arguments: INVALID_ARGUMENT and *out untouched. */
    out = &untouched;
    CHECK_STATUS(thresher_batch_dlpack(b, 7, &out), THRESHER_INVALID_ARGUMENT, "field");
    CHECK_STATUS(thresher_batch_dlpack(b, -1, &out), THRESHER_INVALID_ARGUMENT, "field");
    CHECK_STATUS(thresher_batch_dlpack(b, 4, &out), THRESHER_INVALID_ARGUMENT, "4");
    CHECK_STATUS(thresher_batch_dlpack(NULL, THRESHER_FIELD_DATA, &out),
                 THRESHER_INVALID_ARGUMENT, "batch");
    CHECK(out == &untouched);
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_DATA, NULL), THRESHER_INVALID_ARGUMENT,
                 "out");

    /* The tensors hold the batch: release the handle and free the loader (mid-epoch, workers
     * running), then read every tensor (ASan flags any freed memory) and delete them. */
    thresher_batch_release(b);
    b = NULL;
    thresher_loader_free(l);
    l = NULL;
    if (m[0] != NULL) CHECK(memcmp(m[0]->dl_tensor.data, bytes, nbytes) == 0);
    if (m[1] != NULL) CHECK(memcmp(m[1]->dl_tensor.data, labels, sizeof labels) == 0);
    if (m[2] != NULL) CHECK(memcmp(m[2]->dl_tensor.data, ids, sizeof ids) == 0);
    if (m[3] != NULL) CHECK(memcmp(m[3]->dl_tensor.data, weights, sizeof weights) == 0);
    /* Deleted in an order unlike the export order; the last deleter frees the batch
     * (LeakSanitizer checks that it does). */
    for (k = 3; k >= 0; k -= 2)
        if (m[k] != NULL) m[k]->deleter(m[k]);
    for (k = 2; k >= 0; k -= 2)
        if (m[k] != NULL) m[k]->deleter(m[k]);
out:
    thresher_batch_release(b);
    thresher_loader_free(l);
    free(bytes);
}

/* The deprecated names of ABI 2 (thresher_loader_epoch, thresher_loader_state_save) still link
 * and do what their new names do. */
static void test_deprecated_aliases(void) {
    char dir[] = "/tmp/thresher-abi-alias-XXXXXX";
    char path[1024];
    thresher_loader *l;
    thresher_epoch_info old_info, new_info;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/alias.ckpt", dir);
    l = open_loader(test_images, test_labels, "\"batch_size\": 1000");
    if (l == NULL) return;
    CHECK_OK(thresher_loader_epoch(l, &old_info));
    CHECK_OK(thresher_loader_epoch_info(l, &new_info));
    CHECK(old_info.epoch == new_info.epoch && old_info.batches == new_info.batches &&
          old_info.samples == new_info.samples && new_info.batches == 10);
    CHECK_STATUS(thresher_loader_epoch(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    CHECK_OK(thresher_loader_state_save(l, path));
    CHECK(file_exists(path));
    CHECK_STATUS(thresher_loader_state_save(l, NULL), THRESHER_INVALID_ARGUMENT, "path");
    thresher_loader_free(l);
    remove(path);
    rmdir(dir);
}

static void test_dlpack(void) {
    /* f32 data: kDLFloat 32; u8 data: kDLUInt 8 (labels kDLInt 64, ids kDLUInt 64, weights
     * kDLFloat 32 either way). */
    check_dlpack("\"batch_size\": 100, \"workers\": 3, \"prefetch\": 6", 2, 32);
    check_dlpack("\"batch_size\": 100, \"transform\": {\"dtype\": \"u8\", \"layout\": \"nhwc\"},"
                 " \"policy\": {\"kind\": \"random\", \"prune\": 0.2, \"rescale\": true}",
                 1, 8);
}

/* ---- ranks -------------------------------------------------------------------------------- */

/* Two ranks (world_size 2) over MNIST's 10,000 test images with InfoBatch, fed the gathered
 * feedback of both every step (what a trainer's all-gather does): equal batch counts, full
 * batches with the padding at the end (weight 0), disjoint shards covering the plan, equal
 * digests after every epoch and byte-identical checkpoints. */
static void test_ranks(void) {
    char dir[] = "/tmp/thresher-c-ranks-XXXXXX", path[2][1100], extra[512];
    thresher_loader *l[2] = {NULL, NULL};
    thresher_batch *b[2];
    thresher_epoch_info info[2];
    thresher_digest d[2];
    thresher_feedback fb;
    static uint64_t ids[512];
    static float loss[512];
    static unsigned char seen[10000];
    size_t r, i, epoch;
    blob ck[2];
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    for (r = 0; r < 2; r++) {
        snprintf(extra, sizeof extra,
                 "\"batch_size\": 256, \"seed\": 3, \"rank\": %u, \"world_size\": 2, "
                 "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": 4}",
                 (unsigned)r);
        l[r] = open_loader(test_images, test_labels, extra);
        snprintf(path[r], sizeof path[r], "%s/rank%u", dir, (unsigned)r);
    }
    if (l[0] == NULL || l[1] == NULL) goto out;
    CHECK_STATUS(thresher_loader_digest(NULL, &d[0]), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_STATUS(thresher_loader_digest(l[0], NULL), THRESHER_INVALID_ARGUMENT, "out");
    for (epoch = 0; epoch < 3; epoch++) {
        size_t steps = 0, real = 0, padding = 0;
        memset(seen, 0, sizeof seen);
        for (r = 0; r < 2; r++) CHECK_OK(thresher_loader_epoch_info(l[r], &info[r]));
        CHECK(info[0].batches == info[1].batches && info[0].samples == info[1].samples);
        CHECK(info[0].batches == (info[0].samples + 511) / 512);
        for (;;) {
            size_t n = 0;
            thresher_status s0 = thresher_loader_next(l[0], &b[0]);
            thresher_status s1 = thresher_loader_next(l[1], &b[1]);
            CHECK(s0 == s1);
            if (s0 != THRESHER_OK) {
                CHECK(s0 == THRESHER_END_OF_EPOCH);
                break;
            }
            steps++;
            for (r = 0; r < 2; r++) {
                size_t len = thresher_batch_len(b[r]), pad = thresher_batch_padding(b[r]);
                const uint64_t *bi = thresher_batch_ids(b[r]);
                const float *w = thresher_batch_weights(b[r]);
                CHECK(len == 256);
                for (i = 0; i < len; i++) {
                    if (i < len - pad) {
                        CHECK(bi[i] < 10000 && !seen[bi[i]]);
                        if (bi[i] < 10000) seen[bi[i]] = 1;
                        ids[n] = bi[i];
                        loss[n] = (float)((bi[i] * 2654435761u + epoch) % 1000) / 250.0f;
                        n++;
                    } else {
                        CHECK(w[i] == 0.0f);
                    }
                }
                real += len - pad;
                padding += pad;
            }
            memset(&fb, 0, sizeof fb);
            fb.len = n;
            fb.ids = ids;
            fb.loss = loss;
            for (r = 0; r < 2; r++) CHECK_OK(thresher_loader_feedback(l[r], &fb));
            if (epoch == 1 && steps == 3) {
                /* Mid-epoch checkpoints: the state is rank-independent, so the bytes agree. */
                for (r = 0; r < 2; r++) CHECK_OK(thresher_loader_save_state(l[r], path[r]));
                ck[0] = read_file(path[0]);
                ck[1] = read_file(path[1]);
                CHECK(ck[0].size == ck[1].size && ck[0].size > 0 &&
                      memcmp(ck[0].bytes, ck[1].bytes, ck[0].size) == 0);
                free(ck[0].bytes);
                free(ck[1].bytes);
                for (r = 0; r < 2; r++) CHECK(unlink(path[r]) == 0);
            }
            for (r = 0; r < 2; r++) thresher_batch_release(b[r]);
        }
        CHECK(steps == info[0].batches);
        CHECK(real == info[0].samples);
        CHECK(padding == steps * 512 - real);
        for (r = 0; r < 2; r++) CHECK_OK(thresher_loader_digest(l[r], &d[r]));
        CHECK(d[0].epoch == epoch && d[0].plan == d[1].plan && d[0].scores == d[1].scores);
        if (epoch == 1) CHECK(info[0].samples < 10000); /* InfoBatch pruned */
    }
out:
    for (r = 0; r < 2; r++) thresher_loader_free(l[r]);
    CHECK(rmdir(dir) == 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MNIST_DIR (raw IDX files)\n", argv[0]);
        return 2;
    }
    if (strlen(argv[1]) > 900) {
        fprintf(stderr, "%s: MNIST_DIR is too long\n", argv[0]);
        return 2;
    }
    snprintf(train_images, sizeof train_images, "%s/train-images-idx3-ubyte", argv[1]);
    snprintf(train_labels, sizeof train_labels, "%s/train-labels-idx1-ubyte", argv[1]);
    snprintf(test_images, sizeof test_images, "%s/t10k-images-idx3-ubyte", argv[1]);
    snprintf(test_labels, sizeof test_labels, "%s/t10k-labels-idx1-ubyte", argv[1]);

    test_versions(); /* first: nothing may have failed on this thread yet */
    test_last_error();
    test_threads();
    test_null_arguments();
    test_config_errors();
    test_format_errors();
    test_feedback_errors();
    test_epoch_pixels_and_labels();
    test_f32();
    test_random_pruning();
    test_drop_last();
    test_determinism();
    test_lending();
    test_free_states();
    test_after_end_of_epoch();
    test_report();
    test_save_scores();
    test_state_resume();
    test_deprecated_aliases();
    test_dlpack();
    test_ranks();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
