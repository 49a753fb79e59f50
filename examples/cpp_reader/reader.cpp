// reader.cpp — a C++ training pipeline with its own reader that asks thresher only which
// samples to read and how much each one weighs.
//
// thresher runs in index mode (source {"kind": "index", "len": N}): no worker threads, no data,
// just the InfoBatch policy's plan. Each epoch this program takes the whole plan at once
// (Loader::epoch_plan), its own reader threads decode Fashion-MNIST (idx.hpp: its own gzip and
// IDX decoding) into batches ahead of the trainer, and a softmax regression (plain C++, no
// libtorch) steps on mean(w_i * loss_i) and feeds the per-sample losses back. Per batch the
// trainer calls Loader::next, which in index mode only hands out the same ids and weights and
// keeps the loader's position (and so any checkpoint) at the trainer's; with --plan-only it
// skips that and ends each epoch with Loader::end_epoch instead.
//
// It checks what such a pipeline relies on, and exits 1 when any check fails:
//  - every id of the plan is read exactly as often as the plan holds it (once: world_size 1),
//    and no other id is read;
//  - next() hands out the plan's batches, in order, and ends the epoch where the plan does;
//  - each epoch's length and weights follow InfoBatch's rule (docs/policies.md), recomputed
//    here from the losses this program fed back: epoch 0 and the annealing epochs keep all N,
//    a pruned epoch keeps N - round(r * |W|) with W the ids whose last loss is below the mean,
//    the kept members of W weigh 1 / (1 - r) and everything else 1;
//  - the model learns (test accuracy well above chance).
//
// See README.md beside this file.

#include "idx.hpp"
#include "thresher.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
    std::string data = "data/fashion-mnist";
    int epochs = 4;
    std::size_t limit = 0;      // training samples (0: all 60,000)
    std::size_t test_limit = 0; // test samples (0: all 10,000)
    std::size_t batch_size = 64;
    std::size_t readers = 3; // reader threads
    std::size_t depth = 6;   // batches read ahead of the trainer
    double prune = 0.5;
    double lr = 0.05;
    unsigned long seed = 0;
    bool plan_only = false;
};

[[noreturn]] void usage(const char *argv0) {
    std::fprintf(stderr,
                 "usage: %s [--data DIR] [--epochs E] [--limit N] [--test-limit N]\n"
                 "          [--batch-size B] [--readers R] [--depth D] [--prune R] [--lr LR]\n"
                 "          [--seed S] [--plan-only]\n",
                 argv0);
    std::exit(2);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--plan-only") {
            o.plan_only = true;
            continue;
        }
        if (i + 1 >= argc) usage(argv[0]);
        const char *v = argv[++i];
        if (a == "--data") o.data = v;
        else if (a == "--epochs") o.epochs = std::atoi(v);
        else if (a == "--limit") o.limit = std::strtoul(v, nullptr, 10);
        else if (a == "--test-limit") o.test_limit = std::strtoul(v, nullptr, 10);
        else if (a == "--batch-size") o.batch_size = std::strtoul(v, nullptr, 10);
        else if (a == "--readers") o.readers = std::strtoul(v, nullptr, 10);
        else if (a == "--depth") o.depth = std::strtoul(v, nullptr, 10);
        else if (a == "--prune") o.prune = std::atof(v);
        else if (a == "--lr") o.lr = std::atof(v);
        else if (a == "--seed") o.seed = std::strtoul(v, nullptr, 10);
        else usage(argv[0]);
    }
    if (o.epochs < 1 || o.batch_size < 1 || o.readers < 1 || o.depth < 1) usage(argv[0]);
    return o;
}

constexpr int kClasses = 10;
// Fashion-MNIST's pixel mean and standard deviation (of x / 255).
constexpr float kMean = 0.2860f, kStd = 0.3530f;

// ---- the reader: its own threads, reading ahead of the trainer in plan order ---------------

// One batch as the trainer needs it: normalised pixels, labels, and the plan's ids and weights.
struct Slot {
    std::size_t k = 0;
    bool ready = false;
    std::vector<float> x; // [B, pixels]
    std::vector<int> y;
    thresher::PlanBatch plan;
};

// Reads one epoch's plan with `readers` threads into `depth` slots: batch k goes to slot
// k % depth once the trainer has released batch k - depth, so at most `depth` batches are
// read ahead; the trainer takes them strictly in plan order.
class EpochReader {
  public:
    EpochReader(const idx::Dataset &ds, const thresher::EpochPlan &plan, std::size_t batch_size,
                std::size_t readers, std::size_t depth, std::vector<std::atomic<unsigned>> &reads)
        : ds_(ds), plan_(plan), batch_size_(batch_size), reads_(reads), slots_(depth) {
        for (std::size_t r = 0; r < readers; r++) threads_.emplace_back([this] { run(); });
    }
    EpochReader(const EpochReader &) = delete;
    EpochReader &operator=(const EpochReader &) = delete;
    ~EpochReader() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto &t : threads_) t.join();
    }

    // Batch k, once read (valid until release(k)). Throws what a reader threw.
    const Slot &wait(std::size_t k) {
        std::unique_lock<std::mutex> lock(m_);
        Slot &s = slots_[k % slots_.size()];
        cv_.wait(lock, [&] { return error_ || (s.ready && s.k == k); });
        if (error_) std::rethrow_exception(error_);
        return s;
    }
    void release(std::size_t k) {
        {
            std::lock_guard<std::mutex> lock(m_);
            slots_[k % slots_.size()].ready = false;
            released_ = k + 1;
        }
        cv_.notify_all();
    }

  private:
    void run() {
        try {
            for (;;) {
                std::size_t k;
                {
                    std::unique_lock<std::mutex> lock(m_);
                    cv_.wait(lock, [&] {
                        return stop_ || next_ >= plan_.batches() ||
                               next_ < released_ + slots_.size();
                    });
                    if (stop_ || next_ >= plan_.batches()) return;
                    k = next_++;
                }
                // Slot k % depth is this thread's until it is marked ready.
                Slot &s = slots_[k % slots_.size()];
                fill(s, k);
                {
                    std::lock_guard<std::mutex> lock(m_);
                    s.k = k;
                    s.ready = true;
                }
                cv_.notify_all();
            }
        } catch (...) {
            {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = std::current_exception();
            }
            cv_.notify_all();
        }
    }

    void fill(Slot &s, std::size_t k) const {
        s.plan = plan_.batch(k, batch_size_);
        const std::size_t n = s.plan.ids.size(), px = ds_.pixels_per_image();
        s.x.resize(n * px);
        s.y.resize(n);
        for (std::size_t i = 0; i < n; i++) {
            const std::uint64_t id = s.plan.ids[i];
            if (id >= ds_.n) throw std::runtime_error("the plan holds id " + std::to_string(id) +
                                                      " of " + std::to_string(ds_.n));
            reads_[id].fetch_add(1, std::memory_order_relaxed);
            const std::uint8_t *img = ds_.image(id);
            float *dst = &s.x[i * px];
            for (std::size_t j = 0; j < px; j++)
                dst[j] = (static_cast<float>(img[j]) / 255.0f - kMean) / kStd;
            s.y[i] = ds_.labels[id];
        }
    }

    const idx::Dataset &ds_;
    const thresher::EpochPlan &plan_;
    const std::size_t batch_size_;
    std::vector<std::atomic<unsigned>> &reads_;
    std::vector<Slot> slots_;
    std::mutex m_;
    std::condition_variable cv_;
    std::size_t next_ = 0, released_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
    std::vector<std::thread> threads_;
};

// ---- the model: softmax regression, trained on mean(w_i * loss_i) ---------------------------

struct Model {
    std::size_t dim;
    std::vector<float> w, b; // [classes, dim], [classes]

    explicit Model(std::size_t d) : dim(d), w(kClasses * d, 0.0f), b(kClasses, 0.0f) {}

    // Softmax probabilities of one sample into p; returns the predicted class.
    int forward(const float *x, float *p) const {
        int best = 0;
        for (int c = 0; c < kClasses; c++) {
            float z = b[c];
            const float *wc = &w[static_cast<std::size_t>(c) * dim];
            for (std::size_t j = 0; j < dim; j++) z += wc[j] * x[j];
            p[c] = z;
            if (z > p[best]) best = c;
        }
        const float maxz = p[best];
        float sum = 0.0f;
        for (int c = 0; c < kClasses; c++) {
            p[c] = std::exp(p[c] - maxz);
            sum += p[c];
        }
        for (int c = 0; c < kClasses; c++) p[c] /= sum;
        return best;
    }

    // One SGD step on mean_i(weight_i * cross_entropy_i); per-sample losses and correctness
    // (before the step) into loss/correct.
    void step(const Slot &s, double lr, std::vector<float> &loss,
              std::vector<std::uint8_t> &correct) {
        const std::size_t n = s.y.size();
        std::vector<float> gw(w.size(), 0.0f), gb(kClasses, 0.0f);
        loss.resize(n);
        correct.resize(n);
        float p[kClasses];
        for (std::size_t i = 0; i < n; i++) {
            const float *x = &s.x[i * dim];
            const int pred = forward(x, p);
            loss[i] = -std::log(std::max(p[s.y[i]], 1e-30f));
            correct[i] = pred == s.y[i];
            const float scale = s.plan.weights[i] / static_cast<float>(n);
            for (int c = 0; c < kClasses; c++) {
                const float g = scale * (p[c] - (c == s.y[i] ? 1.0f : 0.0f));
                gb[c] += g;
                float *gwc = &gw[static_cast<std::size_t>(c) * dim];
                for (std::size_t j = 0; j < dim; j++) gwc[j] += g * x[j];
            }
        }
        for (std::size_t j = 0; j < w.size(); j++) w[j] -= static_cast<float>(lr) * gw[j];
        for (int c = 0; c < kClasses; c++) b[c] -= static_cast<float>(lr) * gb[c];
    }

    double accuracy(const idx::Dataset &test) const {
        std::vector<float> x(dim);
        float p[kClasses];
        std::size_t right = 0;
        for (std::size_t i = 0; i < test.n; i++) {
            const std::uint8_t *img = test.image(i);
            for (std::size_t j = 0; j < dim; j++)
                x[j] = (static_cast<float>(img[j]) / 255.0f - kMean) / kStd;
            right += forward(x.data(), p) == test.labels[i];
        }
        return test.n ? static_cast<double>(right) / static_cast<double>(test.n) : 0.0;
    }
};

// ---- InfoBatch, recomputed from the losses fed back (docs/policies.md, "infobatch") ---------

// floor/round as the policy computes them: x nudged up by 1e-12|x| + 1e-9 first.
double nudge(double x) { return x + 1e-12 * std::fabs(x) + 1e-9; }

struct Expected {
    std::size_t samples_lo, samples_hi; // a range only when a loss lies at the mean's rounding
    double mean;
    double kept_weight;
};

// What epoch `epoch`'s plan must hold, from each sample's last loss fed back (NaN: never).
Expected infobatch_expectation(const std::vector<float> &last_loss, int epoch, int epochs,
                               double prune) {
    const std::size_t n = last_loss.size();
    const auto annealed = static_cast<int>(std::floor(nudge(0.875 * epochs)));
    Expected e{n, n, NAN, 1.0 / (1.0 - prune)};
    double sum = 0.0;
    std::size_t seen = 0;
    for (float l : last_loss)
        if (std::isfinite(l)) {
            sum += l;
            seen++;
        }
    if (seen == 0 || epoch >= annealed) return e;
    e.mean = sum / static_cast<double>(seen);
    // |W|: strictly below the mean; a loss within rounding of the mean could go either way.
    std::size_t below = 0, near = 0;
    for (float l : last_loss) {
        if (!std::isfinite(l)) continue;
        if (std::fabs(l - e.mean) <= 1e-9 * std::fabs(e.mean)) near++;
        else if (l < e.mean) below++;
    }
    auto dropped = [&](std::size_t w) {
        const double x = nudge(prune * static_cast<double>(w));
        return std::min(w, static_cast<std::size_t>(std::floor(x + 0.5))); // halves up
    };
    e.samples_hi = n - dropped(below);
    e.samples_lo = n - dropped(below + near);
    return e;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool g_ok = true;

void fail(const char *what, int epoch) {
    std::fprintf(stderr, "cpp_reader: epoch %d: CHECK FAILED: %s\n", epoch, what);
    g_ok = false;
}

int run(const Options &o) {
    thresher::check_abi();
    const auto t_start = std::chrono::steady_clock::now();
    const idx::Dataset train = idx::load_dataset(o.data + "/train-images-idx3-ubyte.gz",
                                                 o.data + "/train-labels-idx1-ubyte.gz", o.limit);
    const idx::Dataset test =
        idx::load_dataset(o.data + "/t10k-images-idx3-ubyte.gz",
                          o.data + "/t10k-labels-idx1-ubyte.gz", o.test_limit);
    const std::size_t n = train.n;
    std::printf("cpp_reader: libthresher %s; decoded %zu training and %zu test images (%zux%zu) "
                "in %.2f s; %zu reader threads, %zu batches ahead%s\n",
                thresher::version(), n, test.n, train.rows, train.cols, seconds_since(t_start),
                o.readers, o.depth, o.plan_only ? ", plan only (end_epoch)" : ", next per batch");

    thresher::Loader loader("{\"source\": {\"kind\": \"index\", \"len\": " + std::to_string(n) +
                            "}, \"batch_size\": " + std::to_string(o.batch_size) +
                            ", \"seed\": " + std::to_string(o.seed) +
                            ", \"policy\": {\"kind\": \"infobatch\", \"prune\": " +
                            std::to_string(o.prune) + ", \"epochs\": " +
                            std::to_string(o.epochs) + "}}");
    Model model(train.pixels_per_image());
    std::vector<float> last_loss(n, NAN); // what InfoBatch's ScoreBook holds (loss_last)
    std::vector<std::atomic<unsigned>> reads(n);
    std::vector<unsigned> in_plan(n);
    std::vector<float> loss;
    std::vector<std::uint8_t> correct;
    double first_acc = 0.0, acc = 0.0;

    for (int epoch = 0; epoch < o.epochs; epoch++) {
        const auto t0 = std::chrono::steady_clock::now();
        const Expected want = infobatch_expectation(last_loss, epoch, o.epochs, o.prune);
        const thresher::EpochPlan plan = loader.epoch_plan();

        // The plan against InfoBatch's rule.
        if (plan.epoch() != static_cast<std::uint64_t>(epoch)) fail("the plan's epoch", epoch);
        if (plan.size() < want.samples_lo || plan.size() > want.samples_hi) {
            std::fprintf(stderr, "  plan keeps %zu, InfoBatch says %zu..%zu\n", plan.size(),
                         want.samples_lo, want.samples_hi);
            fail("epoch length", epoch);
        }
        if (plan.batches() != (plan.size() + o.batch_size - 1) / o.batch_size)
            fail("batch count", epoch);
        // W: the ids whose last loss is below the mean (none when the epoch is not pruned); a
        // loss within rounding of the mean may go either way.
        auto in_w = [&](float l) { return std::isfinite(want.mean) && l < want.mean; };
        auto near = [&](float l) {
            return std::isfinite(want.mean) &&
                   std::fabs(l - want.mean) <= 1e-9 * std::fabs(want.mean);
        };
        std::fill(in_plan.begin(), in_plan.end(), 0u);
        std::size_t bad_weights = 0, bad_drops = 0;
        for (std::size_t i = 0; i < plan.size(); i++) {
            const std::uint64_t id = plan.ids()[i];
            if (id >= n) {
                fail("an id out of range", epoch);
                break;
            }
            in_plan[id]++;
            const float l = last_loss[id];
            const float w = in_w(l) ? static_cast<float>(want.kept_weight) : 1.0f;
            if (plan.weights()[i] != w && !near(l)) bad_weights++;
        }
        for (std::size_t id = 0; id < n; id++)
            if (in_plan[id] == 0 && !in_w(last_loss[id]) && !near(last_loss[id])) bad_drops++;
        if (bad_weights)
            fail("weights other than 1/(1-r) on kept below-mean ids, 1 elsewhere", epoch);
        if (bad_drops) fail("a sample not below the mean was dropped", epoch);

        // Read and train.
        for (auto &r : reads) r.store(0, std::memory_order_relaxed);
        double loss_sum = 0.0;
        std::size_t right = 0, seen = 0, next_mismatch = 0;
        {
            EpochReader reader(train, plan, o.batch_size, o.readers, o.depth, reads);
            for (std::size_t k = 0; k < plan.batches(); k++) {
                const Slot &s = reader.wait(k);
                model.step(s, o.lr, loss, correct);
                const std::size_t real = s.plan.ids.size() - s.plan.padding;
                loader.feedback(real, s.plan.ids.data(), loss.data(), nullptr, nullptr,
                                correct.data());
                for (std::size_t i = 0; i < real; i++) {
                    last_loss[s.plan.ids[i]] = loss[i];
                    loss_sum += loss[i];
                    right += correct[i];
                }
                seen += real;
                if (!o.plan_only) {
                    // Keeps the loader's position at the trainer's: checkpoints are exact.
                    std::optional<thresher::Batch> b = loader.next();
                    if (!b || b->has_data() || b->size() != s.plan.ids.size() ||
                        !std::equal(b->ids().begin(), b->ids().end(), s.plan.ids.begin()) ||
                        !std::equal(b->weights().begin(), b->weights().end(),
                                    s.plan.weights.begin()))
                        next_mismatch++;
                }
                reader.release(k);
            }
        }
        if (o.plan_only) loader.end_epoch();
        else if (loader.next()) fail("next() has more batches than the plan", epoch);
        if (next_mismatch) fail("next() handed out other batches than the plan", epoch);

        std::size_t wrong_reads = 0;
        for (std::size_t id = 0; id < n; id++)
            wrong_reads += reads[id].load(std::memory_order_relaxed) != in_plan[id];
        if (wrong_reads) fail("a sample was read other than once per plan entry", epoch);

        const thresher::EpochReport r = loader.report();
        if (r.epoch != static_cast<std::uint64_t>(epoch) || r.samples != plan.size() ||
            r.delivered != (o.plan_only ? 0 : plan.batches()))
            fail("the report", epoch);
        acc = model.accuracy(test);
        if (epoch == 0) first_acc = acc;
        // With the plan alone, next() handed nothing out, so end_epoch counted the whole epoch
        // as not visited: the report's saved fraction means nothing then.
        char saved[64];
        if (o.plan_only) std::snprintf(saved, sizeof saved, "n/a without next()");
        else std::snprintf(saved, sizeof saved, "%.1f%%", 100.0 * r.saved_fraction);
        std::printf("epoch %d: kept %zu of %zu (%.1f%% pruned; InfoBatch: %zu..%zu), %zu batches, "
                    "every kept sample read once: %s; loss %.4f, train acc %.4f, test acc %.4f; "
                    "visits saved so far %s; %.2f s\n",
                    epoch, plan.size(), n, 100.0 * r.prune_fraction, want.samples_lo,
                    want.samples_hi, plan.batches(), wrong_reads ? "NO" : "yes",
                    seen ? loss_sum / static_cast<double>(seen) : NAN,
                    seen ? static_cast<double>(right) / static_cast<double>(seen) : 0.0, acc,
                    saved, seconds_since(t0));
        std::fflush(stdout);
    }
    if (!o.plan_only && std::floor(nudge(0.875 * o.epochs)) >= 2.0 &&
        loader.report().saved_fraction <= 0.0)
        fail("InfoBatch saved nothing", o.epochs - 1);
    if (acc < 0.6) fail("test accuracy below 0.6", o.epochs - 1);
    std::printf("cpp_reader: %s after %d epochs in %.1f s (test accuracy %.4f -> %.4f)\n",
                g_ok ? "ok" : "FAILED", o.epochs, seconds_since(t_start), first_acc, acc);
    return g_ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(parse(argc, argv));
    } catch (const thresher::Error &e) {
        std::fprintf(stderr, "cpp_reader: thresher error %s: %s\n",
                     thresher::status_name(e.status()), e.message().c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cpp_reader: %s\n", e.what());
    }
    return 1;
}
