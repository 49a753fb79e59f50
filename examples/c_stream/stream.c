/*
 * stream.c — stream Fashion-MNIST through thresher from C, with random dynamic pruning.
 *
 * Usage: stream DIR EPOCHS   (DIR holds train-{images-idx3,labels-idx1}-ubyte.gz)
 * Each epoch: print the plan, consume every batch, send a (synthetic) per-sample loss back as
 * a trainer would, and report throughput. No model: the point is the loader's API and speed.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include "thresher.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prints what failed and why (thresher keeps the reason per thread), then exits. */
static void die(const char *what, thresher_status st) {
    char msg[1024];
    thresher_last_error(msg, sizeof msg);
    fprintf(stderr, "%s failed (status %d): %s\n", what, (int)st, msg);
    exit(1);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    char config[2048];
    thresher_loader *loader = NULL;
    thresher_status st;
    float *loss = NULL;
    int epochs, e;

    if (argc != 3 || (epochs = atoi(argv[2])) <= 0) {
        fprintf(stderr, "usage: %s FASHION_MNIST_DIR EPOCHS\n", argv[0]);
        return 2;
    }
    /* thresher reads the .gz files itself. Prune 30% of the data each epoch, at random. */
    snprintf(config, sizeof config,
             "{\"source\": {\"kind\": \"idx\","
             " \"images\": \"%s/train-images-idx3-ubyte.gz\","
             " \"labels\": \"%s/train-labels-idx1-ubyte.gz\"},"
             " \"batch_size\": 256, \"workers\": 2,"
             " \"transform\": {\"dtype\": \"f32\", \"layout\": \"nchw\","
             "  \"normalize\": {\"mean\": [0.286], \"std\": [0.353]}},"
             " \"policy\": {\"kind\": \"random\", \"prune\": 0.3}}",
             argv[1], argv[1]);
    if ((st = thresher_loader_new(config, &loader)) != THRESHER_OK) die("thresher_loader_new", st);
    printf("thresher %s (ABI %u)\n", thresher_version(), thresher_abi_version());

    for (e = 0; e < epochs; e++) {
        thresher_epoch_info plan;
        thresher_batch *batch;
        uint64_t delivered = 0;
        double checksum = 0.0, start, secs;

        /* The plan is fixed before the first batch, so a trainer can size its LR schedule. */
        if ((st = thresher_loader_epoch_info(loader, &plan)) != THRESHER_OK)
            die("thresher_loader_epoch_info", st);
        printf("epoch %" PRIu64 ": %" PRIu64 " batches, %" PRIu64 " of %" PRIu64
               " samples (pruned %.1f%%)\n",
               plan.epoch, plan.batches, plan.samples, plan.dataset_len,
               100.0 * plan.prune_fraction);

        start = now_seconds();
        while ((st = thresher_loader_next(loader, &batch)) == THRESHER_OK) {
            size_t n = thresher_batch_len(batch), per, i, j;
            const int64_t *labels = thresher_batch_labels(batch);
            thresher_tensor t;
            thresher_feedback fb = {0};
            const float *x;

            if ((st = thresher_batch_data(batch, &t)) != THRESHER_OK)
                die("thresher_batch_data", st);
            per = (size_t)(t.shape[1] * t.shape[2] * t.shape[3]);
            loss = realloc(loss, n * sizeof *loss); /* grows to one batch, then stays */
            if (loss == NULL) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            /* Touch every float (as a model would) and make up a finite, deterministic loss. */
            x = t.data;
            for (i = 0; i < n; i++) {
                double s = 0.0;
                for (j = 0; j < per; j++) s += x[i * per + j];
                checksum += s;
                loss[i] = (float)(fabs(s / (double)per) + 0.1 * (double)labels[i]);
            }
            /* Feedback goes into the ScoreBook that plans the next epoch. */
            fb.len = n;
            fb.ids = thresher_batch_ids(batch);
            fb.loss = loss;
            if ((st = thresher_loader_feedback(loader, &fb)) != THRESHER_OK)
                die("thresher_loader_feedback", st);
            delivered += n;
            thresher_batch_release(batch); /* its buffer goes back to the pool */
        }
        if (st != THRESHER_END_OF_EPOCH) die("thresher_loader_next", st);
        secs = now_seconds() - start;
        printf("  delivered %" PRIu64 " samples in %.3f s (%.0f samples/s), checksum %.3f\n",
               delivered, secs, (double)delivered / secs, checksum);
    }
    free(loss);
    thresher_loader_free(loader);
    return 0;
}
