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

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace thresher {

// ---- errors ---------------------------------------------------------------------------------

/// The name of a status value, e.g. "THRESHER_IO". Never fails.
inline const char *status_name(thresher_status s) noexcept {
    switch (s) {
    case THRESHER_OK: return "THRESHER_OK";
    case THRESHER_END_OF_EPOCH: return "THRESHER_END_OF_EPOCH";
    case THRESHER_INVALID_ARGUMENT: return "THRESHER_INVALID_ARGUMENT";
    case THRESHER_IO: return "THRESHER_IO";
    case THRESHER_FORMAT: return "THRESHER_FORMAT";
    case THRESHER_STATE: return "THRESHER_STATE";
    case THRESHER_PANIC: return "THRESHER_PANIC";
    }
    return "THRESHER_UNKNOWN_STATUS";
}

/// This thread's last thresher error message ("" when no call on this thread has failed).
/// Sized by a first call, so long messages (paths) are never truncated.
inline std::string last_error() {
    std::string msg(thresher_last_error(nullptr, 0), '\0');
    if (!msg.empty()) {
        // The message may only have grown if another call failed in between on this thread,
        // which cannot happen here; resize to what was actually copied either way.
        size_t n = thresher_last_error(&msg[0], msg.size() + 1);
        msg.resize(n < msg.size() ? n : msg.size());
    }
    return msg;
}

/// A failed thresher call: status() is the C status, message() the library's message (naming
/// the config key, file path, sample id or array index), what() both.
class Error : public std::runtime_error {
  public:
    Error(thresher_status status, std::string message)
        : std::runtime_error(std::string(status_name(status)) + ": " + message),
          status_(status), message_(std::move(message)) {}

    /// The C status (never THRESHER_OK or THRESHER_END_OF_EPOCH).
    thresher_status status() const noexcept { return status_; }
    /// The message without the status prefix.
    const std::string &message() const noexcept { return message_; }

  private:
    thresher_status status_;
    std::string message_;
};

namespace detail {
/// Throws thresher::Error for anything but THRESHER_OK. The message is read at once, on the
/// failing thread, before any other thresher call can overwrite it.
inline void check(thresher_status s) {
    if (s != THRESHER_OK) throw Error(s, last_error());
}
} // namespace detail

// ---- versions -------------------------------------------------------------------------------

/// The linked library's version string (equal to THRESHER_VERSION when header and library match).
inline const char *version() noexcept { return thresher_version(); }

/// Throws Error(THRESHER_STATE) when the linked library's ABI differs from this header's.
inline void check_abi() {
    if (thresher_abi_version() != THRESHER_ABI_VERSION)
        throw Error(THRESHER_STATE, "libthresher ABI " + std::to_string(thresher_abi_version()) +
                                        " does not match thresher.h ABI " +
                                        std::to_string(THRESHER_ABI_VERSION));
}

// ---- span -----------------------------------------------------------------------------------

/// A minimal non-owning view of `size()` contiguous `T`s (std::span's subset that C++17 lacks).
/// It never owns memory: a span from a Batch is valid as long as that Batch is.
template <class T> class span {
    // Only qualification conversions (U -> const U), as std::span allows; never derived-to-base
    // or integer conversions, which would reinterpret memory.
    template <class U>
    using compatible = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value, int>;
    template <class C>
    using element_of = std::remove_pointer_t<decltype(std::declval<C &>().data())>;

  public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using size_type = std::size_t;
    using pointer = T *;
    using reference = T &;
    using iterator = T *;

    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class U, std::size_t N, compatible<U> = 0>
    constexpr span(U (&array)[N]) noexcept : data_(array), size_(N) {}
    /// From any contiguous container with data() and size() (std::vector, std::array, span<U>,
    /// std::span in C++20).
    template <class C, class U = element_of<C>, compatible<U> = 0,
              class = decltype(std::declval<C &>().size())>
    constexpr span(C &c) noexcept(noexcept(c.data())) : data_(c.data()), size_(c.size()) {}
    template <class C, class U = element_of<const C>, compatible<U> = 0,
              class = decltype(std::declval<const C &>().size())>
    constexpr span(const C &c) noexcept(noexcept(c.data())) : data_(c.data()), size_(c.size()) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    /// Unchecked, like std::span.
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Checked: throws std::out_of_range.
    T &at(std::size_t i) const {
        if (i >= size_) throw std::out_of_range("thresher::span::at: index out of range");
        return data_[i];
    }
    constexpr T &front() const noexcept { return data_[0]; }
    constexpr T &back() const noexcept { return data_[size_ - 1]; }

  private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

// ---- plain data -----------------------------------------------------------------------------

/// The plan of the current (or, right after the end of an epoch, the next) epoch.
using EpochInfo = thresher_epoch_info;
/// What the current or just-ended epoch kept and cost (see thresher_loader_report).
using EpochReport = thresher_epoch_report;
/// Digests of the rank-independent state (see thresher_loader_digest): equal on agreeing ranks.
using Digest = thresher_digest;
/// Which array of a batch to export through DLPack.
using Field = thresher_field;
/// Element type of a batch's data.
using DType = thresher_dtype;

/// A view of a batch's data (thresher_tensor): pointer, dtype and shape, contiguous row-major,
/// 64-byte aligned. It borrows from its Batch: valid while that Batch is alive. The view may be
/// copied; shape() points into the view itself, so keep the view while using its shape.
class Tensor {
  public:
    Tensor() noexcept : t_() {}
    explicit Tensor(const thresher_tensor &t) noexcept : t_(t) {}

    /// The first byte, owned by the batch (readable and writable in place, never freed by you).
    void *data() const noexcept { return t_.data; }
    DType dtype() const noexcept { return t_.dtype; }
    std::uint32_t ndim() const noexcept { return t_.ndim; }
    /// [B, C, H, W] for layout "nchw", [B, H, W, C] for "nhwc".
    span<const std::int64_t> shape() const noexcept { return {t_.shape, t_.ndim}; }
    std::int64_t dim(std::size_t i) const { return shape().at(i); }
    /// Elements: the product of shape().
    std::size_t numel() const noexcept {
        std::size_t n = t_.ndim ? 1 : 0;
        for (std::uint32_t d = 0; d < t_.ndim; d++) n *= static_cast<std::size_t>(t_.shape[d]);
        return n;
    }
    std::size_t element_size() const noexcept { return t_.dtype == THRESHER_F32 ? 4 : 1; }
    std::size_t nbytes() const noexcept { return numel() * element_size(); }
    /// The data typed as `T` (float for THRESHER_F32, std::uint8_t for THRESHER_U8); throws
    /// Error(THRESHER_INVALID_ARGUMENT) when T does not match dtype().
    template <class T> span<T> as() const {
        using V = std::remove_cv_t<T>;
        constexpr bool f32 = std::is_same<V, float>::value;
        constexpr bool u8 = std::is_same<V, std::uint8_t>::value;
        static_assert(f32 || u8, "thresher::Tensor::as<T>: T must be float or std::uint8_t");
        if ((f32 && t_.dtype != THRESHER_F32) || (u8 && t_.dtype != THRESHER_U8))
            throw Error(THRESHER_INVALID_ARGUMENT,
                        std::string("Tensor::as: the batch's dtype is ") +
                            (t_.dtype == THRESHER_F32 ? "f32" : "u8"));
        return {static_cast<T *>(t_.data), numel()};
    }
    /// The underlying C struct.
    const thresher_tensor &c_struct() const noexcept { return t_; }

  private:
    thresher_tensor t_;
};

// ---- Batch ----------------------------------------------------------------------------------

/// One minibatch lent by Loader::next. Move-only; its destructor releases it
/// (thresher_batch_release), after which every span and Tensor taken from it is invalid. It
/// stays valid after its Loader is destroyed. A moved-from Batch is empty (size 0, empty spans).
class Batch {
  public:
    Batch() noexcept = default;
    /// Takes ownership of a batch from thresher_loader_next.
    explicit Batch(thresher_batch *raw) noexcept : raw_(raw) {}
    Batch(const Batch &) = delete;
    Batch &operator=(const Batch &) = delete;
    Batch(Batch &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Batch &operator=(Batch &&other) noexcept {
        if (this != &other) {
            reset();
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    ~Batch() { reset(); }

    /// Releases the batch now (no-op when empty).
    void reset() noexcept {
        thresher_batch_release(raw_);
        raw_ = nullptr;
    }
    /// Gives up ownership: the caller must thresher_batch_release the returned handle.
    thresher_batch *release() noexcept { return std::exchange(raw_, nullptr); }
    /// The C handle, still owned by this Batch.
    thresher_batch *get() const noexcept { return raw_; }
    explicit operator bool() const noexcept { return raw_ != nullptr; }

    /// Samples in the batch (the last batch of an epoch may be short).
    std::size_t size() const noexcept { return thresher_batch_len(raw_); }
    /// Sample ids in plan order: pass them back to Loader::feedback.
    span<const std::uint64_t> ids() const noexcept { return {thresher_batch_ids(raw_), size()}; }
    /// Labels from the dataset; empty for a batch without data (index mode).
    span<const std::int64_t> labels() const noexcept {
        const std::int64_t *p = thresher_batch_labels(raw_);
        return {p, p ? size() : 0};
    }
    /// Whether the batch carries samples and labels: false for a batch of a loader in index
    /// mode (source {"kind": "index", "len": N}), which has ids, weights and padding only, and
    /// for an empty Batch.
    bool has_data() const noexcept { return thresher_batch_has_data(raw_) != 0; }
    /// Loss weights from the policy: minimise mean(w_i * loss_i).
    span<const float> weights() const noexcept { return {thresher_batch_weights(raw_), size()}; }
    /// Trailing samples that are padding (world_size > 1, weight 0): the first
    /// size() - padding() are the real ones, the only ones whose feedback is needed.
    std::size_t padding() const noexcept { return thresher_batch_padding(raw_); }
    /// The samples (pointer, dtype, shape). Throws Error: THRESHER_STATE for a batch without
    /// data (index mode), THRESHER_INVALID_ARGUMENT on an empty Batch.
    Tensor data() const {
        thresher_tensor t;
        detail::check(thresher_batch_data(raw_, &t));
        return Tensor(t);
    }
    /// Exports one field as a DLPack 0.8 `DLManagedTensor*` (returned as void* so this header
    /// needs no dlpack.h). The caller owns it and must call its deleter exactly once; it keeps
    /// the batch's memory alive after this Batch and its Loader are gone. Throws Error
    /// (THRESHER_STATE for the data or labels of a batch without data).
    void *dlpack(Field field) const {
        void *out = nullptr;
        detail::check(thresher_batch_dlpack(raw_, static_cast<std::int32_t>(field), &out));
        return out;
    }

  private:
    thresher_batch *raw_ = nullptr;
};

// ---- EpochPlan ------------------------------------------------------------------------------

/// One batch of an EpochPlan: views into the plan, valid while the plan is.
struct PlanBatch {
    /// The batch's index in the epoch (0-based).
    std::size_t index = 0;
    span<const std::uint64_t> ids;
    span<const float> weights;
    /// Trailing entries that are padding (weight 0; world_size > 1 without drop_last).
    std::size_t padding = 0;
};

/// This rank's whole epoch (thresher_epoch_plan) from Loader::epoch_plan: the ids and loss
/// weights of its batches in delivery order, padding last; consecutive runs of the config's
/// batch_size entries are the batches Loader::next hands out. Move-only and immutable; the
/// destructor frees it (thresher_epoch_plan_free). Its spans stay valid while it lives, also
/// after its Loader is gone. A moved-from EpochPlan is empty (size 0, empty spans).
class EpochPlan {
  public:
    EpochPlan() noexcept = default;
    /// Takes ownership of a plan from thresher_loader_epoch_plan.
    explicit EpochPlan(thresher_epoch_plan *raw) noexcept : raw_(raw) {}
    EpochPlan(const EpochPlan &) = delete;
    EpochPlan &operator=(const EpochPlan &) = delete;
    EpochPlan(EpochPlan &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    EpochPlan &operator=(EpochPlan &&other) noexcept {
        if (this != &other) {
            reset();
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    ~EpochPlan() { reset(); }

    /// Frees the plan now (no-op when empty).
    void reset() noexcept {
        thresher_epoch_plan_free(raw_);
        raw_ = nullptr;
    }
    /// Gives up ownership: the caller must thresher_epoch_plan_free the returned handle.
    thresher_epoch_plan *release() noexcept { return std::exchange(raw_, nullptr); }
    /// The C handle, still owned by this EpochPlan.
    thresher_epoch_plan *get() const noexcept { return raw_; }
    explicit operator bool() const noexcept { return raw_ != nullptr; }

    /// Entries, padding included: the length of ids() and weights().
    std::size_t size() const noexcept { return thresher_epoch_plan_len(raw_); }
    /// The epoch's 0-based number.
    std::uint64_t epoch() const noexcept { return thresher_epoch_plan_epoch(raw_); }
    /// Batches on this rank (the same on every rank).
    std::size_t batches() const noexcept { return thresher_epoch_plan_batches(raw_); }
    /// Trailing entries that are padding (weight 0; world_size > 1 without drop_last).
    std::size_t padding() const noexcept { return thresher_epoch_plan_padding(raw_); }
    /// The sample ids in delivery order.
    span<const std::uint64_t> ids() const noexcept {
        const std::uint64_t *p = thresher_epoch_plan_ids(raw_);
        return {p, p ? size() : 0};
    }
    /// The loss weights, one per id: minimise mean(w_i * loss_i) over each batch.
    span<const float> weights() const noexcept {
        const float *p = thresher_epoch_plan_weights(raw_);
        return {p, p ? size() : 0};
    }
    /// Batch `k` of the epoch for the config's `batch_size` (the plan does not know it):
    /// entries [k * batch_size, min((k + 1) * batch_size, size())), the batch Loader::next hands
    /// out k-th. Throws std::out_of_range when k >= batches(), std::invalid_argument when
    /// batch_size does not lay size() out in batches() batches (which catches most, not all,
    /// wrong batch sizes: pass the config's).
    PlanBatch batch(std::size_t k, std::size_t batch_size) const {
        const std::size_t n = size(), nb = batches();
        if (batch_size == 0 || (n + batch_size - 1) / batch_size != nb)
            throw std::invalid_argument("thresher::EpochPlan::batch: batch_size " +
                                        std::to_string(batch_size) + " does not lay out " +
                                        std::to_string(n) + " entries in " +
                                        std::to_string(nb) + " batches");
        if (k >= nb)
            throw std::out_of_range("thresher::EpochPlan::batch: batch " + std::to_string(k) +
                                    " of " + std::to_string(nb));
        const std::size_t from = k * batch_size;
        const std::size_t len = n - from < batch_size ? n - from : batch_size;
        // Padding is the plan's tail: the part of [from, from + len) at or after n - padding().
        const std::size_t pad_start = std::max(from, n - padding());
        PlanBatch b;
        b.index = k;
        b.ids = {ids().data() + from, len}; // nb > 0, so the arrays are not NULL
        b.weights = {weights().data() + from, len};
        b.padding = from + len > pad_start ? from + len - pad_start : 0;
        return b;
    }

  private:
    thresher_epoch_plan *raw_ = nullptr;
};

// ---- Loader ---------------------------------------------------------------------------------

class Loader;

/// One epoch of a Loader as an input range: `for (auto& batch : loader.epoch())` takes batches
/// with Loader::next until THRESHER_END_OF_EPOCH. Each batch is released when the iterator
/// advances (move it out to keep it longer). Leaving the loop early leaves the loader mid-epoch:
/// the next epoch() continues the same epoch, unless Loader::end_epoch() abandons the rest.
/// A failed batch (THRESHER_IO/FORMAT) throws Error
/// from begin() or ++; the loader has skipped it, so iteration may be resumed with epoch().
class Epoch {
  public:
    struct sentinel {};
    class iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Batch;
        using difference_type = std::ptrdiff_t;
        using pointer = Batch *;
        using reference = Batch &;

        iterator() = default;
        Batch &operator*() noexcept { return *current_; }
        Batch *operator->() noexcept { return &*current_; }
        iterator &operator++();
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator &it, sentinel) noexcept { return !it.current_; }
        friend bool operator!=(const iterator &it, sentinel s) noexcept { return !(it == s); }
        friend bool operator==(sentinel s, const iterator &it) noexcept { return it == s; }
        friend bool operator!=(sentinel s, const iterator &it) noexcept { return !(it == s); }

      private:
        friend class Epoch;
        explicit iterator(Loader *loader) : loader_(loader) { ++*this; }
        Loader *loader_ = nullptr;
        std::optional<Batch> current_;
    };

    explicit Epoch(Loader &loader) noexcept : loader_(&loader) {}
    /// Takes the first batch (so the range may be begun once).
    iterator begin() { return iterator(loader_); }
    sentinel end() const noexcept { return {}; }

  private:
    Loader *loader_;
};

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

/// A thresher loader: worker threads, prefetched batches, the ScoreBook and the pruning
/// policy. Move-only; the destructor stops and joins the workers (thresher_loader_free), also
/// while batches are still lent out (they stay valid). A moved-from Loader is empty, and every
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
    Loader(Loader &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Loader &operator=(Loader &&other) noexcept {
        if (this != &other) {
            reset();
            raw_ = std::exchange(other.raw_, nullptr);
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

    /// The current epoch's plan; right after the end of an epoch, makes and returns the next
    /// epoch's (so its length is known before its first batch). Thread-safe.
    EpochInfo epoch_info() const {
        EpochInfo info;
        detail::check(thresher_loader_epoch_info(raw_, &info));
        return info;
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
    /// the next epoch's, made now), for a reader that schedules its own reads. It does not move
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
    /// once none is left). Throws Error: THRESHER_INVALID_ARGUMENT when fewer than `batches`
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
};

inline Epoch::iterator &Epoch::iterator::operator++() {
    // Release the previous batch before waiting for the next one, so the loader's pool can
    // reuse its memory (and the sentinel compares equal if next() throws).
    current_.reset();
    current_ = loader_->next();
    return *this;
}

} // namespace thresher

#endif // THRESHER_HPP
