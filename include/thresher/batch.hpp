// thresher/batch.hpp — the plain C structs under their C++ names, thresher::Tensor (a view of a
// batch's data) and thresher::Batch (one minibatch lent by Loader::next).
// A part of thresher.hpp (the C++17 wrapper over thresher.h), which includes it: include
// thresher.hpp, not this file. Installed beside it by `make install` (PREFIX/include/thresher/).

#ifndef THRESHER_BATCH_HPP
#define THRESHER_BATCH_HPP

#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace thresher {

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

} // namespace thresher

#endif // THRESHER_BATCH_HPP
