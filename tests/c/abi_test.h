/*
 * abi_test.h — what the parts of the C ABI test share: the check harness, the MNIST paths and
 * helpers (defined in abi_test.c), and the test functions main runs (one file per concern).
 *
 * Include it first: it sets _POSIX_C_SOURCE, which must precede every system header.
 */
#ifndef THRESHER_ABI_TEST_H
#define THRESHER_ABI_TEST_H

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

/* ---- the harness ------------------------------------------------------------------------- */

/* Checks passed and failed so far; main prints them. */
extern int g_passed, g_failed;

/* This thread's last thresher error, copied into a static buffer (main thread only). */
const char *last_error(void);
void check_impl(int ok, const char *expr, const char *file, int line);
/* A call must return `want`, and (when `needle` is not NULL) its message must contain it. */
void check_status_impl(thresher_status got, thresher_status want, const char *needle,
                       const char *expr, const char *file, int line);

#define CHECK(cond) check_impl((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_STATUS(call, want, needle) \
    check_status_impl((call), (want), (needle), #call, __FILE__, __LINE__)
#define CHECK_OK(call) CHECK_STATUS(call, THRESHER_OK, NULL)

/* ---- MNIST and helpers ------------------------------------------------------------------- */

enum { ROWS = 28, COLS = 28, PIXELS = ROWS * COLS, IMG_HEADER = 16, LAB_HEADER = 8 };

/* The raw IDX files under MNIST_DIR, set by main. */
extern char train_images[1024], train_labels[1024], test_images[1024], test_labels[1024];

/* A raw IDX file read whole into memory. */
typedef struct {
    unsigned char *bytes;
    size_t size;
} blob;

/* 1 when `path` can be opened for reading. */
int file_exists(const char *path);
/* Exits with status 2 when the file cannot be read or written: the test cannot go on. */
blob read_file(const char *path);
void write_file(const char *path, const void *bytes, size_t size);
uint32_t be32(const unsigned char *p);
/* Writes a JSON string literal for `s` (quotes and backslashes escaped). */
size_t json_string(char *out, size_t cap, const char *s);
/* A config: the idx source over (images, labels), then `extra` (more top-level keys or ""). */
void make_config(char *out, size_t cap, const char *images, const char *labels,
                 const char *extra);
/* A loader over (images, labels) with `extra` keys; NULL (and a failed check) on error. */
thresher_loader *open_loader(const char *images, const char *labels, const char *extra);
/* thresher_loader_new on `extra` must fail with `want` naming `needle`; no loader is made. */
void expect_config_error(const char *images, const char *labels, const char *extra,
                         thresher_status want, const char *needle, int line);
/* Bytes per element of a dtype. */
size_t dtype_size(thresher_dtype d);
/* Bytes of a batch's data, from its tensor description. */
size_t tensor_bytes(const thresher_tensor *t);

/* ---- DLPack (abi_dlpack.c, abi_index.c) --------------------------------------------------- */

/* DLPack 0.8 (dlpack.h, ABI unchanged since 0.6), declared here as a consumer declares it:
 * thresher.h deliberately does not, so it never clashes with a program's own dlpack.h. */
typedef struct {
    int32_t device_type; /* DLDeviceType: kDLCPU = 1 */
    int32_t device_id;
} DLDevice;
typedef struct {
    uint8_t code; /* DLDataTypeCode: kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4 */
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

/* ---- index mode (abi_index.c; also used by abi_index_epochs.c) ---------------------------- */

/* An index-mode loader over `len` ids with `extra` keys ("" or more top-level keys). */
thresher_loader *open_index(size_t len, const char *extra);
/* A loss that depends on the sample id only: below the mean for even ids, above for odd. */
float even_low(uint64_t id);
/* Feeds back the real (non-padding) samples of `b` with even_low. */
void feed(thresher_loader *l, thresher_batch *b);
/* Runs the rest of the epoch under way with feedback; returns the batches taken. */
size_t drain(thresher_loader *l);
/* 1 when the plan's entries [from, from + len) are the batch's ids and weights. */
int plan_holds(const thresher_epoch_plan *p, size_t from, thresher_batch *b);

/* ---- the tests, in the order main runs them ---------------------------------------------- */

/* abi_errors.c */
void test_versions(void); /* first: nothing may have failed on this thread yet */
void test_last_error(void);
void test_threads(void);
void test_null_arguments(void);
void test_config_errors(void);
void test_format_errors(void);
void test_feedback_errors(void);
/* abi_epochs.c */
void test_epoch_pixels_and_labels(void);
void test_f32(void);
void test_random_pruning(void);
void test_drop_last(void);
void test_determinism(void);
void test_lending(void);
void test_free_states(void);
void test_after_end_of_epoch(void);
void test_report(void);
/* abi_state.c */
void test_save_scores(void);
void test_state_resume(void);
void test_deprecated_aliases(void);
void test_ranks(void);
/* abi_hostile.c */
void test_hostile_sizes(void);
void test_checkpoint_identity(void);
/* abi_dlpack.c */
void test_dlpack(void);
/* abi_index.c */
void test_index_no_data(void);
void test_index_epoch_plan(void);
void test_index_end_epoch(void);
void test_index_advance(void);
void test_index_null_arguments(void);
/* abi_index_epochs.c */
void test_index_save_state_at(void);
void test_index_ranks(void);
void test_index_infobatch(void);
/* abi_special.c */
void test_special_fifo_image(void);
void test_special_link_loop(void);
void test_special_concurrent_next(void);
void test_special_fork(void);
/* abi_tensors.c */
void test_tensor_dtypes(void);
void test_tokens(void);
void test_index_total_batches(void);
void test_index_unlearnable_fraction(void);

#endif /* THRESHER_ABI_TEST_H */
