/*
 * abi_state.c — what a loader writes and restores: score files, checkpoints resumed byte for
 * byte, the deprecated names of ABI 2, and two ranks agreeing on digests and checkpoints.
 */
#include "abi_test.h"

/* ---- thresher_loader_save_scores and thresher_loader_save_state --------------------------- */

void test_save_scores(void) {
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

void test_state_resume(void) {
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

/* The deprecated names of ABI 2 (thresher_loader_epoch, thresher_loader_state_save) still link
 * and do what their new names do. */
void test_deprecated_aliases(void) {
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
    if (l == NULL) goto out;
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
out:
    rmdir(dir);
}

/* ---- ranks -------------------------------------------------------------------------------- */

/* Two ranks (world_size 2) over MNIST's 10,000 test images with InfoBatch, fed the gathered
 * feedback of both every step (what a trainer's all-gather does): equal batch counts, full
 * batches with the padding at the end (weight 0), disjoint shards covering the plan, equal
 * digests after every epoch and byte-identical checkpoints. */
void test_ranks(void) {
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
