/*
 * abi_index_epochs.c — index mode over several epochs: checkpoints at the consumer's position
 * (thresher_loader_save_state_at) resumed like an uninterrupted loader; two ranks with equal
 * batch counts, disjoint shares and agreeing digests; InfoBatch fed back, epoch by epoch. The
 * index helpers (open_index, feed, drain, plan_holds, even_low) are abi_index.c's.
 */
#include "abi_test.h"

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
 * anneal 0.875 of 4 epochs prunes epochs before 3 (epoch 0 has no feedback: full). With
 * "plan_ahead": false every batch's loss is in when the next plan is made (by default the last
 * batch's would count one plan later, and its ids would still be unseen in epoch 1). */
void test_index_infobatch(void) {
    thresher_loader *l = open_index(
        1000, "\"batch_size\": 100, \"seed\": 4, \"plan_ahead\": false, "
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

/* ---- the run's batch count before training ----------------------------------------------- */

/* InfoBatch under a budget of half the run, 6 epochs over 1000 ids: epoch 0 is full; the
 * annealing epoch 5 is not paid in full (that would leave epochs 1-4 250 each, below the
 * (1 - r)·N = 500 a pruned epoch keeps without a budget), so epochs 1-5 keep 400 each;
 * total_batches says so before the first batch and equals what next delivers. A score-based
 * policy without a budget is refused (THRESHER_STATE). */
void test_index_total_batches(void) {
    thresher_loader *l = open_index(1000, "\"batch_size\": 100, \"seed\": 3, \"policy\": "
                                          "{\"kind\": \"infobatch\", \"budget\": 0.5, "
                                          "\"epochs\": 6}");
    uint64_t total = 0, untouched = 77;
    size_t delivered = 0;
    int epoch;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_total_batches(l, &total));
    CHECK(total == 10 + 5 * 4);
    for (epoch = 0; epoch < 6; epoch++) delivered += drain(l);
    CHECK(delivered == total);
    CHECK_STATUS(thresher_loader_total_batches(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    CHECK_STATUS(thresher_loader_total_batches(NULL, &total), THRESHER_INVALID_ARGUMENT,
                 "loader");
    thresher_loader_free(l);
    l = open_index(1000, "\"policy\": {\"kind\": \"el2n\"}");
    if (l == NULL) return;
    CHECK_STATUS(thresher_loader_total_batches(l, &untouched), THRESHER_STATE, "policy.budget");
    CHECK(untouched == 77);
    thresher_loader_free(l);
}

/* The report's unlearnable fraction: NaN before any correctness report and for policies
 * without the noise guard; the share of kept samples wrong at their last two reports (both
 * epochs' reports in: "plan_ahead": false). */
void test_index_unlearnable_fraction(void) {
    thresher_loader *l = open_index(1000, "\"batch_size\": 100, \"seed\": 3, "
                                          "\"plan_ahead\": false, \"policy\": "
                                          "{\"kind\": \"ucb\", \"prune\": 0.5, "
                                          "\"noise_guard\": false}");
    double f = 7;
    int epoch;
    thresher_epoch_info info;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_unlearnable_fraction(l, &f));
    CHECK(f != f);
    for (epoch = 0; epoch < 2; epoch++) {
        thresher_batch *b;
        while (thresher_loader_next(l, &b) == THRESHER_OK) {
            static float loss[100];
            static uint8_t correct[100];
            const uint64_t *ids = thresher_batch_ids(b);
            size_t i, n = thresher_batch_len(b);
            thresher_feedback fb;
            for (i = 0; i < n; i++) {
                loss[i] = ids[i] < 300 ? 5.0f : 1.0f;
                correct[i] = ids[i] >= 300;
            }
            memset(&fb, 0, sizeof fb);
            fb.len = n;
            fb.ids = ids;
            fb.loss = loss;
            fb.correct = correct;
            CHECK_OK(thresher_loader_feedback(l, &fb));
            thresher_batch_release(b);
        }
    }
    CHECK_OK(thresher_loader_epoch_info(l, &info)); /* plans epoch 2 */
    CHECK_OK(thresher_loader_unlearnable_fraction(l, &f));
    CHECK(f > 0.599 && f < 0.601); /* the 300 hardest of the 500 kept */
    CHECK_STATUS(thresher_loader_unlearnable_fraction(l, NULL), THRESHER_INVALID_ARGUMENT, "out");
    thresher_loader_free(l);
}
