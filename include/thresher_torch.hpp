// thresher_torch.hpp — thresher for libtorch (C++) users: batches as torch::Tensor, no copy.
//
// Header-only, over include/thresher.hpp; include it only in code that already uses libtorch
// (it includes <torch/types.h>). Nothing else in thresher depends on it.
//
//     thresher::torch::Loader loader(config_json);             // the JSON config of thresher.h
//     for (int epoch = 0; epoch < epochs; epoch++) {
//         for (auto& batch : loader.epoch()) {                 // or: for (auto& batch : loader)
//             auto output = model->forward(batch.data);        // [B,C,H,W] float32, zero-copy
//             auto loss = loader.weighted_loss(                // feeds the losses back and
//                 torch::nll_loss(output, batch.target, {}, torch::Reduction::None), batch);
//             optimizer.zero_grad();                           // returns mean(w * loss)
//             loss.backward();
//             optimizer.step();
//         }
//     }
//
// A Batch's tensors are torch::from_blob views of the thresher batch's memory with a deleter
// that holds the batch: the thresher batch is released when the Batch and every tensor made
// from it (views, autograd's saved inputs) are gone, on whichever thread that happens. `data`
// is float32 or uint8 as the config's transform says for images, the file's dtype for npy and
// tokens sources (with `targets` and `mask` beside it); `.to(device)` moves it (a copy only when
// the device differs). Iterating is that of thresher::Loader::epoch(): one epoch per range,
// batches in plan order; leaving a range early leaves the loader mid-epoch and the next range
// continues it, unless end_epoch() abandons the rest. Index mode (source "index") works too:
// `data` and `target` are then undefined tensors and the pipeline reads its own samples.
//
// Thread-safety: that of thresher.hpp (one thread iterates; feedback and weighted_loss may run on
// any thread). Errors are thresher::Error (status and the library's message).

#ifndef THRESHER_TORCH_HPP
#define THRESHER_TORCH_HPP

#include "thresher.hpp"

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace thresher {
namespace torch {

/// One minibatch as tensors over the thresher batch's memory (CPU, contiguous, no copy).
struct Batch {
    /// The samples, [B, C, H, W] ("nchw") or [B, H, W, C] ("nhwc"), float32 or uint8 for
    /// images; [B, ...] in the file's dtype for npy and tokens sources (x of a token block);
    /// undefined in index mode.
    ::torch::Tensor data;
    /// The class labels, [B] int64; undefined in index mode and for a source without class
    /// labels.
    ::torch::Tensor target;
    /// The typed targets (an npy source's `y`, the next tokens y of a token block); undefined
    /// when the source has none.
    ::torch::Tensor targets;
    /// The mask, [B, block] uint8, 1 where a target is real (ragged token documents only);
    /// undefined otherwise.
    ::torch::Tensor mask;
    /// The policy's loss weights, [B] float32: minimise mean(w_i * loss_i).
    ::torch::Tensor weights;
    /// The sample ids, [B] int64 (thresher's uint64 ids read as int64: ids are below the
    /// dataset's length, and libtorch's uint64 supports few operations).
    ::torch::Tensor ids;
    /// Trailing samples that are padding (world_size > 1, weight 0): only the first
    /// size() - padding are fed back.
    std::size_t padding = 0;

    /// Samples in the batch.
    std::size_t size() const noexcept { return batch_ ? batch_->size() : 0; }
    /// The underlying thresher::Batch (spans over the same memory); kept alive by this Batch.
    const thresher::Batch &raw() const noexcept { return *batch_; }

    /// Wraps a batch from thresher::Loader::next; its tensors own a reference to it.
    static Batch wrap(thresher::Batch batch) {
        auto keep = std::make_shared<thresher::Batch>(std::move(batch));
        // Every tensor's deleter holds the batch; the last one to go releases it.
        const auto hold = [keep](void *) {};
        const auto n = static_cast<std::int64_t>(keep->size());
        Batch out;
        const auto tensor = [&hold](const thresher::Tensor &t) {
            const std::vector<std::int64_t> shape(t.shape().begin(), t.shape().end());
            return ::torch::from_blob(t.data(), shape, hold,
                                      ::torch::TensorOptions().dtype(scalar_type(t.dtype())));
        };
        if (keep->has_data()) {
            out.data = tensor(keep->data());
            // from_blob takes void*: labels, weights and ids are lent for reading, and nothing
            // here writes them.
            if (!keep->labels().empty())
                out.target = ::torch::from_blob(
                    const_cast<std::int64_t *>(keep->labels().data()), {n}, hold, ::torch::kInt64);
            if (auto t = keep->targets()) out.targets = tensor(*t);
            if (auto m = keep->mask()) out.mask = tensor(*m);
        }
        out.weights = ::torch::from_blob(const_cast<float *>(keep->weights().data()), {n}, hold,
                                         ::torch::kFloat32);
        out.ids = ::torch::from_blob(const_cast<std::uint64_t *>(keep->ids().data()), {n}, hold,
                                     ::torch::kInt64);
        out.padding = keep->padding();
        out.batch_ = std::move(keep);
        return out;
    }

    /// libtorch's scalar type of a thresher dtype.
    static ::torch::ScalarType scalar_type(DType d) {
        switch (d) {
        case THRESHER_U8: return ::torch::kUInt8;
        case THRESHER_I8: return ::torch::kInt8;
        case THRESHER_U16: return ::torch::kUInt16;
        case THRESHER_I16: return ::torch::kInt16;
        case THRESHER_U32: return ::torch::kUInt32;
        case THRESHER_I32: return ::torch::kInt32;
        case THRESHER_I64: return ::torch::kInt64;
        case THRESHER_F16: return ::torch::kFloat16;
        case THRESHER_BF16: return ::torch::kBFloat16;
        case THRESHER_F32: return ::torch::kFloat32;
        case THRESHER_F64: return ::torch::kFloat64;
        }
        throw thresher::Error(THRESHER_INVALID_ARGUMENT, "unknown thresher_dtype");
    }

  private:
    std::shared_ptr<thresher::Batch> batch_;
};

class Loader;

/// One epoch of a Loader as an input range of Batch (thresher::BasicEpoch).
using Epoch = thresher::BasicEpoch<Loader, Batch>;

/// A thresher::Loader whose batches are torch tensors. Move-only (as thresher::Loader).
class Loader {
  public:
    /// A loader from a JSON config (thresher.h, README's Configuration). Throws thresher::Error.
    explicit Loader(const std::string &config_json) : loader_(config_json) {}

    /// The next batch of the current epoch, or std::nullopt at its end (the call after that
    /// begins the next epoch). Throws thresher::Error when a sample failed to load.
    std::optional<Batch> next() {
        std::optional<thresher::Batch> b = loader_.next();
        if (!b) return std::nullopt;
        return Batch::wrap(std::move(*b));
    }

    /// The current epoch: `for (auto& batch : loader.epoch())`.
    Epoch epoch() noexcept { return Epoch(*this); }
    /// The same range, so that a Loader iterates like a torch::data DataLoader:
    /// `for (auto& batch : loader)` runs (the rest of) one epoch.
    Epoch::iterator begin() { return epoch().begin(); }
    Epoch::sentinel end() const noexcept { return {}; }

    /// Feeds back one step's per-sample losses for `batch` (and, when defined, per-sample
    /// correctness: bool or 0/1): detached, copied to the CPU as float32 (uint8), the padding
    /// left out. Throws thresher::Error(THRESHER_INVALID_ARGUMENT) when a tensor is not [B],
    /// or naming the offending sample when the library refuses a value (NaN, inf).
    void feedback(const Batch &batch, const ::torch::Tensor &per_sample_loss,
                  const ::torch::Tensor &correct = {}) {
        const std::size_t n = batch.size();
        check_shape("per-sample loss", per_sample_loss, n);
        const std::size_t real = n - batch.padding;
        const ::torch::Tensor loss =
            per_sample_loss.detach().to(::torch::kCPU, ::torch::kFloat32).contiguous();
        ::torch::Tensor right;
        thresher_feedback fb{};
        fb.len = real;
        fb.ids = batch.raw().ids().data();
        fb.loss = loss.data_ptr<float>();
        if (correct.defined()) {
            check_shape("correct", correct, n);
            right = correct.detach().to(::torch::kCPU, ::torch::kUInt8).contiguous();
            fb.correct = right.data_ptr<std::uint8_t>();
        }
        loader_.feedback(fb);
    }

    /// Feeds back `per_sample_loss` (reduction None, [B]; and `correct` when defined) and
    /// returns mean(w_i * loss_i) with the batch's weights, on the loss's device and dtype: the
    /// quantity to minimise (not sum(w * loss) / sum(w)). The one-call form of feedback() plus
    /// the weighting, like thresher.torch.Loader.weighted_loss in Python.
    ::torch::Tensor weighted_loss(const ::torch::Tensor &per_sample_loss, const Batch &batch,
                                  const ::torch::Tensor &correct = {}) {
        feedback(batch, per_sample_loss, correct);
        const auto dtype = per_sample_loss.is_floating_point() ? per_sample_loss.scalar_type()
                                                               : ::torch::kFloat32;
        return (batch.weights.to(per_sample_loss.device(), dtype) * per_sample_loss).mean();
    }

    /// The current epoch's plan (right after the end of an epoch: the next one's).
    EpochInfo epoch_info() const { return loader_.epoch_info(); }
    /// The current epoch so far, or the one that just ended.
    EpochReport report() const { return loader_.report(); }
    /// The run's total batches, known before training (for an LR schedule over the whole run):
    /// exact under the policy key `budget`, and for `full` and `random` with `epochs`; throws
    /// thresher::Error(THRESHER_STATE) when the count depends on feedback.
    std::uint64_t total_batches() const { return loader_.total_batches(); }
    /// Abandons the rest of the epoch under way (see thresher::Loader::end_epoch).
    void end_epoch() { loader_.end_epoch(); }
    /// The fraction of the epoch's kept samples that look unlearnable (NaN when not tracked);
    /// iteration warns through the warning handler above THRESHER_UNLEARNABLE_WARNING
    /// (thresher::Loader::warn_if_unlearnable).
    double unlearnable_fraction() const { return loader_.unlearnable_fraction(); }
    /// Replaces the handler of the loader's warnings; an empty one silences them (default:
    /// one line on stderr).
    void set_warning_handler(WarningHandler handler) {
        loader_.set_warning_handler(std::move(handler));
    }
    /// See thresher::Loader::warn_if_unlearnable; epoch() iteration calls it.
    void warn_if_unlearnable(double threshold = THRESHER_UNLEARNABLE_WARNING) {
        loader_.warn_if_unlearnable(threshold);
    }
    /// Checkpoint; a loader with the same config plus "resume_from": path continues here.
    void save_state(const std::string &path) const { loader_.save_state(path); }
    /// The thresher::Loader underneath (digest, save_scores, epoch_plan, save_state_at, ...).
    thresher::Loader &raw() noexcept { return loader_; }
    const thresher::Loader &raw() const noexcept { return loader_; }

  private:
    static void check_shape(const char *what, const ::torch::Tensor &t, std::size_t n) {
        if (t.dim() != 1 || static_cast<std::size_t>(t.size(0)) != n) {
            std::ostringstream msg;
            msg << what << " has shape " << t.sizes() << ", the batch " << n
                << " samples: use reduction None";
            throw Error(THRESHER_INVALID_ARGUMENT, msg.str());
        }
    }

    thresher::Loader loader_;
};

/// A Loader on the heap, as torch::data::make_data_loader returns its DataLoader: so that
/// `auto loader = thresher::torch::make_data_loader(json); train(*loader);` reads the same.
inline std::unique_ptr<Loader> make_data_loader(const std::string &config_json) {
    return std::make_unique<Loader>(config_json);
}

/// The contents of a JSON config file, for Loader(...) and make_data_loader(...). Throws
/// thresher::Error(THRESHER_IO) naming the path.
inline std::string read_config(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream text;
    if (!f || !(text << f.rdbuf()))
        throw Error(THRESHER_IO, "cannot read the config file " + path);
    return text.str();
}

} // namespace torch
} // namespace thresher

#endif // THRESHER_TORCH_HPP
