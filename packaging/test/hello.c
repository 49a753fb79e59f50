/* hello.c — the smallest C program against an installed thresher: built by
 * packaging/test/run.sh once through pkg-config and once through CMake's find_package.
 * Usage: hello FASHION_MNIST_DIR. Prints the library version and one batch's shape. */
#include <thresher.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char cfg[4096], msg[1024];
    thresher_loader *l = NULL;
    thresher_batch *b = NULL;
    thresher_tensor t;
    if (argc != 2) {
        fprintf(stderr, "usage: %s FASHION_MNIST_DIR\n", argv[0]);
        return 2;
    }
    /* A header and library from different installs would disagree here. */
    if (thresher_abi_version() != THRESHER_ABI_VERSION ||
        strcmp(thresher_version(), THRESHER_VERSION) != 0) {
        fprintf(stderr, "header %s does not match library %s\n", THRESHER_VERSION,
                thresher_version());
        return 1;
    }
    snprintf(cfg, sizeof cfg,
             "{\"source\": {\"kind\": \"idx\", \"images\": \"%s/t10k-images-idx3-ubyte.gz\", "
             "\"labels\": \"%s/t10k-labels-idx1-ubyte.gz\", \"limit\": 1000}, \"batch_size\": 64}",
             argv[1], argv[1]);
    if (thresher_loader_new(cfg, &l) != THRESHER_OK || thresher_loader_next(l, &b) != THRESHER_OK ||
        thresher_batch_data(b, &t) != THRESHER_OK) {
        thresher_last_error(msg, sizeof msg);
        fprintf(stderr, "thresher: %s\n", msg);
        thresher_batch_release(b);
        thresher_loader_free(l);
        return 1;
    }
    printf("thresher %s: batch of %zu, shape [%lld, %lld, %lld, %lld]\n", thresher_version(),
           thresher_batch_len(b), (long long)t.shape[0], (long long)t.shape[1],
           (long long)t.shape[2], (long long)t.shape[3]);
    thresher_batch_release(b);
    thresher_loader_free(l);
    return 0;
}
