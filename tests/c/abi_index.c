/*
 * abi_index.c — index mode (source {"kind": "index", "len": N}): batches of ids, weights and
 * padding without data; the whole-epoch view (thresher_loader_epoch_plan and
 * thresher_epoch_plan_*) against what thresher_loader_next hands out; ending an epoch early
 * (thresher_loader_end_epoch); advancing without building batches (thresher_loader_advance);
 * NULL arguments. The helpers the index tests share are here too (declared in abi_test.h);
 * index mode over several epochs (checkpoints, ranks, InfoBatch) is abi_index_epochs.c.
 */
#include "abi_test.h"

/* An index-mode loader over `len` ids with `extra` keys ("" or more top-level keys). */
thresher_loader *open_index(size_t len, const char *extra) {
    char cfg[4096];
    thresher_loader *l = NULL;
    snprintf(cfg, sizeof cfg, "{\"source\": {\"kind\": \"index\", \"len\": %lu}%s%s}",
             (unsigned long)len, extra[0] ? ", " : "", extra);
    CHECK_OK(thresher_loader_new(cfg, &l));
    CHECK(l != NULL);
    return l;
}

/* thresher_loader_new on `cfg` must fail with `want` naming `needle`; no loader is made. */
static void expect_index_error(const char *cfg, thresher_status want, const char *needle,
                               int line) {
    static char untouched;
    thresher_loader *l = (thresher_loader *)(void *)&untouched;
    check_status_impl(thresher_loader_new(cfg, &l), want, needle, cfg, __FILE__, line);
    check_impl(l == (thresher_loader *)(void *)&untouched, "*out untouched on failure", __FILE__,
               line);
    if (l != (thresher_loader *)(void *)&untouched) thresher_loader_free(l);
}

/* A loss that depends on the sample id only: below the mean for even ids, above for odd. */
float even_low(uint64_t id) { return id % 2 == 0 ? 0.1f : 1.0f; }

/* Feeds back the real (non-padding) samples of `b` with even_low. */
void feed(thresher_loader *l, thresher_batch *b) {
    static float loss[1024];
    thresher_feedback fb;
    size_t i, n = thresher_batch_len(b) - thresher_batch_padding(b);
    const uint64_t *ids = thresher_batch_ids(b);
    if (n > 1024) n = 1024;
    for (i = 0; i < n; i++) loss[i] = even_low(ids[i]);
    memset(&fb, 0, sizeof fb);
    fb.len = n;
    fb.ids = ids;
    fb.loss = loss;
    CHECK_OK(thresher_loader_feedback(l, &fb));
}

/* Runs the rest of the epoch under way with feedback; returns the batches taken. */
size_t drain(thresher_loader *l) {
    thresher_batch *b;
    thresher_status s;
    size_t n = 0;
    while ((s = thresher_loader_next(l, &b)) == THRESHER_OK) {
        feed(l, b);
        thresher_batch_release(b);
        n++;
    }
    CHECK(s == THRESHER_END_OF_EPOCH);
    CHECK(b == NULL);
    return n;
}

/* ---- batches without data ---------------------------------------------------------------- */

void test_index_no_data(void) {
    thresher_loader *l = open_index(1000, "\"batch_size\": 128, \"seed\": 1");
    thresher_batch *b = NULL;
    thresher_tensor t;
    thresher_epoch_info info;
    void *dl;
    DLManagedTensor *m;
    size_t i, total = 0, batches = 0;
    static unsigned char seen[1000];
    thresher_status s;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 0 && info.samples == 1000 && info.dataset_len == 1000 &&
          info.batches == 8 && info.prune_fraction == 0.0);

    CHECK_OK(thresher_loader_next(l, &b));
    CHECK(b != NULL);
    if (b == NULL) goto out;
    CHECK(thresher_batch_has_data(b) == 0);
    CHECK(thresher_batch_len(b) == 128);
    CHECK(thresher_batch_padding(b) == 0);
    CHECK(thresher_batch_ids(b) != NULL && thresher_batch_weights(b) != NULL);
    CHECK(thresher_batch_labels(b) == NULL);
    /* The data calls: THRESHER_STATE saying why, and *out untouched. */
    memset(&t, 0xAB, sizeof t);
    CHECK_STATUS(thresher_batch_data(b, &t), THRESHER_STATE, "index mode");
    CHECK(((unsigned char *)&t)[0] == 0xAB && t.ndim == 0xABABABABu);
    dl = (void *)&t;
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_DATA, &dl), THRESHER_STATE, "no data");
    CHECK(dl == (void *)&t);
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_LABELS, &dl), THRESHER_STATE,
                 "index mode");
    CHECK(dl == (void *)&t);
    CHECK_STATUS(thresher_batch_data(b, NULL), THRESHER_INVALID_ARGUMENT, NULL);
    /* Ids and weights export as with data, and outlive the batch. */
    dl = NULL;
    CHECK_OK(thresher_batch_dlpack(b, THRESHER_FIELD_IDS, &dl));
    m = (DLManagedTensor *)dl;
    if (m != NULL) {
        const uint64_t *first = thresher_batch_ids(b);
        uint64_t copy0 = first[0];
        CHECK(m->dl_tensor.data == (const void *)first && m->dl_tensor.ndim == 1);
        thresher_batch_release(b);
        b = NULL;
        CHECK(((const uint64_t *)m->dl_tensor.data)[0] == copy0);
        m->deleter(m);
    }
    thresher_batch_release(b);

    /* The whole epoch: every id once, weight 1 (policy full), no padding. */
    memset(seen, 0, sizeof seen);
    total = 128;
    batches = 1;
    while ((s = thresher_loader_next(l, &b)) == THRESHER_OK) {
        const uint64_t *ids = thresher_batch_ids(b);
        const float *w = thresher_batch_weights(b);
        CHECK(thresher_batch_has_data(b) == 0 && thresher_batch_labels(b) == NULL);
        for (i = 0; i < thresher_batch_len(b); i++) {
            CHECK(ids[i] < 1000 && !seen[ids[i]] && w[i] == 1.0f);
            if (ids[i] < 1000) seen[ids[i]] = 1;
        }
        total += thresher_batch_len(b);
        batches++;
        thresher_batch_release(b);
    }
    CHECK(s == THRESHER_END_OF_EPOCH);
    CHECK(total == 1000 && batches == 8);
    for (i = 0, total = 0; i < 1000; i++) total += seen[i];
    CHECK(total == 1000 - 128); /* the first batch was not marked */
out:
    thresher_loader_free(l);

    /* The source's own keys. */
    expect_index_error("{\"source\": {\"kind\": \"index\"}}", THRESHER_INVALID_ARGUMENT, "len",
                       __LINE__);
    expect_index_error("{\"source\": {\"kind\": \"index\", \"len\": 0}}",
                       THRESHER_INVALID_ARGUMENT, "source.len", __LINE__);
    expect_index_error("{\"source\": {\"kind\": \"index\", \"len\": 10, \"images\": \"x\"}}",
                       THRESHER_INVALID_ARGUMENT, "images", __LINE__);
}

/* ---- the whole-epoch view ---------------------------------------------------------------- */

/* 1 when the plan's entries [from, from + len) are the batch's ids and weights. */
int plan_holds(const thresher_epoch_plan *p, size_t from, thresher_batch *b) {
    size_t len = thresher_batch_len(b);
    if (from + len > thresher_epoch_plan_len(p)) return 0;
    return memcmp(thresher_epoch_plan_ids(p) + from, thresher_batch_ids(b), len * 8) == 0 &&
           memcmp(thresher_epoch_plan_weights(p) + from, thresher_batch_weights(b), len * 4) ==
               0;
}

/* epoch_plan equals the batches `next` hands out (ids, order, weights, padding), in index mode
 * and with data; it does not move the position, it outlives its loader, and right after the
 * end of an epoch it is the next epoch's. */
void test_index_epoch_plan(void) {
    int mode;
    for (mode = 0; mode < 2; mode++) {
        /* mode 0: index mode; mode 1: the MNIST test set with data and workers. InfoBatch
         * with feedback, so epoch 1's weights are not all 1. */
        static const char *keys = "\"batch_size\": 300, \"seed\": 5, "
                                  "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, "
                                  "\"epochs\": 4}";
        thresher_loader *l = mode == 0 ? open_index(10000, keys)
                                       : open_loader(test_images, test_labels, keys);
        thresher_epoch_plan *p = NULL, *mid = NULL, *next_epoch = NULL;
        thresher_batch *b;
        thresher_epoch_info info;
        thresher_status s;
        size_t at = 0, k = 0, mismatches = 0;
        int epoch;
        if (l == NULL) return;
        for (epoch = 0; epoch < 2; epoch++) {
            CHECK_OK(thresher_loader_epoch_plan(l, &p));
            CHECK_OK(thresher_loader_epoch_info(l, &info));
            CHECK(p != NULL);
            if (p == NULL) break;
            CHECK(thresher_epoch_plan_epoch(p) == (uint64_t)epoch);
            CHECK(thresher_epoch_plan_len(p) == info.samples);
            CHECK(thresher_epoch_plan_batches(p) == info.batches);
            CHECK(thresher_epoch_plan_padding(p) == 0);
            if (epoch == 1) CHECK(info.samples < 10000);
            at = 0;
            k = 0;
            while ((s = thresher_loader_next(l, &b)) == THRESHER_OK) {
                if (!plan_holds(p, at, b)) mismatches++;
                CHECK(thresher_batch_has_data(b) == (mode == 1));
                at += thresher_batch_len(b);
                k++;
                if (k == 3) {
                    /* Mid-epoch: the same plan from batch 0; the position has not moved. */
                    CHECK_OK(thresher_loader_epoch_plan(l, &mid));
                    CHECK(thresher_epoch_plan_len(mid) == thresher_epoch_plan_len(p) &&
                          memcmp(thresher_epoch_plan_ids(mid), thresher_epoch_plan_ids(p),
                                 thresher_epoch_plan_len(p) * 8) == 0);
                    thresher_epoch_plan_free(mid);
                    mid = NULL;
                }
                feed(l, b);
                thresher_batch_release(b);
            }
            CHECK(s == THRESHER_END_OF_EPOCH);
            CHECK(mismatches == 0);
            CHECK(at == thresher_epoch_plan_len(p) && k == thresher_epoch_plan_batches(p));
            thresher_epoch_plan_free(p);
            p = NULL;
        }
        /* Right after END_OF_EPOCH the plan is epoch 2's, fixed now: next hands out the same. */
        CHECK_OK(thresher_loader_epoch_plan(l, &next_epoch));
        CHECK(thresher_epoch_plan_epoch(next_epoch) == 2);
        CHECK_OK(thresher_loader_next(l, &b));
        CHECK(plan_holds(next_epoch, 0, b));
        thresher_batch_release(b);
        /* The plan outlives its loader. */
        thresher_loader_free(l);
        CHECK(thresher_epoch_plan_len(next_epoch) > 0 &&
              thresher_epoch_plan_ids(next_epoch)[0] < 10000);
        thresher_epoch_plan_free(next_epoch);
    }
}

/* ---- ending an epoch early --------------------------------------------------------------- */

void test_index_end_epoch(void) {
    char dir[] = "/tmp/thresher-abi-end-XXXXXX", report[1100], extra[1400], quoted[1200];
    thresher_loader *l;
    thresher_batch *b;
    thresher_epoch_report r;
    thresher_epoch_info info;
    thresher_epoch_plan *p = NULL;
    blob lines;
    size_t i, newlines = 0;
    int mode;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(report, sizeof report, "%s/report.jsonl", dir);
    json_string(quoted, sizeof quoted, report);
    snprintf(extra, sizeof extra, "\"batch_size\": 100, \"report\": %s", quoted);
    l = open_index(1000, extra);
    if (l == NULL) goto out;
    CHECK_STATUS(thresher_loader_end_epoch(NULL), THRESHER_INVALID_ARGUMENT, "loader");

    /* Two batches of epoch 0, then the rest abandoned. */
    for (i = 0; i < 2; i++) {
        CHECK_OK(thresher_loader_next(l, &b));
        feed(l, b);
        thresher_batch_release(b);
    }
    CHECK_OK(thresher_loader_end_epoch(l));
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 0 && r.delivered == 2 && r.batches == 10);
    /* 200 of 1000 visited: 80% of the sample visits saved. */
    CHECK(fabs(r.saved_fraction - 0.8) < 1e-9);
    CHECK(file_exists(report));
    /* A second end_epoch between epochs is a no-op: the next epoch is 1, not 2. */
    CHECK_OK(thresher_loader_end_epoch(l));
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 1 && info.samples == 1000);
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK_OK(thresher_loader_epoch_plan(l, &p));
    CHECK(thresher_epoch_plan_epoch(p) == 1 && plan_holds(p, 0, b));
    thresher_epoch_plan_free(p);
    thresher_batch_release(b);
    /* Ending after the last batch was handed out but before END_OF_EPOCH: the epoch closes
     * with everything visited, and next begins epoch 2. */
    for (i = 1; i < 10; i++) {
        CHECK_OK(thresher_loader_next(l, &b));
        thresher_batch_release(b);
    }
    CHECK_OK(thresher_loader_end_epoch(l));
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 1 && r.delivered == 10);
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK_OK(thresher_loader_epoch_info(l, &info));
    CHECK(info.epoch == 2);
    thresher_batch_release(b);
    thresher_loader_free(l);
    /* One report line per ended epoch (0 and 1). */
    lines = read_file(report);
    for (i = 0; i < lines.size; i++) newlines += lines.bytes[i] == '\n';
    CHECK(newlines == 2);
    free(lines.bytes);

    /* With data and worker threads prefetching: the same, and the batches in flight are
     * dropped cleanly (ASan/LSan would see a leak). */
    for (mode = 0; mode < 2; mode++) {
        thresher_batch *kept = NULL;
        l = open_loader(test_images, test_labels, "\"batch_size\": 500, \"prefetch\": 4");
        if (l == NULL) break;
        CHECK_OK(thresher_loader_next(l, &kept));
        CHECK_OK(thresher_loader_end_epoch(l));
        CHECK_OK(thresher_loader_report(l, &r));
        CHECK(r.epoch == 0 && r.delivered == 1);
        if (mode == 0) {
            CHECK_OK(thresher_loader_next(l, &b));
            CHECK_OK(thresher_loader_epoch_info(l, &info));
            CHECK(info.epoch == 1 && thresher_batch_has_data(b) == 1);
            thresher_batch_release(b);
        }
        thresher_loader_free(l);
        /* The batch taken before the end stays valid. */
        CHECK(thresher_batch_len(kept) == 500 && thresher_batch_labels(kept)[0] < 10);
        thresher_batch_release(kept);
    }
out:
    unlink(report);
    CHECK(rmdir(dir) == 0);
}

/* ---- advancing without building batches -------------------------------------------------- */

/* A reader of the whole-epoch view counts what it consumed with thresher_loader_advance: the
 * report and a checkpoint follow it, next continues after it, and it is refused (changing
 * nothing) past the epoch's end, for a loader with data, and for NULL. */
void test_index_advance(void) {
    static const char *keys = "\"batch_size\": 100, \"seed\": 9";
    char dir[] = "/tmp/thresher-abi-advance-XXXXXX", path[1100], quoted[1200], extra[1400];
    thresher_loader *l = NULL, *c = NULL, *data = NULL;
    thresher_epoch_plan *p = NULL;
    thresher_epoch_report r;
    thresher_batch *b = NULL;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/advance.ckpt", dir);
    l = open_index(1000, keys);
    if (l == NULL) goto out;
    CHECK_STATUS(thresher_loader_advance(NULL, 1), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_OK(thresher_loader_epoch_plan(l, &p));
    if (p == NULL) goto out;
    CHECK(thresher_epoch_plan_batches(p) == 10);
    CHECK_OK(thresher_loader_advance(l, 0));
    CHECK_OK(thresher_loader_advance(l, 4));
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 0 && r.delivered == 4 && r.batches == 10);
    /* Past the epoch's end: refused, the position unchanged. */
    CHECK_STATUS(thresher_loader_advance(l, 7), THRESHER_INVALID_ARGUMENT, "batches = 7");
    CHECK_STATUS(thresher_loader_advance(l, UINT64_MAX), THRESHER_INVALID_ARGUMENT, NULL);
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.delivered == 4);
    /* A checkpoint taken now resumes at batch 4; next continues there too. */
    CHECK_OK(thresher_loader_save_state(l, path));
    json_string(quoted, sizeof quoted, path);
    snprintf(extra, sizeof extra, "%s, \"resume_from\": %s", keys, quoted);
    c = open_index(1000, extra);
    if (c != NULL) {
        CHECK_OK(thresher_loader_next(c, &b));
        CHECK(b != NULL && plan_holds(p, 400, b));
        thresher_batch_release(b);
    }
    CHECK_OK(thresher_loader_next(l, &b));
    CHECK(b != NULL && plan_holds(p, 400, b));
    thresher_batch_release(b);
    /* The rest at once: the epoch ends with every sample visited. */
    CHECK_OK(thresher_loader_advance(l, 5));
    CHECK_STATUS(thresher_loader_next(l, &b), THRESHER_END_OF_EPOCH, NULL);
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 0 && r.delivered == 10 && r.saved_fraction == 0.0);
    /* Between epochs, advancing begins the next one. */
    CHECK_OK(thresher_loader_advance(l, 1));
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.epoch == 1 && r.delivered == 1);
    /* A loader with data takes its batches with next. */
    data = open_loader(test_images, test_labels, "\"batch_size\": 500");
    if (data != NULL)
        CHECK_STATUS(thresher_loader_advance(data, 1), THRESHER_STATE, "index mode");
out:
    thresher_epoch_plan_free(p);
    thresher_loader_free(l);
    thresher_loader_free(c);
    thresher_loader_free(data);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

/* ---- NULL arguments ---------------------------------------------------------------------- */

void test_index_null_arguments(void) {
    static char untouched;
    thresher_epoch_plan *p = (thresher_epoch_plan *)(void *)&untouched;
    thresher_loader *l = open_index(10, "");
    CHECK(thresher_batch_has_data(NULL) == 0);
    CHECK(thresher_epoch_plan_len(NULL) == 0);
    CHECK(thresher_epoch_plan_epoch(NULL) == 0);
    CHECK(thresher_epoch_plan_batches(NULL) == 0);
    CHECK(thresher_epoch_plan_padding(NULL) == 0);
    CHECK(thresher_epoch_plan_ids(NULL) == NULL);
    CHECK(thresher_epoch_plan_weights(NULL) == NULL);
    thresher_epoch_plan_free(NULL);
    CHECK_STATUS(thresher_loader_epoch_plan(NULL, &p), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK(p == (thresher_epoch_plan *)(void *)&untouched);
    CHECK_STATUS(thresher_loader_epoch_plan(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    CHECK_STATUS(thresher_loader_end_epoch(NULL), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_STATUS(thresher_loader_save_state_at(NULL, "/tmp/x", 0), THRESHER_INVALID_ARGUMENT,
                 "loader");
    CHECK_STATUS(thresher_loader_save_state_at(l, NULL, 0), THRESHER_INVALID_ARGUMENT, "path");
    /* A one-batch epoch of 10 ids (batch_size 256 by default). */
    CHECK_OK(thresher_loader_epoch_plan(l, &p));
    CHECK(p != (thresher_epoch_plan *)(void *)&untouched);
    CHECK(thresher_epoch_plan_len(p) == 10 && thresher_epoch_plan_batches(p) == 1);
    thresher_epoch_plan_free(p);
    thresher_loader_free(l);
}
