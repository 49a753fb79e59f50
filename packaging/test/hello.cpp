// hello.cpp — the installed C++17 wrapper (thresher.hpp) through find_package(thresher).
// Usage: hello_cpp FASHION_MNIST_DIR. Counts one epoch of a 1,000-sample subset.
#include <thresher.hpp>

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FASHION_MNIST_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    try {
        thresher::check_abi();
        thresher::Loader loader("{\"source\": {\"kind\": \"idx\", \"images\": \"" + dir +
                                "/t10k-images-idx3-ubyte.gz\", \"labels\": \"" + dir +
                                "/t10k-labels-idx1-ubyte.gz\", \"limit\": 1000}, "
                                "\"batch_size\": 100}");
        std::size_t samples = 0;
        for (auto &batch : loader.epoch()) samples += batch.size();
        std::printf("thresher %s (C++): %zu samples in one epoch\n", thresher::version(), samples);
        return samples == 1000 ? 0 : 1;
    } catch (const thresher::Error &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
