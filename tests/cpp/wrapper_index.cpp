// wrapper_index.cpp — include/thresher.hpp in index mode (source {"kind": "index", "len": N}):
// batches without data (has_data), EpochPlan against the batches next hands out (padding with
// two ranks), end_epoch, save_state_at resumed, and advance. Part of the program whose main is
// in wrapper_test.cpp (`make test-cpp`); the harness is wrapper_test.hpp.

#include "wrapper_test.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

void test_index_batches() {
    thresher::Loader loader(index_config(1000, "\"batch_size\": 128, \"seed\": 2"));
    std::vector<unsigned char> seen(1000, 0);
    std::size_t n = 0, batches = 0;
    for (auto &batch : loader.epoch()) {
        CHECK(!batch.has_data());
        CHECK(batch.labels().empty() && batch.labels().data() == nullptr);
        CHECK(batch.ids().size() == batch.size() && batch.weights().size() == batch.size());
        CHECK(batch.padding() == 0);
        for (std::uint64_t id : batch.ids()) seen[id < 1000 ? id : 0]++;
        CHECK(std::all_of(batch.weights().begin(), batch.weights().end(),
                          [](float w) { return w == 1.0f; }));
        if (batches == 0) {
            CHECK_THROWS(batch.data(), THRESHER_STATE, "index mode");
            CHECK_THROWS(batch.dlpack(THRESHER_FIELD_LABELS), THRESHER_STATE, "no data");
            void *ids = batch.dlpack(THRESHER_FIELD_IDS); // ids and weights still export
            CHECK(ids != nullptr);
            auto *m = static_cast<dl::ManagedTensor *>(ids);
            CHECK(m->dl_tensor.data == batch.ids().data());
            m->deleter(m);
        }
        n += batch.size();
        batches++;
    }
    CHECK(n == 1000 && batches == 8);
    CHECK(std::all_of(seen.begin(), seen.end(), [](unsigned char c) { return c == 1; }));
    // With data: has_data() is true; an empty Batch has none.
    thresher::Loader data(config("\"batch_size\": 10"));
    std::optional<thresher::Batch> b = data.next();
    CHECK(b && b->has_data() && b->labels().size() == 10);
    CHECK(!thresher::Batch().has_data() && thresher::Batch().labels().empty());
}

void test_epoch_plan() {
    // InfoBatch over 1000 ids, below-mean loss on even ids: epoch 1 keeps 750 (250 weigh 2).
    // plan_ahead off: epoch 1's plan sees every batch's loss (by default the last batch's
    // would count one plan later, and its ids would still be unseen).
    thresher::Loader loader(index_config(
        1000, "\"batch_size\": 96, \"seed\": 4, \"plan_ahead\": false, "
              "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, \"epochs\": 4}"));
    for (std::uint64_t epoch = 0; epoch < 2; epoch++) {
        thresher::EpochPlan plan = loader.epoch_plan();
        thresher::EpochInfo info = loader.epoch_info();
        CHECK(plan && plan.epoch() == epoch && plan.padding() == 0);
        CHECK(plan.size() == info.samples && plan.batches() == info.batches);
        CHECK(plan.size() == (epoch == 0 ? 1000u : 750u));
        // The spans are the C accessors'.
        CHECK(plan.ids().data() == thresher_epoch_plan_ids(plan.get()));
        CHECK(plan.weights().size() == thresher_epoch_plan_len(plan.get()));
        const auto twos = std::count(plan.weights().begin(), plan.weights().end(), 2.0f);
        CHECK(twos == (epoch == 0 ? 0 : 250));
        std::size_t k = 0, mismatches = 0;
        for (auto &batch : loader.epoch()) {
            thresher::PlanBatch pb = plan.batch(k, 96);
            if (pb.index != k || pb.ids.size() != batch.size() || pb.padding != 0 ||
                !std::equal(pb.ids.begin(), pb.ids.end(), batch.ids().begin()) ||
                !std::equal(pb.weights.begin(), pb.weights.end(), batch.weights().begin()))
                mismatches++;
            std::vector<float> loss(batch.size());
            for (std::size_t i = 0; i < batch.size(); i++)
                loss[i] = batch.ids()[i] % 2 == 0 ? 0.1f : 1.0f;
            loader.feedback(batch.ids(), loss);
            k++;
        }
        CHECK(mismatches == 0 && k == plan.batches());
        CHECK_THROWS_STD(plan.batch(k, 96), std::out_of_range);
        CHECK_THROWS_STD(plan.batch(0, 150), std::invalid_argument); // 7 or 5 batches, not 11 or 8
        CHECK_THROWS_STD(plan.batch(0, 0), std::invalid_argument);
        CHECK(plan.batch(k - 1, 96).ids.size() == plan.size() - 96 * (k - 1));
    }
    // Move semantics; a plan outlives its loader; release/adopt.
    thresher::EpochPlan a = loader.epoch_plan();
    CHECK(a.epoch() == 2);
    std::vector<std::uint64_t> ids(a.ids().begin(), a.ids().end());
    thresher::EpochPlan b(std::move(a));
    CHECK(!a && a.size() == 0 && a.ids().empty() && a.weights().empty() && a.batches() == 0);
    loader.reset();
    CHECK(b.size() == ids.size() && std::equal(ids.begin(), ids.end(), b.ids().begin()));
    thresher_epoch_plan *raw = b.release();
    CHECK(!b && raw != nullptr);
    thresher::EpochPlan adopted(raw);
    b = std::move(adopted);
    CHECK(b.get() == raw);
    b = thresher::EpochPlan(); // frees it (LeakSanitizer would see a leak otherwise)
    CHECK(!b);
    CHECK_THROWS(loader.epoch_plan(), THRESHER_INVALID_ARGUMENT, "loader");
}

void test_plan_padding() {
    // Two ranks over 1001 ids, batch 64: the last step is padded; each rank's plan says where.
    for (int r = 0; r < 2; r++) {
        thresher::Loader loader(index_config(1001, "\"batch_size\": 64, \"rank\": " +
                                                       std::to_string(r) +
                                                       ", \"world_size\": 2"));
        thresher::EpochPlan plan = loader.epoch_plan();
        std::size_t k = 0, padding = 0, mismatches = 0;
        for (auto &batch : loader.epoch()) {
            thresher::PlanBatch pb = plan.batch(k++, 64);
            if (pb.padding != batch.padding() ||
                !std::equal(pb.ids.begin(), pb.ids.end(), batch.ids().begin()))
                mismatches++;
            padding += batch.padding();
        }
        CHECK(mismatches == 0 && k == plan.batches() && k == 8);
        CHECK(padding == plan.padding());
        const auto tail = plan.weights().end() - static_cast<std::ptrdiff_t>(plan.padding());
        CHECK(std::all_of(tail, plan.weights().end(), [](float w) { return w == 0.0f; }));
    }
}

void test_end_epoch_and_save_state_at() {
    const std::string extra = "\"batch_size\": 100, \"seed\": 6";
    thresher::Loader loader(index_config(1000, extra));
    // Leaving a range early and ending the epoch: the next range is epoch 1, whole.
    for (auto &batch : loader.epoch()) {
        (void)batch;
        break;
    }
    loader.end_epoch();
    CHECK(loader.report().delivered == 1 && loader.report().epoch == 0);
    loader.end_epoch(); // a no-op between epochs
    CHECK(loader.epoch_info().epoch == 1);
    // A reader four batches ahead of a trainer that consumed one.
    std::vector<thresher::Batch> ahead;
    for (int k = 0; k < 4; k++) ahead.push_back(std::move(*loader.next()));
    const std::string dir = temp_dir(), path = dir + "/at.ckpt";
    CHECK_THROWS(loader.save_state_at(path, 5), THRESHER_INVALID_ARGUMENT, "batches = 5");
    CHECK(!file_exists(path));
    loader.save_state_at(path, 1);
    thresher::Loader resumed(index_config(1000, extra + ", \"resume_from\": " + json_string(path)));
    for (std::size_t k = 1; k < 4; k++) {
        std::optional<thresher::Batch> b = resumed.next();
        CHECK(b && std::equal(b->ids().begin(), b->ids().end(), ahead[k].ids().begin()));
    }
    CHECK(resumed.epoch_info().epoch == 1);
    std::size_t rest = 0;
    for (auto &b : resumed.epoch()) rest += b.size();
    CHECK(rest == 600);
    loader.reset(); // an empty Loader: every call throws, none crashes
    CHECK_THROWS(loader.save_state_at(path, 0), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_THROWS(loader.end_epoch(), THRESHER_INVALID_ARGUMENT, "loader");
    std::remove(path.c_str());
    rmdir(dir.c_str());
}

void test_advance() {
    // A plan reader tells the loader how far it has read: the report and a checkpoint follow.
    const std::string extra = "\"batch_size\": 100, \"seed\": 8";
    thresher::Loader loader(index_config(1000, extra));
    thresher::EpochPlan plan = loader.epoch_plan();
    CHECK(plan.batches() == 10);
    loader.advance(0); // counts nothing
    CHECK(loader.report().delivered == 0);
    loader.advance(3);
    CHECK(loader.report().epoch == 0 && loader.report().delivered == 3);
    // Refused past the epoch's end, with the position unchanged.
    CHECK_THROWS(loader.advance(8), THRESHER_INVALID_ARGUMENT, "batches = 8");
    CHECK(loader.report().delivered == 3);
    // next() continues after what was advanced: batch 3 of the plan.
    std::optional<thresher::Batch> b = loader.next();
    thresher::PlanBatch pb = plan.batch(3, 100);
    CHECK(b && std::equal(pb.ids.begin(), pb.ids.end(), b->ids().begin()));
    // A checkpoint taken now resumes at batch 4.
    const std::string dir = temp_dir(), path = dir + "/advance.ckpt";
    loader.save_state(path);
    thresher::Loader resumed(index_config(1000, extra + ", \"resume_from\": " + json_string(path)));
    std::optional<thresher::Batch> r = resumed.next();
    pb = plan.batch(4, 100);
    CHECK(r && std::equal(pb.ids.begin(), pb.ids.end(), r->ids().begin()));
    // The rest of the epoch at once; then next() reports its end.
    loader.advance(6);
    CHECK(loader.report().delivered == 10 && loader.report().saved_fraction == 0.0);
    CHECK(!loader.next());
    // Between epochs, advancing begins the next one.
    loader.advance(2);
    CHECK(loader.report().epoch == 1 && loader.report().delivered == 2);
    // A loader with data refuses it; an empty Loader too.
    thresher::Loader data(config("\"batch_size\": 500"));
    CHECK_THROWS(data.advance(1), THRESHER_STATE, "index mode");
    loader.reset();
    CHECK_THROWS(loader.advance(1), THRESHER_INVALID_ARGUMENT, "loader");
    std::remove(path.c_str());
    rmdir(dir.c_str());
}

void test_total_batches() {
    // UCB under a budget of 1,600 visits over 4 epochs, two ranks: with the noise guard its
    // epochs 0 and 1 would be full data (2,000 visits, more than the budget), so all four
    // share it, 400 each; every epoch's batches over 2 ranks of 64 are ceil(400 / 128) = 4,
    // known before the first batch.
    for (int rank = 0; rank < 2; rank++) {
        thresher::Loader loader(index_config(
            1000, "\"batch_size\": 64, \"seed\": 1, \"world_size\": 2, \"rank\": " +
                      std::to_string(rank) +
                      ", \"policy\": {\"kind\": \"ucb\", \"budget\": 0.4, \"epochs\": 4}"));
        const std::uint64_t total = loader.total_batches();
        CHECK(total == 4 * 4);
        std::uint64_t delivered = 0;
        for (int epoch = 0; epoch < 4; epoch++)
            for (auto &batch : loader.epoch()) {
                std::vector<float> loss(batch.size());
                for (std::size_t i = 0; i < batch.size(); i++)
                    loss[i] = static_cast<float>(batch.ids()[i] % 7);
                loader.feedback(batch.ids(), loss);
                delivered++;
            }
        CHECK(delivered == total);
    }
    thresher::Loader greedy(index_config(1000, "\"policy\": {\"kind\": \"ucb\"}"));
    CHECK_THROWS(greedy.total_batches(), THRESHER_STATE, "policy.budget");
}

void test_noisy_labels_warning() {
    // Every sample reported wrong: after the guard's two reports every judged sample looks
    // unlearnable, so from epoch 2 on UCB's plan keeps nothing else and iteration warns, once
    // per epoch, through the handler; an empty handler silences it, and `full` (which tracks
    // nothing) never warns.
    const std::string ucb = "\"batch_size\": 50, \"seed\": 3, \"policy\": {\"kind\": \"ucb\", "
                            "\"prune\": 0.5}";
    thresher::Loader loader(index_config(400, ucb));
    std::vector<std::string> heard;
    loader.set_warning_handler([&](const std::string &m) { heard.push_back(m); });
    auto run_epoch = [](thresher::Loader &l) {
        for (auto &batch : l.epoch()) {
            std::vector<float> loss(batch.size(), 1.0f);
            std::vector<std::uint8_t> wrong(batch.size(), 0);
            l.feedback(batch.ids(), loss, {}, {}, wrong);
        }
    };
    for (int epoch = 0; epoch < 4; epoch++) {
        run_epoch(loader);
        const double f = loader.unlearnable_fraction();
        CHECK(epoch < 2 ? !(f > THRESHER_UNLEARNABLE_WARNING) : f > THRESHER_UNLEARNABLE_WARNING);
        CHECK(heard.size() == static_cast<std::size_t>(epoch < 2 ? 0 : epoch - 1));
    }
    CHECK(heard.back().find("epoch 3's kept samples look unlearnable") != std::string::npos);
    loader.warn_if_unlearnable();  // the same epoch: not again
    CHECK(heard.size() == 2);
    loader.warn_if_unlearnable(2.0);  // a threshold no fraction reaches
    CHECK(heard.size() == 2);

    thresher::Loader moved = std::move(loader);  // the handler moves with the loader
    run_epoch(moved);
    CHECK(heard.size() == 3);
    moved.set_warning_handler(nullptr);
    run_epoch(moved);
    CHECK(heard.size() == 3);

    thresher::Loader full(index_config(400, "\"policy\": {\"kind\": \"full\"}"));
    full.set_warning_handler([&](const std::string &m) { heard.push_back(m); });
    for (int epoch = 0; epoch < 3; epoch++) run_epoch(full);
    CHECK(heard.size() == 3);
}
