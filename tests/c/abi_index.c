/*
 * abi_index.c — index mode (source {"kind": "index", "len": N}): batches of ids, weights and
 * padding without data; the whole-epoch view (thresher_loader_epoch_plan and
 * thresher_epoch_plan_*) against what thresher_loader_next hands out; ending an epoch early
 * (thresher_loader_end_epoch); advancing without building batches (thresher_loader_advance);
 * checkpoints at the consumer's position
 * (thresher_loader_save_state_at) resumed like an uninterrupted loader; two ranks; InfoBatch
 * fed back; NULL arguments.
 */
#include "abi_test.h"

/* An index-mode loader over `len` ids with `extra` keys ("" or more top-level keys). */
static thresher_loader *open_index(size_t len, const char *extra) {
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
static float even_low(uint64_t id) { return id % 2 == 0 ? 0.1f : 1.0f; }

/* Feeds back the real (non-padding) samples of `b` with even_low. */
static void feed(thresher_loader *l, thresher_batch *b) {
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
static size_t drain(thresher_loader *l) {
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

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
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
static int plan_holds(const thresher_epoch_plan *p, size_t from, thresher_batch *b) {
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

/* ---- checkpoints at the consumer's position ---------------------------------------------- */

/* 1 when two batches have the same ids, weights and padding. */
static int same_ids(thresher_batch *a, thresher_batch *b) {
    size_t len = thresher_batch_len(a);
    return len > 0 && len == thresher_batch_len(b) &&
           thresher_batch_padding(a) == thresher_batch_padding(b) &&
           memcmp(thresher_batch_ids(a), thresher_batch_ids(b), len * 8) == 0 &&
           memcmp(thresher_batch_weights(a), thresher_batch_weights(b), len * 4) == 0;
}

/* A reader fetched 5 batches of a pruned epoch ahead while the trainer consumed (and fed back)
 * 2: save_state_at(2) resumes at batch 2, and the resumed loader yields what an uninterrupted
 * loader fed the same feedback yields, through the rest of the epoch and the next one. */
void test_index_save_state_at(void) {
    static const char *keys = "\"batch_size\": 100, \"seed\": 7, "
                              "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, "
                              "\"epochs\": 5}";
    char dir[] = "/tmp/thresher-abi-at-XXXXXX";
    char path[1100], full[1100], missing[1100], quoted[1200], extra[2048];
    thresher_loader *a = NULL, *ref = NULL, *c = NULL;
    thresher_batch *ahead[5], *x, *y;
    thresher_epoch_info ia, ic;
    thresher_status sx, sy;
    blob b1, b2;
    size_t k, compared = 0, mismatches = 0, expected = 0;
    int epoch;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/at.ckpt", dir);
    snprintf(full, sizeof full, "%s/full.ckpt", dir);
    snprintf(missing, sizeof missing, "%s/no-such-dir/at.ckpt", dir);
    a = open_index(1000, keys);
    ref = open_index(1000, keys);
    if (a == NULL || ref == NULL) goto out;
    drain(a);
    drain(ref);
    for (k = 0; k < 5; k++) CHECK_OK(thresher_loader_next(a, &ahead[k]));
    for (k = 0; k < 2; k++) feed(a, ahead[k]);
    for (k = 0; k < 2; k++) {
        CHECK_OK(thresher_loader_next(ref, &x));
        CHECK(same_ids(x, ahead[k]));
        feed(ref, x);
        thresher_batch_release(x);
    }
    /* Errors first: nothing is written. */
    CHECK_STATUS(thresher_loader_save_state_at(a, path, 6), THRESHER_INVALID_ARGUMENT,
                 "batches = 6");
    CHECK(!file_exists(path));
    CHECK_STATUS(thresher_loader_save_state_at(NULL, path, 0), THRESHER_INVALID_ARGUMENT,
                 "loader");
    CHECK_STATUS(thresher_loader_save_state_at(a, NULL, 0), THRESHER_INVALID_ARGUMENT, "path");
    CHECK_STATUS(thresher_loader_save_state_at(a, missing, 2), THRESHER_IO, missing);
    /* At the position handed out, it writes what save_state writes. */
    CHECK_OK(thresher_loader_save_state_at(a, path, 5));
    CHECK_OK(thresher_loader_save_state(a, full));
    b1 = read_file(path);
    b2 = read_file(full);
    CHECK(b1.size == b2.size && memcmp(b1.bytes, b2.bytes, b1.size) == 0);
    free(b1.bytes);
    free(b2.bytes);
    /* The trainer's position. */
    CHECK_OK(thresher_loader_save_state_at(a, path, 2));
    json_string(quoted, sizeof quoted, path);
    snprintf(extra, sizeof extra, "%s, \"resume_from\": %s", keys, quoted);
    c = open_index(1000, extra);
    if (c == NULL) goto release;
    CHECK_OK(thresher_loader_epoch_info(c, &ic));
    CHECK_OK(thresher_loader_epoch_info(ref, &ia));
    CHECK(ic.epoch == 1 && ia.epoch == 1 && ic.samples == ia.samples && ia.samples < 1000);
    /* Batches 2, 3 and 4 again, as the reader had them. */
    for (k = 2; k < 5; k++) {
        CHECK_OK(thresher_loader_next(c, &x));
        CHECK(same_ids(x, ahead[k]));
        thresher_batch_release(x);
    }
    thresher_loader_free(c);
    c = open_index(1000, extra);
    if (c == NULL) goto release;
    expected = ia.batches - 2;
    for (epoch = 1; epoch < 3; epoch++) {
        if (epoch == 2) {
            CHECK_OK(thresher_loader_epoch_info(c, &ic));
            CHECK_OK(thresher_loader_epoch_info(ref, &ia));
            CHECK(ic.epoch == 2 && ia.epoch == 2 && ic.samples == ia.samples);
            expected += ia.batches;
        }
        for (;;) {
            sx = thresher_loader_next(c, &x);
            sy = thresher_loader_next(ref, &y);
            if (sx != THRESHER_OK || sy != THRESHER_OK) break;
            if (same_ids(x, y)) compared++;
            else mismatches++;
            feed(c, x);
            feed(ref, y);
            thresher_batch_release(x);
            thresher_batch_release(y);
        }
        CHECK(sx == THRESHER_END_OF_EPOCH && sy == THRESHER_END_OF_EPOCH);
        if (sx == THRESHER_OK) thresher_batch_release(x);
        if (sy == THRESHER_OK) thresher_batch_release(y);
    }
    CHECK(mismatches == 0 && compared == expected);

    /* Between epochs it saves the epoch that just ended: at 0 batches the whole epoch comes
     * again after resuming. */
    drain(a);
    CHECK_OK(thresher_loader_save_state_at(a, path, 0));
    thresher_loader_free(c);
    c = open_index(1000, extra);
    if (c != NULL) {
        CHECK_OK(thresher_loader_epoch_info(c, &ic));
        CHECK_OK(thresher_loader_epoch_info(a, &ia)); /* a makes epoch 2 */
        CHECK(ic.epoch == 1 && ia.epoch == 2);
    }
    /* A loader resumed from a checkpoint written between epochs (ref's, after epoch 3) has
     * begun no epoch yet: THRESHER_STATE, and nothing is written. */
    drain(ref);
    CHECK_OK(thresher_loader_save_state(ref, full));
    thresher_loader_free(c);
    json_string(quoted, sizeof quoted, full);
    snprintf(extra, sizeof extra, "%s, \"resume_from\": %s", keys, quoted);
    c = open_index(1000, extra);
    if (c != NULL) {
        CHECK(unlink(path) == 0);
        CHECK_STATUS(thresher_loader_save_state_at(c, path, 0), THRESHER_STATE, "no epoch");
        CHECK(!file_exists(path));
        CHECK_OK(thresher_loader_epoch_info(c, &ic));
        CHECK(ic.epoch == 4);
        CHECK_OK(thresher_loader_save_state_at(c, path, 0));
    }
release:
    for (k = 0; k < 5; k++) thresher_batch_release(ahead[k]);
out:
    thresher_loader_free(a);
    thresher_loader_free(ref);
    thresher_loader_free(c);
    unlink(path);
    unlink(full);
    CHECK(rmdir(dir) == 0);
}

/* ---- ranks ------------------------------------------------------------------------------- */

/* Two ranks over 1001 ids (odd: the last step is padded): equal batch counts, disjoint shares
 * covering every id once, padding of weight 0 only at the end, plans equal to the batches, and
 * equal digests after each epoch when both get both ranks' feedback. */
void test_index_ranks(void) {
    thresher_loader *l[2] = {NULL, NULL};
    thresher_epoch_plan *p[2] = {NULL, NULL};
    thresher_batch *b[2];
    thresher_epoch_info info[2];
    thresher_digest d[2];
    thresher_feedback fb;
    static unsigned char seen[1001];
    static uint64_t ids[256];
    static float loss[256];
    char extra[256];
    size_t r, i, epoch;
    for (r = 0; r < 2; r++) {
        snprintf(extra, sizeof extra,
                 "\"batch_size\": 64, \"seed\": 2, \"rank\": %u, \"world_size\": 2, "
                 "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": 4}",
                 (unsigned)r);
        l[r] = open_index(1001, extra);
    }
    if (l[0] == NULL || l[1] == NULL) goto out;
    for (epoch = 0; epoch < 3; epoch++) {
        size_t steps = 0, real = 0, padding = 0, at[2] = {0, 0}, covered = 0;
        memset(seen, 0, sizeof seen);
        for (r = 0; r < 2; r++) {
            CHECK_OK(thresher_loader_epoch_info(l[r], &info[r]));
            CHECK_OK(thresher_loader_epoch_plan(l[r], &p[r]));
        }
        CHECK(info[0].batches == info[1].batches && info[0].samples == info[1].samples);
        CHECK(thresher_epoch_plan_batches(p[0]) == thresher_epoch_plan_batches(p[1]));
        CHECK(thresher_epoch_plan_len(p[0]) == thresher_epoch_plan_len(p[1]));
        if (epoch == 1) CHECK(info[0].samples < 1001);
        for (;;) {
            size_t n = 0;
            thresher_status s0 = thresher_loader_next(l[0], &b[0]);
            thresher_status s1 = thresher_loader_next(l[1], &b[1]);
            CHECK(s0 == s1);
            if (s0 != THRESHER_OK || s1 != THRESHER_OK) {
                CHECK(s0 == THRESHER_END_OF_EPOCH);
                if (s0 == THRESHER_OK) thresher_batch_release(b[0]);
                if (s1 == THRESHER_OK) thresher_batch_release(b[1]);
                break;
            }
            steps++;
            for (r = 0; r < 2; r++) {
                size_t len = thresher_batch_len(b[r]), pad = thresher_batch_padding(b[r]);
                const uint64_t *bi = thresher_batch_ids(b[r]);
                const float *w = thresher_batch_weights(b[r]);
                CHECK(len == 64 && thresher_batch_has_data(b[r]) == 0);
                CHECK(plan_holds(p[r], at[r], b[r]));
                at[r] += len;
                for (i = 0; i < len; i++) {
                    if (i < len - pad) {
                        CHECK(bi[i] < 1001 && !seen[bi[i]]);
                        if (bi[i] < 1001) seen[bi[i]] = 1;
                        ids[n] = bi[i];
                        loss[n] = even_low(bi[i]);
                        n++;
                    } else {
                        CHECK(w[i] == 0.0f);
                    }
                }
                real += len - pad;
                padding += pad;
            }
            /* Both ranks' feedback to both (a trainer's all-gather). */
            memset(&fb, 0, sizeof fb);
            fb.len = n;
            fb.ids = ids;
            fb.loss = loss;
            for (r = 0; r < 2; r++) CHECK_OK(thresher_loader_feedback(l[r], &fb));
            for (r = 0; r < 2; r++) thresher_batch_release(b[r]);
        }
        for (i = 0; i < 1001; i++) covered += seen[i];
        CHECK(steps == info[0].batches && real == info[0].samples && covered == real);
        CHECK(padding == steps * 128 - real && padding > 0);
        CHECK(thresher_epoch_plan_padding(p[0]) + thresher_epoch_plan_padding(p[1]) == padding);
        for (r = 0; r < 2; r++) {
            CHECK(at[r] == thresher_epoch_plan_len(p[r]));
            thresher_epoch_plan_free(p[r]);
            p[r] = NULL;
            CHECK_OK(thresher_loader_digest(l[r], &d[r]));
        }
        CHECK(d[0].epoch == epoch && d[0].plan == d[1].plan && d[0].scores == d[1].scores);
    }
out:
    for (r = 0; r < 2; r++) thresher_loader_free(l[r]);
}

/* ---- InfoBatch, fed back ----------------------------------------------------------------- */

/* 1000 ids, loss 0.1 for even ids and 1.0 for odd (mean 0.55): W = the 500 even ids, of which
 * round(0.5 * 500) = 250 are dropped per pruned epoch and the rest weigh 1 / (1 - 0.5) = 2;
 * anneal 0.875 of 4 epochs prunes epochs before 3 (epoch 0 has no feedback: full). */
void test_index_infobatch(void) {
    thresher_loader *l = open_index(
        1000, "\"batch_size\": 100, \"seed\": 4, "
              "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": 4}");
    static const size_t want[5] = {1000, 750, 750, 1000, 1000};
    thresher_epoch_plan *p = NULL;
    thresher_epoch_report r;
    size_t epoch, i;
    if (l == NULL) return;
    for (epoch = 0; epoch < 5; epoch++) {
        size_t odd = 0, even_w2 = 0, even_w1 = 0, other = 0, n, batches;
        const uint64_t *ids;
        const float *w;
        CHECK_OK(thresher_loader_epoch_plan(l, &p));
        n = thresher_epoch_plan_len(p);
        ids = thresher_epoch_plan_ids(p);
        w = thresher_epoch_plan_weights(p);
        CHECK(thresher_epoch_plan_epoch(p) == epoch);
        CHECK(n == want[epoch]);
        CHECK(thresher_epoch_plan_batches(p) == (want[epoch] + 99) / 100);
        for (i = 0; i < n; i++) {
            if (ids[i] % 2 == 1 && w[i] == 1.0f) odd++;
            else if (ids[i] % 2 == 0 && w[i] == 2.0f) even_w2++;
            else if (ids[i] % 2 == 0 && w[i] == 1.0f) even_w1++;
            else other++;
        }
        CHECK(odd == 500 && other == 0);
        if (want[epoch] == 750) CHECK(even_w2 == 250 && even_w1 == 0);
        else CHECK(even_w1 == 500 && even_w2 == 0);
        thresher_epoch_plan_free(p);
        batches = drain(l);
        CHECK(batches == (want[epoch] + 99) / 100);
        CHECK_OK(thresher_loader_report(l, &r));
        CHECK(r.epoch == epoch && r.samples == want[epoch] &&
              fabs(r.prune_fraction - (1.0 - (double)want[epoch] / 1000.0)) < 1e-9);
        if (epoch > 0) CHECK(fabs(r.score_mean - 0.55) < 1e-6);
    }
    thresher_loader_free(l);
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
