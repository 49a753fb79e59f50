/*
 * abi_test.c — the thresher C ABI exercised from a strict C99 program.
 *
 * Built by `make test-c` with -std=c99 -pedantic -Werror under AddressSanitizer, UBSan and
 * LeakSanitizer, linked against the static library. Usage: abi_test MNIST_DIR, where MNIST_DIR
 * holds the raw (uncompressed) MNIST IDX files. Covers every function in thresher.h and every
 * status a caller can provoke; prints "N passed, M failed" and exits nonzero on any failure.
 *
 * This file holds the harness, the shared helpers and main, which runs the tests in order;
 * the tests live by concern in abi_errors.c, abi_epochs.c, abi_state.c, abi_dlpack.c,
 * abi_index.c (index mode, epoch plans, end_epoch, save_state_at) and abi_hostile.c (hostile
 * sizes, checkpoint identity), and abi_test.h declares what they share.
 */
#include "abi_test.h"

/* ---- a tiny test harness ------------------------------------------------------------------ */

int g_passed, g_failed;

/* This thread's last thresher error, copied into a static buffer (main thread only). */
const char *last_error(void) {
    static char buf[2048];
    buf[0] = '\0';
    thresher_last_error(buf, sizeof buf);
    return buf;
}

void check_impl(int ok, const char *expr, const char *file, int line) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n    (last thresher error, may be older: \"%s\")\n",
            file, line, expr, last_error());
}

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
void check_status_impl(thresher_status got, thresher_status want, const char *needle,
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

/* ---- helpers ------------------------------------------------------------------------------ */

char train_images[1024], train_labels[1024], test_images[1024], test_labels[1024];

int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

blob read_file(const char *path) {
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

/* Writes a new file and renames it over `path`: a loader that still maps the old file (a
 * detached worker finishing its sample) keeps reading the old bytes, where truncating the file
 * in place would fault its next read with SIGBUS. */
void write_file(const char *path, const void *bytes, size_t size) {
    char tmp[4096];
    FILE *f;
    if (snprintf(tmp, sizeof tmp, "%s.part", path) >= (int)sizeof tmp) {
        fprintf(stderr, "path too long: %s\n", path);
        exit(2);
    }
    f = fopen(tmp, "wb");
    if (f == NULL || fwrite(bytes, 1, size, f) != size || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Writes a JSON string literal for `s` (quotes and backslashes escaped). */
size_t json_string(char *out, size_t cap, const char *s) {
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
void make_config(char *out, size_t cap, const char *images, const char *labels,
                 const char *extra) {
    char img[2100], lab[2100];
    json_string(img, sizeof img, images);
    json_string(lab, sizeof lab, labels);
    snprintf(out, cap, "{\"source\": {\"kind\": \"idx\", \"images\": %s, \"labels\": %s}%s%s}",
             img, lab, extra[0] ? ", " : "", extra);
}

/* A loader over (images, labels) with `extra` keys; NULL (and a failed check) on error. */
thresher_loader *open_loader(const char *images, const char *labels, const char *extra) {
    char cfg[8192];
    thresher_loader *l = NULL;
    make_config(cfg, sizeof cfg, images, labels, extra);
    CHECK_OK(thresher_loader_new(cfg, &l));
    CHECK(l != NULL);
    return l;
}

/* thresher_loader_new on `extra` must fail with `want` naming `needle`; no loader is made. */
void expect_config_error(const char *images, const char *labels, const char *extra,
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
size_t dtype_size(thresher_dtype d) {
    switch (d) {
    case THRESHER_U8: case THRESHER_I8: return 1;
    case THRESHER_U16: case THRESHER_I16: case THRESHER_F16: case THRESHER_BF16: return 2;
    case THRESHER_U32: case THRESHER_I32: case THRESHER_F32: return 4;
    case THRESHER_I64: case THRESHER_F64: return 8;
    }
    return 0;
}

size_t tensor_bytes(const thresher_tensor *t) {
    size_t n = dtype_size(t->dtype);
    uint32_t d;
    for (d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
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
    test_hostile_sizes();
    test_checkpoint_identity();
    test_deprecated_aliases();
    test_dlpack();
    test_ranks();
    test_index_no_data();
    test_index_epoch_plan();
    test_index_end_epoch();
    test_index_advance();
    test_index_null_arguments();
    test_index_save_state_at();
    test_index_ranks();
    test_index_infobatch();
    test_special_fifo_image();
    test_special_link_loop();
    test_special_concurrent_next();
    test_special_fork();
    test_tensor_dtypes();
    test_tokens();
    test_index_total_batches();
    test_index_unlearnable_fraction();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
