// thresher.hpp — a header-only C++17 RAII wrapper over the thresher C API (thresher.h).
//
// Modelled on wasmtime's wasmtime.hh: every C handle has one owning, move-only C++ type whose
// destructor frees it; every failing C call becomes a thresher::Error carrying the status and
// the thread's thresher_last_error() message; borrowed arrays are exposed as spans whose
// lifetime is the owning object's. Nothing here allocates on the hot path except what the C
// API does itself, and nothing is copied: spans and views point into the batch's memory.
//
// Usage:
//
//     thresher::Loader loader(R"({"source": {"kind": "idx", "images": "...", "labels": "..."},
//                                 "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 10}})");
//     for (int e = 0; e < 10; e++) {
//         for (auto& batch : loader.epoch()) {          // one epoch, batches in plan order
//             thresher::Tensor x = batch.data();        // [B,C,H,W] f32, lent by the batch
//             std::vector<float> loss = forward(x.as<float>(), batch.labels());
//             // ... minimise mean(batch.weights()[i] * loss[i]) ...
//             loader.feedback(batch.ids(), loss);
//         }                                             // each batch is released here
//     }
//
// Index mode (config source {"kind": "index", "len": N}): a pipeline with its own reader asks
// thresher for ids and weights only. Batches then have no data (Batch::has_data() is false,
// data() throws Error(THRESHER_STATE)); Loader::epoch_plan() gives the whole epoch at once:
//
//     thresher::Loader loader(R"({"source": {"kind": "index", "len": 60000}, "batch_size": 256,
//                                 "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 10}})");
//     thresher::EpochPlan plan = loader.epoch_plan();   // this rank's epoch, batch 0 first
//     for (std::size_t k = 0; k < plan.batches(); k++) {
//         thresher::PlanBatch b = plan.batch(k, 256);   // ids and weights of batch k
//         // ... read b.ids yourself, step on mean(b.weights[i] * loss[i]), feed back ...
//         loader.advance(1);                            // keeps checkpoints exact (cheap)
//     }
//     loader.end_epoch();
//
// Thread-safety is that of the C API (see thresher.h): Loader::next / epoch iteration from one
// thread at a time; feedback, epoch_info, epoch_plan, advance, end_epoch, report, save_scores,
// save_state and save_state_at from any thread; a Batch or EpochPlan may be read and destroyed
// on any thread, also after its Loader is gone.
//
// Link with libthresher (static: also -lpthread -ldl -lm). Requires C++17; under C++20,
// thresher::span and std::span convert into each other implicitly (both are contiguous ranges
// with data() and size()).

#ifndef THRESHER_HPP
#define THRESHER_HPP

#include "thresher.h"

// The parts (installed beside this file, under thresher/): errors, versions and span; the plain
// C structs, Tensor and Batch; EpochPlan. This file adds Epoch, Feedback and Loader.
#include "thresher/support.hpp"
#include "thresher/batch.hpp"
#include "thresher/epoch_plan.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace thresher {

// ---- Loader ---------------------------------------------------------------------------------

class Loader;

/// One epoch of a loader as an input range: `for (auto& batch : loader.epoch())` takes batches
/// with `LoaderT::next` (which returns std::optional<BatchT>) until THRESHER_END_OF_EPOCH. Each
/// batch is released when the iterator advances (move it out to keep it longer). Once begin()
/// has the first batch, `LoaderT::warn_if_unlearnable()` runs: the loader's warning handler
/// hears when the epoch's plan keeps many samples that look unlearnable. Leaving the
/// loop early leaves the loader mid-epoch: the next epoch() continues the same epoch, unless
/// end_epoch() abandons the rest. A failed batch (THRESHER_IO/FORMAT) throws Error from begin()
/// or ++; the loader has skipped it, so iteration may be resumed with epoch(). One template for
/// thresher::Loader (`thresher::Epoch`) and thresher::torch::Loader.
template <class LoaderT, class BatchT> class BasicEpoch {
  public:
    struct sentinel {};
    class iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = BatchT;
        using difference_type = std::ptrdiff_t;
        using pointer = BatchT *;
        using reference = BatchT &;

        iterator() = default;
        BatchT &operator*() noexcept { return *current_; }
        BatchT *operator->() noexcept { return &*current_; }
        iterator &operator++() {
            // Release the previous batch before waiting for the next one, so the loader's pool
            // can reuse its memory (and the sentinel compares equal if next() throws).
            current_.reset();
            current_ = loader_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator &it, sentinel) noexcept { return !it.current_; }
        friend bool operator!=(const iterator &it, sentinel s) noexcept { return !(it == s); }
        friend bool operator==(sentinel s, const iterator &it) noexcept { return it == s; }
        friend bool operator!=(sentinel s, const iterator &it) noexcept { return !(it == s); }

      private:
        friend class BasicEpoch;
        explicit iterator(LoaderT *loader) : loader_(loader) {
            ++*this;
            if (current_) loader_->warn_if_unlearnable();
        }
        LoaderT *loader_ = nullptr;
        std::optional<BatchT> current_;
    };

    explicit BasicEpoch(LoaderT &loader) noexcept : loader_(&loader) {}
    /// Takes the first batch (so the range may be begun once).
    iterator begin() { return iterator(loader_); }
    sentinel end() const noexcept { return {}; }

  private:
    LoaderT *loader_;
};

/// One epoch of a thresher::Loader (see BasicEpoch).
using Epoch = BasicEpoch<Loader, Batch>;

/// Per-sample feedback for one step, as spans; the optional fields are empty when absent.
/// Every non-empty field holds ids.size() elements (embedding: ids.size() * embedding_dim).
struct Feedback {
    span<const std::uint64_t> ids;
    span<const float> loss;
    span<const float> grad_norm;
    span<const float> el2n;
    span<const std::uint8_t> correct;
    span<const float> embedding;
    std::size_t embedding_dim = 0;
};

/// Receives a loader's warnings as one line of text. Today there is one: an epoch's plan keeps
/// more than THRESHER_UNLEARNABLE_WARNING of its samples that look unlearnable (the labels may
/// be noisy). The default prints "thresher: warning: ..." to stderr.
using WarningHandler = std::function<void(const std::string &)>;

namespace detail {
inline void print_warning(const std::string &message) {
    std::fprintf(stderr, "thresher: warning: %s\n", message.c_str());
}
} // namespace detail

/// A thresher loader: worker threads, prefetched batches, the ScoreBook and the pruning
/// policy. Move-only; the destructor stops the workers (thresher_loader_free: within a second,
/// detaching one stuck in a read), also while batches are still lent out (they stay valid). A moved-from Loader is empty, and every
/// call on it throws Error(THRESHER_INVALID_ARGUMENT).
class Loader {
  public:
    /// Creates a loader from a JSON config (see README: source, batch_size, policy, ...).
    /// Throws Error: THRESHER_INVALID_ARGUMENT naming a bad or unknown key, THRESHER_IO /
    /// THRESHER_FORMAT naming a dataset or checkpoint path.
    explicit Loader(const std::string &config_json) {
        detail::check(thresher_loader_new(config_json.c_str(), &raw_));
    }
    explicit Loader(const char *config_json) {
        detail::check(thresher_loader_new(config_json, &raw_));
    }
    /// Takes ownership of a handle from thresher_loader_new.
    static Loader adopt(thresher_loader *raw) noexcept { return Loader(raw, adopt_tag{}); }

    Loader(const Loader &) = delete;
    Loader &operator=(const Loader &) = delete;
    Loader(Loader &&other) noexcept
        : raw_(std::exchange(other.raw_, nullptr)), warn_(std::move(other.warn_)),
          warned_epoch_(other.warned_epoch_) {}
    Loader &operator=(Loader &&other) noexcept {
        if (this != &other) {
            reset();
            raw_ = std::exchange(other.raw_, nullptr);
            warn_ = std::move(other.warn_);
            warned_epoch_ = other.warned_epoch_;
        }
        return *this;
    }
    ~Loader() { reset(); }

    /// Frees the loader now (no-op when empty). Lent batches stay valid.
    void reset() noexcept {
        thresher_loader_free(raw_);
        raw_ = nullptr;
    }
    /// The C handle, still owned by this Loader.
    thresher_loader *get() const noexcept { return raw_; }
    explicit operator bool() const noexcept { return raw_ != nullptr; }

    /// The next batch of the current epoch, or std::nullopt at the end of the epoch (the call
    /// after that starts the next epoch). Throws Error when a sample failed to load (the batch
    /// is skipped; the next call continues) or on an empty Loader. One thread at a time.
    std::optional<Batch> next() {
        thresher_batch *b = nullptr;
        thresher_status s = thresher_loader_next(raw_, &b);
        if (s == THRESHER_END_OF_EPOCH) return std::nullopt;
        detail::check(s);
        return std::optional<Batch>(std::in_place, b);
    }

    /// The current epoch as a range: `for (auto& batch : loader.epoch())`.
    Epoch epoch() noexcept { return Epoch(*this); }

    /// Sends one step's per-sample feedback (validated whole; nothing is applied on error).
    /// Thread-safe. Throws Error(THRESHER_INVALID_ARGUMENT) naming the offending field/index.
    void feedback(const Feedback &fb) {
        const std::size_t n = fb.ids.size();
        check_len("loss", fb.loss.size(), n, false);
        check_len("grad_norm", fb.grad_norm.size(), n, true);
        check_len("el2n", fb.el2n.size(), n, true);
        check_len("correct", fb.correct.size(), n, true);
        if (!fb.embedding.empty() && fb.embedding.size() != n * fb.embedding_dim)
            throw Error(THRESHER_INVALID_ARGUMENT,
                        "feedback: embedding has " + std::to_string(fb.embedding.size()) +
                            " elements, expected ids.size() * embedding_dim = " +
                            std::to_string(n * fb.embedding_dim));
        thresher_feedback c{};
        c.len = n;
        c.ids = fb.ids.data();
        c.loss = fb.loss.data();
        c.grad_norm = opt(fb.grad_norm);
        c.el2n = opt(fb.el2n);
        c.correct = opt(fb.correct);
        c.embedding = opt(fb.embedding);
        c.embedding_dim = fb.embedding.empty() ? 0 : fb.embedding_dim;
        feedback(c);
    }
    /// Spans: loss has ids.size() elements; each optional span is empty or as long as ids
    /// (embedding: ids.size() * embedding_dim). Any contiguous container converts.
    void feedback(span<const std::uint64_t> ids, span<const float> loss,
                  span<const float> grad_norm = {}, span<const float> el2n = {},
                  span<const std::uint8_t> correct = {}, span<const float> embedding = {},
                  std::size_t embedding_dim = 0) {
        feedback(Feedback{ids, loss, grad_norm, el2n, correct, embedding, embedding_dim});
    }
    /// Pointers: `n` samples; optional arrays may be nullptr (as in thresher_feedback).
    void feedback(std::size_t n, const std::uint64_t *ids, const float *loss,
                  const float *grad_norm = nullptr, const float *el2n = nullptr,
                  const std::uint8_t *correct = nullptr, const float *embedding = nullptr,
                  std::size_t embedding_dim = 0) {
        thresher_feedback c{};
        c.len = n;
        c.ids = ids;
        c.loss = loss;
        c.grad_norm = grad_norm;
        c.el2n = el2n;
        c.correct = correct;
        c.embedding = embedding;
        c.embedding_dim = embedding_dim;
        feedback(c);
    }
    /// The C struct as is.
    void feedback(const thresher_feedback &fb) {
        detail::check(thresher_loader_feedback(raw_, &fb));
    }

    /// The current epoch's plan; right after the end of an epoch, the next epoch's (so its
    /// length is known before its first batch): made when the last batch was handed out, or
    /// with config `"plan_ahead": false` made by this call. Thread-safe.
    EpochInfo epoch_info() const {
        EpochInfo info;
        detail::check(thresher_loader_epoch_info(raw_, &info));
        return info;
    }
    /// The run's total batches on this rank, known before training (for schedules that need
    /// the step count up front): exact under the policy key `budget`, and for `full` and
    /// `random` with `epochs`; throws (THRESHER_STATE) when it depends on feedback.
    /// Thread-safe.
    std::uint64_t total_batches() const {
        std::uint64_t n = 0;
        detail::check(thresher_loader_total_batches(raw_, &n));
        return n;
    }
    /// The fraction of the current (or last) epoch's kept samples that look unlearnable (wrong
    /// at each of their last `guard_window` correctness reports); NaN when not tracked. A high
    /// value warns that labels may be noisy. Thread-safe.
    double unlearnable_fraction() const {
        double f = 0;
        detail::check(thresher_loader_unlearnable_fraction(raw_, &f));
        return f;
    }
    /// Replaces the handler of this loader's warnings (see WarningHandler); an empty one
    /// silences them. Not thread-safe against iteration: set it before the first epoch.
    void set_warning_handler(WarningHandler handler) { warn_ = std::move(handler); }
    /// Calls the warning handler, at most once per epoch, when the current epoch's plan keeps
    /// more than `threshold` (a fraction) of samples that look unlearnable. epoch() iteration
    /// calls it once it has the epoch's first batch; a loop over next() may call it itself.
    /// Throws what unlearnable_fraction() and the handler throw. From the iterating thread.
    void warn_if_unlearnable(double threshold = THRESHER_UNLEARNABLE_WARNING) {
        const double f = unlearnable_fraction();
        if (!(f > threshold) || !warn_) return;  // NaN (not tracked) never warns
        const std::uint64_t e = report().epoch;
        if (warned_epoch_ == e) return;
        warned_epoch_ = e;
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.1f", 100.0 * f);
        warn_(std::string(pct) + "% of epoch " + std::to_string(e) +
              "'s kept samples look unlearnable (misclassified at each of their last reports): "
              "the labels may be noisy, and a policy that keeps hard samples may be fitting "
              "them (keep `noise_guard` on)");
    }
    /// The current epoch so far, or the one that just ended. Thread-safe.
    EpochReport report() const {
        EpochReport r;
        detail::check(thresher_loader_report(raw_, &r));
        return r;
    }
    /// Digests of the current (or last) epoch's global plan and of the ScoreBook: compare them
    /// across ranks once an epoch. Thread-safe; hashes the whole ScoreBook.
    Digest digest() const {
        Digest d;
        detail::check(thresher_loader_digest(raw_, &d));
        return d;
    }
    /// Writes the per-sample scores (score-file format, atomic). Throws Error(THRESHER_IO)
    /// naming the path.
    void save_scores(const std::string &path) const {
        detail::check(thresher_loader_save_scores(raw_, path.c_str()));
    }
    /// Writes a checkpoint (atomic); a Loader made with the same config plus
    /// "resume_from": path continues exactly here. Throws Error(THRESHER_IO) naming the path.
    void save_state(const std::string &path) const {
        detail::check(thresher_loader_save_state(raw_, path.c_str()));
    }
    /// Writes a checkpoint as if only the first `batches` batches of this rank's latest epoch
    /// (the one under way or, between epochs, the one that just ended) had been handed out: for
    /// a reader that fetches ahead of the trainer. Resuming from it yields batch `batches` of
    /// that epoch next. Throws Error: THRESHER_INVALID_ARGUMENT when `batches` exceeds what
    /// was handed out, THRESHER_STATE before any epoch, THRESHER_IO naming the path; nothing is
    /// written then.
    void save_state_at(const std::string &path, std::uint64_t batches) const {
        detail::check(thresher_loader_save_state_at(raw_, path.c_str(), batches));
    }

    /// This rank's whole epoch under way, from its batch 0 (right after the end of an epoch:
    /// the next epoch's, like epoch_info()), for a reader that schedules its own reads. It does not move
    /// the position: in index mode, call advance() as batches are consumed (or next() per
    /// batch) to keep reports and checkpoints exact, and end_epoch() to leave the epoch early.
    /// Thread-safe.
    EpochPlan epoch_plan() const {
        thresher_epoch_plan *p = nullptr;
        detail::check(thresher_loader_epoch_plan(raw_, &p));
        return EpochPlan(p);
    }
    /// Ends the epoch under way now, as if next() had reached its end: the batches not handed
    /// out yet are abandoned (not visited; no feedback expected), feedback already given stays,
    /// the epoch's report is written, and the next next() begins the next epoch. For leaving
    /// `for (auto& batch : loader.epoch())` early, or after reading an epoch through
    /// epoch_plan(). A no-op between epochs. Throws Error(THRESHER_IO) when the report line
    /// cannot be written (the epoch is ended anyway). Thread-safe.
    void end_epoch() { detail::check(thresher_loader_end_epoch(raw_)); }
    /// Index mode only: counts `batches` more batches of the epoch under way as handed out,
    /// without building them, for a reader that consumed them from epoch_plan(): report()
    /// (`delivered`, `saved_fraction`) and checkpoints then see its real position. Begins the
    /// next epoch first when the last one has ended; next() continues after them (std::nullopt
    /// once none is left). Reaching the last batch hands it out, which makes the next epoch's
    /// plan (config `plan_ahead`): advance only as far as the trainer has consumed. Throws Error: THRESHER_INVALID_ARGUMENT when fewer than `batches`
    /// are left (nothing changes), THRESHER_STATE for a loader with data. Thread-safe.
    void advance(std::uint64_t batches) {
        detail::check(thresher_loader_advance(raw_, batches));
    }

  private:
    struct adopt_tag {};
    Loader(thresher_loader *raw, adopt_tag) noexcept : raw_(raw) {}

    static void check_len(const char *name, std::size_t got, std::size_t want, bool optional) {
        if (got == want || (optional && got == 0)) return;
        throw Error(THRESHER_INVALID_ARGUMENT,
                    std::string("feedback: ") + name + " has " + std::to_string(got) +
                        " elements, ids has " + std::to_string(want));
    }
    template <class T> static const T *opt(span<const T> s) noexcept {
        return s.empty() ? nullptr : s.data();
    }

    thresher_loader *raw_ = nullptr;
    WarningHandler warn_ = detail::print_warning;
    std::uint64_t warned_epoch_ = UINT64_MAX;
};

} // namespace thresher

#endif // THRESHER_HPP
