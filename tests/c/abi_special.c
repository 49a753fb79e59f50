/*
 * abi_special.c — special files and processes: a FIFO named like an image (an error naming the
 * path and sample id, or a skipped sample; never a blocked worker), a directory link loop,
 * free with batches lent and workers busy, two threads calling next at once, and a child made
 * by fork() using its parent's loader (THRESHER_STATE, and free returns). An alarm turns a
 * hang into a failed run.
 */
#include "abi_test.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* A 2x2 RGB PNG. */
static const unsigned char tiny_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xe4, 0x12, 0x91, 0x63,
    0x60, 0x60, 0x60, 0x62, 0x60, 0x60, 0x60, 0x60, 0x60, 0x00, 0x00, 0x02, 0xe6, 0x00, 0x40, 0x5c,
    0xa5, 0x20, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* root/a/{0,1,2}.png and root/a/1x.png, a FIFO sorted between them (sample 2). */
static void make_folder(char *root, size_t cap, char *fifo, size_t fifo_cap) {
    char path[1200];
    int i;
    snprintf(root, cap, "/tmp/thresher-special-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(path, sizeof path, "%s/a", root);
    if (mkdir(path, 0700) != 0) {
        perror("mkdir");
        exit(2);
    }
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/a/%d.png", root, i);
        write_file(path, tiny_png, sizeof tiny_png);
    }
    snprintf(fifo, fifo_cap, "%s/a/1x.png", root);
    if (mkfifo(fifo, 0600) != 0) {
        perror("mkfifo");
        exit(2);
    }
}

static thresher_loader *open_folder(const char *root, const char *on_error) {
    char config[2048], quoted[1300];
    thresher_loader *l = NULL;
    json_string(quoted, sizeof quoted, root);
    snprintf(config, sizeof config,
             "{\"source\": {\"kind\": \"image_folder\", \"root\": %s}, \"batch_size\": 1,"
             " \"workers\": 2, \"shuffle\": false, \"on_error\": \"%s\","
             " \"transform\": {\"resize\": [2, 2], \"dtype\": \"u8\"}}",
             quoted, on_error);
    CHECK_OK(thresher_loader_new(config, &l));
    return l;
}

/* Takes the rest of the epoch; returns the batches, counting errors in *errors. */
static size_t take_epoch(thresher_loader *l, size_t *errors) {
    size_t batches = 0, guard;
    *errors = 0;
    for (guard = 0; guard < 100; guard++) {
        thresher_batch *b = NULL;
        thresher_status st = thresher_loader_next(l, &b);
        if (st == THRESHER_END_OF_EPOCH) return batches;
        if (st == THRESHER_OK) {
            batches++;
            thresher_batch_release(b);
        } else {
            (*errors)++;
        }
    }
    CHECK(!"the epoch ended");
    return batches;
}

void test_special_fifo_image(void) {
    char root[1100], fifo[1200];
    size_t errors, batches;
    thresher_loader *l;
    thresher_batch *b = NULL;
    thresher_epoch_report r;
    alarm(60);
    make_folder(root, sizeof root, fifo, sizeof fifo);

    /* Default on_error: the batch holding the FIFO is an error naming it and its sample id. */
    l = open_folder(root, "fail");
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    CHECK_STATUS(thresher_loader_next(l, &b), THRESHER_FORMAT, "a FIFO");
    CHECK(strstr(last_error(), "sample 2") != NULL);
    CHECK(strstr(last_error(), fifo) != NULL);
    CHECK(b == NULL);
    batches = take_epoch(l, &errors);
    CHECK(batches == 1 && errors == 0);
    thresher_loader_free(l);

    /* on_error "skip": the sample is left out; next returns. */
    l = open_folder(root, "skip");
    batches = take_epoch(l, &errors);
    CHECK(batches == 3 && errors == 0);
    CHECK_OK(thresher_loader_report(l, &r));
    CHECK(r.skipped == 1);
    /* free with a batch lent and the workers prefetching the next epoch. */
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_loader_free(l);
    CHECK(thresher_batch_len(b) == 1);
    thresher_batch_release(b);
    alarm(0);
}

void test_special_link_loop(void) {
    char root[1100], fifo[1200], link[1300], config[2048], quoted[1300];
    thresher_loader *l = NULL;
    alarm(60);
    make_folder(root, sizeof root, fifo, sizeof fifo);
    snprintf(link, sizeof link, "%s/a/self", root);
    CHECK(symlink(".", link) == 0);
    snprintf(link, sizeof link, "%s/a/again", root);
    CHECK(symlink(".", link) == 0);
    json_string(quoted, sizeof quoted, root);
    snprintf(config, sizeof config,
             "{\"source\": {\"kind\": \"image_folder\", \"root\": %s},"
             " \"transform\": {\"resize\": [2, 2]}}",
             quoted);
    CHECK_STATUS(thresher_loader_new(config, &l), THRESHER_FORMAT, "already reached");
    CHECK(l == NULL);
    alarm(0);
}

static void *consume(void *arg) {
    thresher_loader *l = arg;
    size_t n = 0;
    for (;;) {
        thresher_batch *b = NULL;
        thresher_status st = thresher_loader_next(l, &b);
        if (st != THRESHER_OK) break;
        n += thresher_batch_len(b);
        thresher_batch_release(b);
    }
    return (void *)n;
}

void test_special_concurrent_next(void) {
    int round;
    alarm(120);
    for (round = 0; round < 10; round++) {
        pthread_t a, b;
        void *na, *nb;
        thresher_loader *l = open_loader(test_images, test_labels,
                                         "\"batch_size\": 500, \"workers\": 2, \"prefetch\": 2");
        if (!l) return;
        CHECK(pthread_create(&a, NULL, consume, l) == 0);
        CHECK(pthread_create(&b, NULL, consume, l) == 0);
        /* Ending the epoch from a third thread releases a caller waiting in it. */
        if (round % 2) CHECK_OK(thresher_loader_end_epoch(l));
        pthread_join(a, &na);
        pthread_join(b, &nb);
        /* Each batch went to one of them (a caller arriving after the end may have taken a
         * part of the next epoch as well). */
        CHECK(round % 2 || (size_t)na + (size_t)nb >= 10000);
        thresher_loader_free(l);
    }
    alarm(0);
}

void test_special_fork(void) {
    thresher_loader *l;
    thresher_batch *b = NULL;
    pid_t child;
    int status = 0, waited = 0;
    alarm(60);
    l = open_loader(test_images, test_labels, "\"batch_size\": 32, \"workers\": 2");
    if (!l) return;
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    child = fork();
    if (child == 0) {
        /* The child: every call is THRESHER_STATE naming the fork, and free returns. */
        thresher_epoch_info info;
        char msg[512];
        int ok = thresher_loader_next(l, &b) == THRESHER_STATE && b == NULL;
        thresher_last_error(msg, sizeof msg);
        ok = ok && strstr(msg, "fork") != NULL;
        ok = ok && thresher_loader_epoch_info(l, &info) == THRESHER_STATE;
        thresher_loader_free(l);
        _exit(ok ? 0 : 1);
    }
    CHECK(child > 0);
    while (child > 0 && waited < 200) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        pid_t got = waitpid(child, &status, WNOHANG);
        if (got == child) break;
        nanosleep(&ts, NULL);
        waited++;
    }
    if (waited == 200) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        CHECK(!"the forked child hung");
    } else {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* The parent's loader is untouched. */
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    thresher_loader_free(l);
    alarm(0);
}
