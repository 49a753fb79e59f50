/*
 * abi_epochs.c — batches and epochs: one full epoch checked against the raw IDX files, f32
 * output, random pruning, drop_last, determinism across thread counts, batches lent past their
 * loader, epoch boundaries and thresher_loader_report.
 */
#include "abi_test.h"

/* ---- one full epoch against the raw files ------------------------------------------------- */

void test_epoch_pixels_and_labels(void) {
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

void test_f32(void) {
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\", "
                          "\"normalize\": {\"mean\": [0.5], \"std\": [0.25]}}",
                          0.5f, 0.25f, 0);
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\"}", 0.0f, 1.0f, 0);
    check_first_batch_f32("\"transform\": {\"dtype\": \"f32\", \"layout\": \"nhwc\"}", 0.0f,
                          1.0f, 1);
}

/* ---- random pruning ----------------------------------------------------------------------- */

void test_random_pruning(void) {
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
void test_drop_last(void) {
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
void test_determinism(void) {
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

void test_lending(void) {
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
void test_free_states(void) {
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

void test_after_end_of_epoch(void) {
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

void test_report(void) {
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
