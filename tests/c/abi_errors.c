/*
 * abi_errors.c — versions, thresher_last_error (also per thread), NULL arguments, and every
 * configuration, file and feedback error a caller can provoke: each with its status and a
 * message naming the cause.
 */
#include "abi_test.h"

/* ---- versions ----------------------------------------------------------------------------- */

void test_versions(void) {
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
    CHECK(THRESHER_U8 == 0 && THRESHER_F32 == 1 && THRESHER_I8 == 2 && THRESHER_U16 == 3);
    CHECK(THRESHER_I16 == 4 && THRESHER_U32 == 5 && THRESHER_I32 == 6 && THRESHER_I64 == 7);
    CHECK(THRESHER_F16 == 8 && THRESHER_BF16 == 9 && THRESHER_F64 == 10);
    CHECK(THRESHER_MAX_NDIM == 8 && THRESHER_ABI_VERSION == 3);
    CHECK(THRESHER_FIELD_TARGETS == 4 && THRESHER_FIELD_MASK == 5);
}

/* ---- thresher_last_error ------------------------------------------------------------------ */

void test_last_error(void) {
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

void test_threads(void) {
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

void test_null_arguments(void) {
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

void test_config_errors(void) {
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

void test_format_errors(void) {
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

void test_feedback_errors(void) {
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
