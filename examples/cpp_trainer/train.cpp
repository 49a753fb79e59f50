// train.cpp — a libtorch C++ trainer fed by thresher.
//
// Trains the small CNN of thresher-train (conv(16)-BN-ReLU-pool, conv(32)-BN-ReLU-pool,
// linear(64)-ReLU, linear(10)) on Fashion-MNIST with the InfoBatch policy. thresher's batches go
// into torch without a copy (torch::from_blob over the batch's memory, checked by pointer); the
// per-sample losses (reduction none) go back through thresher_loader_feedback; the step
// minimises mean(w * loss) with the batch's weights, which keeps the pruned epochs' gradient
// unbiased. See README.md beside this file for building and running it.

#include "thresher.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Options {
    std::string data = "data/fashion-mnist";
    int epochs = 5;
    long limit = 0;      // training samples used (0: all 60,000)
    long test_limit = 0; // test samples evaluated (0: all 10,000)
    int batch_size = 128;
    double lr = 0.05;
    double prune = 0.5;
    int workers = 2;
    int threads = 0; // torch intra-op threads (0: torch's default)
    unsigned long seed = 0;
};

void usage(const char *argv0) {
    std::fprintf(stderr,
                 "usage: %s [--data DIR] [--epochs E] [--limit N] [--test-limit N]\n"
                 "          [--batch-size B] [--lr LR] [--prune R] [--workers W] [--threads T]\n"
                 "          [--seed S]\n",
                 argv0);
    std::exit(2);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(argv[0]);
        const char *v = argv[++i];
        if (a == "--data") o.data = v;
        else if (a == "--epochs") o.epochs = std::atoi(v);
        else if (a == "--limit") o.limit = std::atol(v);
        else if (a == "--test-limit") o.test_limit = std::atol(v);
        else if (a == "--batch-size") o.batch_size = std::atoi(v);
        else if (a == "--lr") o.lr = std::atof(v);
        else if (a == "--prune") o.prune = std::atof(v);
        else if (a == "--workers") o.workers = std::atoi(v);
        else if (a == "--threads") o.threads = std::atoi(v);
        else if (a == "--seed") o.seed = std::strtoul(v, nullptr, 10);
        else usage(argv[0]);
    }
    if (o.epochs < 1 || o.batch_size < 1) usage(argv[0]);
    return o;
}

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// The loader config: gzipped IDX (thresher decompresses), f32 NCHW normalised with
// Fashion-MNIST's mean and std, so the batch is the model's input as is.
std::string config(const Options &o, const std::string &split, long limit,
                   const std::string &policy, bool shuffle) {
    std::string src = "{\"kind\": \"idx\", \"images\": " +
                      json_string(o.data + "/" + split + "-images-idx3-ubyte.gz") +
                      ", \"labels\": " +
                      json_string(o.data + "/" + split + "-labels-idx1-ubyte.gz");
    if (limit > 0) src += ", \"limit\": " + std::to_string(limit);
    src += "}";
    return "{\"source\": " + src + ", \"batch_size\": " + std::to_string(o.batch_size) +
           ", \"workers\": " + std::to_string(o.workers) + ", \"seed\": " +
           std::to_string(o.seed) + ", \"shuffle\": " + (shuffle ? "true" : "false") +
           ", \"transform\": {\"dtype\": \"f32\", \"layout\": \"nchw\", "
           "\"normalize\": {\"mean\": [0.2860], \"std\": [0.3530]}}, \"policy\": " +
           policy + "}";
}

struct SmallCnnImpl : torch::nn::Module {
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    torch::nn::Linear fc{nullptr}, head{nullptr};

    explicit SmallCnnImpl(int64_t width = 16) {
        using namespace torch::nn;
        conv1 = register_module("conv1",
                                Conv2d(Conv2dOptions(1, width, 3).padding(1).bias(false)));
        bn1 = register_module("bn1", BatchNorm2d(width));
        conv2 = register_module(
            "conv2", Conv2d(Conv2dOptions(width, 2 * width, 3).padding(1).bias(false)));
        bn2 = register_module("bn2", BatchNorm2d(2 * width));
        fc = register_module("fc", Linear(2 * width * 7 * 7, 4 * width));
        head = register_module("head", Linear(4 * width, 10));
    }

    torch::Tensor forward(torch::Tensor x) {
        x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
        x = torch::max_pool2d(torch::relu(bn2(conv2(x))), 2);
        x = torch::relu(fc(x.flatten(1)));
        return head(x);
    }
};
TORCH_MODULE(SmallCnn);

// A batch's arrays as tensors over the batch's own memory. The tensors borrow: they are valid
// while `batch` is, so they must not escape the step (anything kept is computed from them).
struct Views {
    torch::Tensor x, y, w;
};

Views wrap(const thresher::Batch &batch) {
    const thresher::Tensor data = batch.data();
    if (data.dtype() != THRESHER_F32) throw std::runtime_error("expected f32 batches");
    const auto shape = data.shape();
    const auto n = static_cast<int64_t>(batch.size());
    Views v;
    v.x = torch::from_blob(data.data(), torch::IntArrayRef(shape.data(), shape.size()),
                           torch::kFloat32);
    // from_blob takes void*; labels and weights are only read (no in-place op touches them).
    v.y = torch::from_blob(const_cast<int64_t *>(batch.labels().data()), {n}, torch::kInt64);
    v.w = torch::from_blob(const_cast<float *>(batch.weights().data()), {n}, torch::kFloat32);
    // Zero-copy is the point: fail loudly if torch ever copied.
    if (v.x.data_ptr() != data.data() || v.y.data_ptr() != batch.labels().data() ||
        v.w.data_ptr() != batch.weights().data())
        throw std::runtime_error("torch::from_blob copied a batch");
    return v;
}

double accuracy(SmallCnn &model, thresher::Loader &test) {
    torch::NoGradGuard no_grad;
    model->eval();
    int64_t right = 0, total = 0;
    for (auto &batch : test.epoch()) {
        Views v = wrap(batch);
        right += model->forward(v.x).argmax(1).eq(v.y).sum().item<int64_t>();
        total += v.y.size(0);
    }
    model->train();
    return total ? static_cast<double>(right) / static_cast<double>(total) : 0.0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Options &o) {
    thresher::check_abi();
    if (o.threads > 0) torch::set_num_threads(o.threads);
    torch::manual_seed(static_cast<uint64_t>(o.seed));

    const std::string policy = "{\"kind\": \"infobatch\", \"prune\": " + std::to_string(o.prune) +
                               ", \"epochs\": " + std::to_string(o.epochs) + "}";
    thresher::Loader train(config(o, "train", o.limit, policy, true));
    thresher::Loader test(config(o, "t10k", o.test_limit, "{\"kind\": \"full\"}", false));

    SmallCnn model(16);
    torch::optim::SGD opt(model->parameters(),
                          torch::optim::SGDOptions(o.lr).momentum(0.9).weight_decay(5e-4));
    std::printf("cpp_trainer: libthresher %s, libtorch %s, %d torch threads, infobatch prune %.2f "
                "over %d epochs\n",
                thresher::version(), TORCH_VERSION, torch::get_num_threads(), o.prune, o.epochs);

    bool ok = true;
    const auto t_start = std::chrono::steady_clock::now();
    for (int epoch = 0; epoch < o.epochs; epoch++) {
        // The epoch's length before its first batch: InfoBatch has already chosen its samples.
        const thresher::EpochInfo plan = train.epoch_info();
        const auto t0 = std::chrono::steady_clock::now();
        double loss_sum = 0.0;
        int64_t right = 0, samples = 0, batches = 0;
        for (auto &batch : train.epoch()) {
            Views v = wrap(batch);
            const torch::Tensor logits = model->forward(v.x);
            const torch::Tensor per_sample =
                torch::nn::functional::cross_entropy(
                    logits, v.y,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
            // The policy's weights (1/(1-r) on kept well-learned samples) make this step's
            // expected gradient that of the full data.
            const torch::Tensor loss = (v.w * per_sample).mean();
            opt.zero_grad();
            loss.backward();
            opt.step();

            // Feedback: this step's per-sample loss and correctness, read during the call only.
            const torch::Tensor l = per_sample.detach().contiguous();
            const torch::Tensor correct = logits.detach().argmax(1).eq(v.y).to(torch::kUInt8);
            thresher_feedback fb{};
            fb.len = batch.size();
            fb.ids = batch.ids().data();
            fb.loss = l.data_ptr<float>();
            fb.correct = correct.data_ptr<uint8_t>();
            train.feedback(fb); // thresher_loader_feedback; throws thresher::Error

            loss_sum += per_sample.detach().sum().item<double>();
            right += correct.sum().item<int64_t>();
            samples += static_cast<int64_t>(batch.size());
            batches++;
        }
        const double secs = seconds_since(t0);
        const thresher::EpochReport r = train.report();
        const double mean_loss = samples ? loss_sum / static_cast<double>(samples) : NAN;
        const double test_acc = accuracy(model, test);
        std::printf("epoch %d: %lld samples (%.1f%% pruned, %.1f%% saved so far) in %lld batches, "
                    "loss %.4f, train acc %.4f, test acc %.4f, %.1f s (%.0f samples/s, waited "
                    "%.2f s for data)\n",
                    epoch, static_cast<long long>(samples), 100.0 * plan.prune_fraction,
                    100.0 * r.saved_fraction, static_cast<long long>(batches), mean_loss,
                    samples ? static_cast<double>(right) / static_cast<double>(samples) : 0.0,
                    test_acc, secs, static_cast<double>(samples) / secs, r.consumer_wait_s);
        std::fflush(stdout);
        if (static_cast<uint64_t>(samples) != plan.samples ||
            static_cast<uint64_t>(batches) != plan.batches) {
            std::fprintf(stderr, "epoch %d delivered %lld samples in %lld batches, plan said "
                                 "%llu in %llu\n",
                         epoch, static_cast<long long>(samples), static_cast<long long>(batches),
                         static_cast<unsigned long long>(plan.samples),
                         static_cast<unsigned long long>(plan.batches));
            ok = false;
        }
        if (!std::isfinite(mean_loss)) {
            std::fprintf(stderr, "epoch %d: the loss is not finite\n", epoch);
            ok = false;
        }
    }
    std::printf("cpp_trainer: %s after %d epochs in %.1f s\n", ok ? "ok" : "FAILED", o.epochs,
                seconds_since(t_start));
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(parse(argc, argv));
    } catch (const thresher::Error &e) {
        std::fprintf(stderr, "cpp_trainer: thresher error %s: %s\n",
                     thresher::status_name(e.status()), e.message().c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cpp_trainer: %s\n", e.what());
    }
    return 1;
}
