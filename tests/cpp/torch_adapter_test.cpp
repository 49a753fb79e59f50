// torch_adapter_test.cpp — include/thresher_torch.hpp against libtorch, on raw MNIST.
//
// Built and run by `make test-cpp-mnist`. Usage: torch_adapter_test MNIST_DIR (raw IDX files).
// Checks that a Batch's tensors are views of the thresher batch (same pointers, no copy) that
// keep it alive after the Batch, the loader and the range are gone; weighted_loss = mean(w * l)
// and feeds the loss back (InfoBatch then prunes); shape errors; index mode; iterating a Loader
// directly. Prints "N passed, M failed".

#include "thresher_torch.hpp"

#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static int g_passed, g_failed;

static void check_impl(bool ok, const char *expr, int line) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, line, expr);
}
#define EXPECT(cond) check_impl(static_cast<bool>(cond), #cond, __LINE__)

static std::string g_dir;

static std::string config(const std::string &extra) {
    return "{\"source\": {\"kind\": \"idx\", \"images\": \"" + g_dir +
           "/t10k-images-idx3-ubyte\", \"labels\": \"" + g_dir + "/t10k-labels-idx1-ubyte\"}, " +
           extra + "}";
}

static void test_zero_copy_and_lifetime() {
    torch::Tensor x, y, w, ids;
    const void *raw_x = nullptr;
    std::vector<std::uint64_t> want_ids;
    {
        thresher::torch::Loader loader(config("\"batch_size\": 50"));
        std::optional<thresher::torch::Batch> b = loader.next();
        EXPECT(b.has_value());
        if (!b) return;
        EXPECT(b->size() == 50 && b->padding == 0);
        EXPECT(b->data.sizes() == torch::IntArrayRef({50, 1, 28, 28}));
        EXPECT(b->data.scalar_type() == torch::kFloat32 && b->data.is_contiguous());
        EXPECT(b->target.scalar_type() == torch::kInt64 && b->target.size(0) == 50);
        EXPECT(b->weights.scalar_type() == torch::kFloat32 && b->ids.scalar_type() == torch::kInt64);
        // Views of the batch's own memory.
        raw_x = b->raw().data().data();
        EXPECT(b->data.data_ptr() == raw_x);
        EXPECT(b->target.data_ptr() == static_cast<const void *>(b->raw().labels().data()));
        EXPECT(b->weights.data_ptr() == static_cast<const void *>(b->raw().weights().data()));
        EXPECT(b->ids.data_ptr() == static_cast<const void *>(b->raw().ids().data()));
        want_ids.assign(b->raw().ids().begin(), b->raw().ids().end());
        x = b->data;
        y = b->target;
        w = b->weights;
        ids = b->ids;
    } // the Batch and the Loader are gone; the tensors hold the batch
    EXPECT(x.data_ptr() == raw_x);
    EXPECT(x.min().item<float>() >= 0.0f && x.max().item<float>() <= 1.0f);
    EXPECT(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() <= 9);
    EXPECT(w.eq(1.0f).all().item<bool>());
    bool same = true;
    for (int64_t i = 0; i < 50; i++)
        same = same && ids[i].item<int64_t>() == static_cast<int64_t>(want_ids[i]);
    EXPECT(same);
    x = y = w = ids = torch::Tensor(); // the last references: the batch is released (LSan)
}

static void test_weighted_loss() {
    // InfoBatch: the losses fed back by weighted_loss make epoch 1 smaller than epoch 0.
    thresher::torch::Loader loader(
        config("\"batch_size\": 500, \"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, "
               "\"epochs\": 4}"));
    std::size_t batches = 0;
    for (auto &batch : loader) { // iterating a Loader: one epoch
        // A per-sample "loss" that depends on the sample: its mean pixel.
        torch::Tensor l = batch.data.mean({1, 2, 3}).clone().requires_grad_(true);
        torch::Tensor m = loader.weighted_loss(l, batch);
        EXPECT(m.dim() == 0 && m.requires_grad());
        EXPECT(std::fabs(m.item<double>() - (batch.weights * l).mean().item<double>()) < 1e-6);
        m.backward();
        EXPECT(l.grad().defined() && std::fabs(l.grad()[0].item<double>() - 1.0 / 500) < 1e-9);
        batches++;
    }
    EXPECT(batches == 20);
    thresher::EpochInfo info = loader.epoch_info();
    EXPECT(info.epoch == 1 && info.samples < 10000 && info.samples > 5000);
    // Epoch 1: weights 2 on the kept below-mean samples, and weighted_loss uses them.
    std::optional<thresher::torch::Batch> b = loader.next();
    EXPECT(b && b->weights.max().item<float>() == 2.0f);
    if (b) {
        torch::Tensor ones = torch::ones({static_cast<int64_t>(b->size())});
        EXPECT(std::fabs(loader.weighted_loss(ones, *b).item<double>() -
                        b->weights.mean().item<double>()) < 1e-6);
        // With correctness (bool), and a loss of another dtype.
        loader.feedback(*b, ones.to(torch::kFloat64), ones.to(torch::kBool));
        // Not [B]: refused before anything is fed back.
        bool threw = false;
        try {
            loader.weighted_loss(torch::ones({2, 3}), *b);
        } catch (const thresher::Error &e) {
            threw = e.status() == THRESHER_INVALID_ARGUMENT &&
                    std::string(e.message()).find("reduction None") != std::string::npos;
        }
        EXPECT(threw);
        threw = false;
        try { // NaN: the library names the sample
            loader.feedback(*b, torch::full({static_cast<int64_t>(b->size())}, NAN));
        } catch (const thresher::Error &e) {
            threw = e.status() == THRESHER_INVALID_ARGUMENT;
        }
        EXPECT(threw);
    }
    // Leaving early and ending the epoch; report and end_epoch pass through.
    loader.end_epoch();
    EXPECT(loader.report().epoch == 1 && loader.epoch_info().epoch == 2);
}

static void test_index_mode() {
    thresher::torch::Loader loader("{\"source\": {\"kind\": \"index\", \"len\": 300}, "
                                   "\"batch_size\": 100}");
    int64_t n = 0;
    for (auto &batch : loader.epoch()) {
        EXPECT(!batch.data.defined() && !batch.target.defined());
        EXPECT(batch.ids.size(0) == 100 && batch.weights.size(0) == 100);
        n += batch.ids.size(0);
        loader.weighted_loss(torch::rand({100}), batch);
    }
    EXPECT(n == 300);
    EXPECT(loader.raw().epoch_plan().size() == 300); // epoch 1's, made now
}

// A budget fixed in advance: total_batches() before the first batch equals the batches the
// epochs deliver; and the noisy-labels warning reaches the handler through the adapter (every
// sample reported wrong: the plans of epochs 2 and 3 keep samples wrong at two reports, about
// half of each under this budget, well above the warning level; epochs 0 and 1 none).
static void test_budget_and_warning() {
    thresher::torch::Loader loader("{\"source\": {\"kind\": \"index\", \"len\": 400}, "
                                   "\"batch_size\": 32, \"seed\": 2, \"policy\": {\"kind\": "
                                   "\"el2n\", \"budget\": 0.5, \"epochs\": 4}}");
    int heard = 0;
    loader.set_warning_handler([&](const std::string &) { heard++; });
    const std::uint64_t total = loader.total_batches();
    std::uint64_t delivered = 0;
    int64_t visits = 0;
    for (int epoch = 0; epoch < 4; epoch++)
        for (auto &batch : loader.epoch()) {
            const int64_t n = batch.ids.size(0);
            loader.weighted_loss(torch::rand({n}), batch, torch::zeros({n}, torch::kBool));
            delivered++;
            visits += n;
        }
    EXPECT(total == delivered);
    EXPECT(std::llabs(visits - 800) <= 4 * 32);
    EXPECT(heard == 2 && loader.unlearnable_fraction() > THRESHER_UNLEARNABLE_WARNING);
    thresher::torch::Loader greedy("{\"source\": {\"kind\": \"index\", \"len\": 10}, "
                                   "\"policy\": {\"kind\": \"ucb\"}}");
    bool threw = false;
    try {
        greedy.total_batches();
    } catch (const thresher::Error &e) {
        threw = e.status() == THRESHER_STATE;
    }
    EXPECT(threw);
}

// Token blocks: x and y keep the token dtype (uint16), no class labels, and the typed targets
// are views of the batch like the data.
static void test_token_blocks() {
    char dir[] = "/tmp/thresher-torch-tokens-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
        EXPECT(!"mkdtemp failed");
        return;
    }
    const std::string path = std::string(dir) + "/t.bin";
    std::vector<std::uint16_t> tok(33);
    for (std::size_t i = 0; i < tok.size(); i++) tok[i] = static_cast<std::uint16_t>(60000 + i);
    {
        FILE *f = std::fopen(path.c_str(), "wb");
        EXPECT(f != nullptr);
        if (f == nullptr) return;
        std::fwrite(tok.data(), 2, tok.size(), f);
        std::fclose(f);
    }
    {
        thresher::torch::Loader loader("{\"source\": {\"kind\": \"tokens\", \"path\": \"" + path +
                                       "\", \"dtype\": \"u16\", \"block\": 8}, "
                                       "\"batch_size\": 4, \"shuffle\": false}");
        auto b = loader.next();
        EXPECT(b.has_value());
        if (b) {
            EXPECT(b->data.scalar_type() == torch::kUInt16 && b->data.size(1) == 8);
            EXPECT(b->targets.defined() && b->targets.scalar_type() == torch::kUInt16);
            EXPECT(!b->target.defined() && !b->mask.defined());
            const auto x = b->data.to(torch::kInt64), y = b->targets.to(torch::kInt64);
            EXPECT(x[1][0].item<int64_t>() == 60008 && y[1][0].item<int64_t>() == 60009);
            EXPECT(y[3][7].item<int64_t>() == 60032);
            thresher::Tensor ty = *b->raw().targets();
            EXPECT(b->targets.data_ptr() == ty.data());
        }
    }
    std::remove(path.c_str());
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MNIST_DIR (raw IDX files)\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    try {
        test_zero_copy_and_lifetime();
        test_weighted_loss();
        test_index_mode();
        test_budget_and_warning();
        test_token_blocks();
    } catch (const std::exception &e) {
        g_failed++;
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    }
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
