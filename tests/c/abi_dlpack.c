/*
 * abi_dlpack.c — thresher_batch_dlpack: every field exported as a DLPack 0.8 tensor that
 * outlives its batch handle and its loader.
 */
#include "abi_test.h"

/* ---- thresher_batch_dlpack ---------------------------------------------------------------- */

/* Checks one exported tensor's description; returns it (NULL when the export failed). */
static DLManagedTensor *export_field(thresher_batch *b, int32_t field, const void *want_data,
                                     int32_t ndim, const int64_t *shape, uint8_t code,
                                     uint8_t bits) {
    void *out = NULL;
    DLManagedTensor *m;
    int32_t d;
    CHECK_OK(thresher_batch_dlpack(b, field, &out));
    if (out == NULL) return NULL;
    m = out;
    CHECK(m->deleter != NULL);
    CHECK(m->dl_tensor.data == want_data);
    CHECK(m->dl_tensor.device.device_type == 1 && m->dl_tensor.device.device_id == 0);
    CHECK(m->dl_tensor.ndim == ndim);
    CHECK(m->dl_tensor.dtype.code == code && m->dl_tensor.dtype.bits == bits &&
          m->dl_tensor.dtype.lanes == 1);
    CHECK(m->dl_tensor.shape != NULL);
    for (d = 0; d < ndim && m->dl_tensor.shape != NULL; d++)
        CHECK(m->dl_tensor.shape[d] == shape[d]);
    CHECK(m->dl_tensor.strides == NULL); /* compact row-major */
    CHECK(m->dl_tensor.byte_offset == 0);
    return m;
}

static void check_dlpack(const char *extra, uint8_t data_code, uint8_t data_bits) {
    thresher_loader *l = open_loader(test_images, test_labels, extra);
    thresher_batch *b = NULL;
    thresher_tensor t;
    DLManagedTensor *m[4] = {NULL, NULL, NULL, NULL};
    uint64_t ids[100];
    int64_t labels[100];
    float weights[100];
    unsigned char *bytes = NULL;
    size_t len, nbytes = 0;
    int64_t n;
    void *out;
    static char untouched;
    int k;
    if (l == NULL) return;
    CHECK_OK(thresher_loader_next(l, &b));
    if (b == NULL) goto out;
    len = thresher_batch_len(b);
    CHECK(len == 100);
    if (len != 100) goto out;
    n = (int64_t)len;
    CHECK_OK(thresher_batch_data(b, &t));
    nbytes = tensor_bytes(&t);
    bytes = malloc(nbytes);
    if (bytes == NULL) goto out;
    memcpy(bytes, t.data, nbytes);
    memcpy(ids, thresher_batch_ids(b), sizeof ids);
    memcpy(labels, thresher_batch_labels(b), sizeof labels);
    memcpy(weights, thresher_batch_weights(b), sizeof weights);

    m[THRESHER_FIELD_DATA] =
        export_field(b, THRESHER_FIELD_DATA, t.data, 4, t.shape, data_code, data_bits);
    m[THRESHER_FIELD_LABELS] =
        export_field(b, THRESHER_FIELD_LABELS, thresher_batch_labels(b), 1, &n, 0, 64);
    m[THRESHER_FIELD_IDS] =
        export_field(b, THRESHER_FIELD_IDS, thresher_batch_ids(b), 1, &n, 1, 64);
    m[THRESHER_FIELD_WEIGHTS] =
        export_field(b, THRESHER_FIELD_WEIGHTS, thresher_batch_weights(b), 1, &n, 2, 32);

    /* Bad arguments: INVALID_ARGUMENT and *out untouched. */
    out = &untouched;
    CHECK_STATUS(thresher_batch_dlpack(b, 7, &out), THRESHER_INVALID_ARGUMENT, "field");
    CHECK_STATUS(thresher_batch_dlpack(b, -1, &out), THRESHER_INVALID_ARGUMENT, "field");
    CHECK_STATUS(thresher_batch_dlpack(b, 6, &out), THRESHER_INVALID_ARGUMENT, "6");
    /* An image batch has no targets and no mask: STATE, naming what is missing. */
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_TARGETS, &out), THRESHER_STATE,
                 "no targets");
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_MASK, &out), THRESHER_STATE, "no mask");
    CHECK_STATUS(thresher_batch_dlpack(NULL, THRESHER_FIELD_DATA, &out),
                 THRESHER_INVALID_ARGUMENT, "batch");
    CHECK(out == &untouched);
    CHECK_STATUS(thresher_batch_dlpack(b, THRESHER_FIELD_DATA, NULL), THRESHER_INVALID_ARGUMENT,
                 "out");

    /* The tensors hold the batch: release the handle and free the loader (mid-epoch, workers
     * running), then read every tensor (ASan flags any freed memory) and delete them. */
    thresher_batch_release(b);
    b = NULL;
    thresher_loader_free(l);
    l = NULL;
    if (m[0] != NULL) CHECK(memcmp(m[0]->dl_tensor.data, bytes, nbytes) == 0);
    if (m[1] != NULL) CHECK(memcmp(m[1]->dl_tensor.data, labels, sizeof labels) == 0);
    if (m[2] != NULL) CHECK(memcmp(m[2]->dl_tensor.data, ids, sizeof ids) == 0);
    if (m[3] != NULL) CHECK(memcmp(m[3]->dl_tensor.data, weights, sizeof weights) == 0);
    /* Deleted in an order unlike the export order; the last deleter frees the batch
     * (LeakSanitizer checks that it does). */
    for (k = 3; k >= 0; k -= 2)
        if (m[k] != NULL) m[k]->deleter(m[k]);
    for (k = 2; k >= 0; k -= 2)
        if (m[k] != NULL) m[k]->deleter(m[k]);
out:
    thresher_batch_release(b);
    thresher_loader_free(l);
    free(bytes);
}

void test_dlpack(void) {
    /* f32 data: kDLFloat 32; u8 data: kDLUInt 8 (labels kDLInt 64, ids kDLUInt 64, weights
     * kDLFloat 32 either way). */
    check_dlpack("\"batch_size\": 100, \"workers\": 3, \"prefetch\": 6", 2, 32);
    check_dlpack("\"batch_size\": 100, \"transform\": {\"dtype\": \"u8\", \"layout\": \"nhwc\"},"
                 " \"policy\": {\"kind\": \"random\", \"prune\": 0.2, \"rescale\": true}",
                 1, 8);
}
