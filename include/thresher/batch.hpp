// thresher/batch.hpp — the plain C structs under their C++ names, thresher::Tensor (a view of a
// batch's data) and thresher::Batch (one minibatch lent by Loader::next).
// A part of thresher.hpp (the C++17 wrapper over thresher.h), which includes it: include
// thresher.hpp, not this file. Installed beside it by `make install` (PREFIX/include/thresher/).

#ifndef THRESHER_BATCH_HPP
#define THRESHER_BATCH_HPP

#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
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
/// Element type of a batch's tensors.
using DType = thresher_dtype;

/// Bytes per element of a dtype.
constexpr std::size_t dtype_size(DType d) noexcept {
    switch (d) {
    case THRESHER_U8:
    case THRESHER_I8:
        return 1;
    case THRESHER_U16:
    case THRESHER_I16:
    case THRESHER_F16:
    case THRESHER_BF16:
        return 2;
    case THRESHER_U32:
    case THRESHER_I32:
    case THRESHER_F32:
        return 4;
    case THRESHER_I64:
    case THRESHER_F64:
        return 8;
    }
    return 0;
}

/// The config's name of a dtype: "u8", "i8", "u16", "i16", "u32", "i32", "i64", "f16", "bf16",
/// "f32", "f64".
constexpr const char *dtype_name(DType d) noexcept {
    switch (d) {
    case THRESHER_U8: return "u8";
    case THRESHER_I8: return "i8";
    case THRESHER_U16: return "u16";
    case THRESHER_I16: return "i16";
    case THRESHER_U32: return "u32";
    case THRESHER_I32: return "i32";
    case THRESHER_I64: return "i64";
    case THRESHER_F16: return "f16";
    case THRESHER_BF16: return "bf16";
    case THRESHER_F32: return "f32";
    case THRESHER_F64: return "f64";
    }
    return "?";
}

namespace detail {
/// Whether a tensor of dtype `d` may be read as T: the C type of each dtype, and the raw
/// 16-bit pattern (std::uint16_t) of the half types f16 and bf16, which C++17 has no type for.
template <class T> constexpr bool reads_as(DType d) noexcept {
    using V = std::remove_cv_t<T>;
    switch (d) {
    case THRESHER_U8: return std::is_same<V, std::uint8_t>::value;
    case THRESHER_I8: return std::is_same<V, std::int8_t>::value;
    case THRESHER_U16:
    case THRESHER_F16:
    case THRESHER_BF16: return std::is_same<V, std::uint16_t>::value;
    case THRESHER_I16: return std::is_same<V, std::int16_t>::value;
    case THRESHER_U32: return std::is_same<V, std::uint32_t>::value;
    case THRESHER_I32: return std::is_same<V, std::int32_t>::value;
    case THRESHER_I64: return std::is_same<V, std::int64_t>::value;
    case THRESHER_F32: return std::is_same<V, float>::value;
    case THRESHER_F64: return std::is_same<V, double>::value;
    }
    return false;
}
} // namespace detail

/// A view of one tensor of a batch (thresher_tensor: its data, targets or mask): pointer, dtype
/// and shape, contiguous row-major, 64-byte aligned. It borrows from its Batch: valid while
/// that Batch is alive. The view may be copied; shape() points into the view itself, so keep
/// the view while using its shape.
class Tensor {
  public:
    Tensor() noexcept : t_() {}
    explicit Tensor(const thresher_tensor &t) noexcept : t_(t) {}

    /// The first byte, owned by the batch (readable and writable in place, never freed by you).
    void *data() const noexcept { return t_.data; }
    DType dtype() const noexcept { return t_.dtype; }
    std::uint32_t ndim() const noexcept { return t_.ndim; }
    /// [B, C, H, W] for images with layout "nchw", [B, H, W, C] for "nhwc", [B, ...] as in the
    /// file for npy and tokens sources (at most THRESHER_MAX_NDIM dimensions).
    span<const std::int64_t> shape() const noexcept { return {t_.shape, t_.ndim}; }
    std::int64_t dim(std::size_t i) const { return shape().at(i); }
    /// Elements: the product of shape().
    std::size_t numel() const noexcept {
        std::size_t n = t_.ndim ? 1 : 0;
        for (std::uint32_t d = 0; d < t_.ndim; d++) n *= static_cast<std::size_t>(t_.shape[d]);
        return n;
    }
    std::size_t element_size() const noexcept { return dtype_size(t_.dtype); }
    std::size_t nbytes() const noexcept { return numel() * element_size(); }
    /// The values typed as `T`: std::uint8_t (u8), std::int8_t (i8), std::uint16_t (u16, and
    /// the bits of f16 and bf16), std::int16_t, std::uint32_t, std::int32_t, std::int64_t,
    /// float (f32) or double (f64). Throws Error(THRESHER_INVALID_ARGUMENT) when T does not
    /// match dtype().
    template <class T> span<T> as() const {
        using V = std::remove_cv_t<T>;
        static_assert(std::is_arithmetic<V>::value,
                      "thresher::Tensor::as<T>: T must be the element type of a dtype");
        if (!detail::reads_as<T>(t_.dtype))
            throw Error(THRESHER_INVALID_ARGUMENT,
                        std::string("Tensor::as: the tensor's dtype is ") + dtype_name(t_.dtype));
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
    /// Int64 class labels from the dataset; empty for a batch without data (index mode) and for
    /// a source without class labels (token blocks, npy without `y` or with a float or
    /// multi-dimensional `y`: see targets()).
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
    /// The typed targets: an npy source's `y` in its own dtype, the next tokens y of a token
    /// block (x is data()). std::nullopt when the batch has none; throws Error on an empty Batch.
    std::optional<Tensor> targets() const { return optional_tensor(thresher_batch_targets); }
    /// The mask, uint8 [B, block], 1 where a target is a real token: ragged token documents
    /// (a tokens source with `offsets`) only; std::nullopt otherwise.
    std::optional<Tensor> mask() const { return optional_tensor(thresher_batch_mask); }
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
    std::optional<Tensor> optional_tensor(thresher_status (*get)(const thresher_batch *,
                                                                thresher_tensor *)) const {
        thresher_tensor t;
        const thresher_status s = get(raw_, &t);
        if (s == THRESHER_STATE) return std::nullopt;
        detail::check(s);
        return Tensor(t);
    }

    thresher_batch *raw_ = nullptr;
};

} // namespace thresher

#endif // THRESHER_BATCH_HPP
