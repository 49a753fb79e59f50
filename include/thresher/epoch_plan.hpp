// thresher/epoch_plan.hpp — thresher::EpochPlan (this rank's whole epoch, from Loader::epoch_plan) and
// thresher::PlanBatch (one batch of it).
// A part of thresher.hpp (the C++17 wrapper over thresher.h), which includes it: include
// thresher.hpp, not this file. Installed beside it by `make install` (PREFIX/include/thresher/).

#ifndef THRESHER_EPOCH_PLAN_HPP
#define THRESHER_EPOCH_PLAN_HPP

#include "support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace thresher {

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

} // namespace thresher

#endif // THRESHER_EPOCH_PLAN_HPP
