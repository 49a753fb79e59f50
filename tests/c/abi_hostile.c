/*
 * abi_hostile.c — hostile sizes and mismatched state through the C ABI, under ASan and UBSan:
 * allocations sized by input are refused by key before they happen (a terabyte batch, an
 * index N that cannot fit), gradient embeddings of any length are projected without a k × d
 * matrix (a ResNet-sized one included), a zero-length feedback call fixes no embedding length,
 * and a checkpoint resumes only onto its own dataset and policy parameters.
 */
#include "abi_test.h"

static thresher_status feedback_emb(thresher_loader *l, const uint64_t *ids, size_t len,
                                    const float *emb, size_t dim) {
    thresher_feedback fb;
    static const float loss[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    memset(&fb, 0, sizeof fb);
    fb.len = len;
    fb.ids = ids;
    fb.loss = loss;
    fb.embedding = emb;
    fb.embedding_dim = dim;
    return thresher_loader_feedback(l, &fb);
}

static thresher_loader *index_loader(const char *config) {
    thresher_loader *l = NULL;
    CHECK_OK(thresher_loader_new(config, &l));
    return l;
}

void test_hostile_sizes(void) {
    thresher_loader *l;
    static const uint64_t ids[2] = {3, 4};
    static const float seven[7] = {1, 2, 3, 4, 5, 6, 7};
    const size_t d = 11000000; /* ResNet-18's parameter count */
    float *emb;
    size_t i;

    /* A resize target inside its documented range, on a small dataset: the first batch would
     * take a terabyte. Refused at creation, naming the budget and the keys that size it. */
    expect_config_error(test_images, test_labels, "\"transform\": {\"resize\": [65536, 65536]}",
                        THRESHER_INVALID_ARGUMENT, "max_batch_bytes", __LINE__);
    expect_config_error(test_images, test_labels,
                        "\"batch_size\": 1048576, \"transform\": {\"center_crop\": 4096}",
                        THRESHER_INVALID_ARGUMENT, "batch_size", __LINE__);
    expect_config_error(test_images, test_labels, "\"max_batch_bytes\": 0",
                        THRESHER_INVALID_ARGUMENT, "max_batch_bytes", __LINE__);
    expect_config_error(test_images, test_labels, "\"max_batch_bytes\": -1",
                        THRESHER_INVALID_ARGUMENT, "max_batch_bytes", __LINE__);
    /* A budget raised past what the process can hold: refused, not aborted. */
    expect_config_error(test_images, test_labels,
                        "\"max_batch_bytes\": 18446744073709551615, \"batch_size\": 1048576, "
                        "\"transform\": {\"resize\": [65536, 65536]}",
                        THRESHER_INVALID_ARGUMENT, "cannot be allocated", __LINE__);

    /* Influence with a ResNet-sized embedding: projected on arrival. */
    l = index_loader("{\"source\": {\"kind\": \"index\", \"len\": 50}, \"batch_size\": 10,"
                     " \"policy\": {\"kind\": \"influence\", \"score_epochs\": 1}}");
    if (l == NULL) return;
    /* No ids: the dimension named is not fixed. */
    CHECK_OK(feedback_emb(l, ids, 0, seven, 1000));
    emb = malloc(2 * d * sizeof *emb);
    if (emb == NULL) {
        CHECK(!"malloc of the embedding failed");
        thresher_loader_free(l);
        return;
    }
    for (i = 0; i < 2 * d; i++) emb[i] = (float)(i % 13) - 6.0f;
    CHECK_OK(feedback_emb(l, ids, 2, emb, d));
    free(emb);
    CHECK_STATUS(feedback_emb(l, ids, 1, seven, 7), THRESHER_INVALID_ARGUMENT, "embedding_dim");
    thresher_loader_free(l);

    /* Above the documented embedding length limit: refused by name. */
    l = index_loader("{\"source\": {\"kind\": \"index\", \"len\": 50},"
                     " \"policy\": {\"kind\": \"influence\"}}");
    if (l == NULL) return;
    CHECK_STATUS(feedback_emb(l, ids, 0, seven, (size_t)1 << 31), THRESHER_INVALID_ARGUMENT,
                 "embedding_dim");
    thresher_loader_free(l);
}

/* Saves a checkpoint of an index loader made from `config` after one batch. */
static int save_after_one_batch(const char *config, const char *path) {
    thresher_loader *l = index_loader(config);
    thresher_batch *b;
    if (l == NULL) return 0;
    CHECK_OK(thresher_loader_next(l, &b));
    thresher_batch_release(b);
    CHECK_OK(thresher_loader_save_state(l, path));
    thresher_loader_free(l);
    return 1;
}

void test_checkpoint_identity(void) {
    char dir[] = "/tmp/thresher-abi-identity-XXXXXX";
    char path[1024], cfg[2048], data_cfg[2048];
    thresher_loader *l = NULL;
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/ck", dir);
    if (!save_after_one_batch("{\"source\": {\"kind\": \"index\", \"len\": 100}, \"seed\": 3,"
                              " \"policy\": {\"kind\": \"random\", \"prune\": 0.3}}",
                              path))
        return;
    /* The same run, a default spelled out: resumes. */
    snprintf(cfg, sizeof cfg,
             "{\"source\": {\"kind\": \"index\", \"len\": 100}, \"seed\": 3, \"resume_from\": "
             "\"%s\", \"policy\": {\"kind\": \"random\", \"prune\": 0.3, \"period\": 1}}",
             path);
    CHECK_OK(thresher_loader_new(cfg, &l));
    thresher_loader_free(l);
    /* Another prune fraction: refused, naming the key and both values. */
    snprintf(cfg, sizeof cfg,
             "{\"source\": {\"kind\": \"index\", \"len\": 100}, \"seed\": 3, \"resume_from\": "
             "\"%s\", \"policy\": {\"kind\": \"random\", \"prune\": 0.5}}",
             path);
    CHECK_STATUS(thresher_loader_new(cfg, &l), THRESHER_INVALID_ARGUMENT,
                 "`policy.prune` 0.3 in the saved run, 0.5 here");

    /* A loader with data: another dataset of the same length (one label changed) is refused
     * as such; the same files resume. */
    snprintf(path, sizeof path, "%s/ck-data", dir);
    make_config(data_cfg, sizeof data_cfg, test_images, test_labels,
                "\"policy\": {\"kind\": \"full\"}, \"batch_size\": 100");
    l = NULL;
    CHECK_OK(thresher_loader_new(data_cfg, &l));
    if (l != NULL) {
        CHECK_OK(thresher_loader_save_state(l, path));
        thresher_loader_free(l);
    }
    {
        char extra[1200], labels[1024];
        blob lab = read_file(test_labels);
        snprintf(labels, sizeof labels, "%s/labels", dir);
        lab.bytes[LAB_HEADER + 5] = (unsigned char)((lab.bytes[LAB_HEADER + 5] + 1) % 10);
        write_file(labels, lab.bytes, lab.size);
        free(lab.bytes);
        snprintf(extra, sizeof extra,
                 "\"policy\": {\"kind\": \"full\"}, \"batch_size\": 100, \"resume_from\": \"%s\"",
                 path);
        expect_config_error(test_images, labels, extra, THRESHER_INVALID_ARGUMENT,
                            "dataset contents", __LINE__);
        l = open_loader(test_images, test_labels, extra);
        if (l != NULL) thresher_loader_free(l);
        remove(labels);
    }
    remove(path);
    snprintf(path, sizeof path, "%s/ck", dir);
    remove(path);
    rmdir(dir);
}
