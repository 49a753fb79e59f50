// wrapper_test.cpp — include/thresher.hpp exercised on Fashion-MNIST: the harness, main, and
// loaders with data; index mode is in wrapper_index.cpp (one program, shared wrapper_test.hpp).
//
// Built by `make test-cpp` with -std=c++17 -Wall -Wextra -Werror under AddressSanitizer, UBSan
// and LeakSanitizer, linked against the static library. Usage: wrapper_test FASHION_DIR, where
// FASHION_DIR holds the gzipped IDX files. Covers RAII (every handle freed exactly once, which
// LeakSanitizer and ASan check), exceptions (status and message), range-for over an epoch,
// spans against the C accessors, move semantics, a Batch outliving its Loader, feedback
// overloads, report/save_scores/save_state and DLPack; then wrapper_index.cpp's index-mode
// tests. Prints "N passed, M failed".

#include "wrapper_test.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

// ---- a tiny test harness (the same shape as tests/c/abi_test.c) ---------------------------

int g_passed, g_failed;

void check_impl(bool ok, const char *expr, const char *file, int line) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
}

void check_throws_impl(const std::function<void()> &body, thresher_status want,
                       const std::string &needle, const char *expr, const char *file, int line) {
    try {
        body();
    } catch (const thresher::Error &e) {
        bool ok = e.status() == want && e.message().find(needle) != std::string::npos &&
                  std::string(e.what()).find(thresher::status_name(want)) != std::string::npos;
        if (!ok)
            std::fprintf(stderr, "%s:%d: %s threw %s (\"%s\"), expected %s with \"%s\"\n", file,
                         line, expr, thresher::status_name(e.status()), e.message().c_str(),
                         thresher::status_name(want), needle.c_str());
        check_impl(ok, expr, file, line);
        return;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s:%d: %s threw a non-thresher exception: %s\n", file, line, expr,
                     e.what());
        check_impl(false, expr, file, line);
        return;
    }
    std::fprintf(stderr, "%s:%d: %s did not throw\n", file, line, expr);
    check_impl(false, expr, file, line);
}

// Runs one test; an unexpected exception counts as a failure, not a crash.
static void run(const char *name, void (*test)()) {
    try {
        test();
    } catch (const std::exception &e) {
        g_failed++;
        std::fprintf(stderr, "%s: unexpected exception: %s\n", name, e.what());
    }
}

// ---- helpers -------------------------------------------------------------------------------

std::string g_images, g_labels;

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string config(const std::string &extra, const std::string &images,
                   const std::string &labels) {
    return "{\"source\": {\"kind\": \"idx\", \"images\": " + json_string(images) +
           ", \"labels\": " + json_string(labels) + "}" + (extra.empty() ? "" : ", " + extra) +
           "}";
}

std::string index_config(std::size_t len, const std::string &extra) {
    return "{\"source\": {\"kind\": \"index\", \"len\": " + std::to_string(len) + "}" +
           (extra.empty() ? "" : ", " + extra) + "}";
}

std::string temp_dir() {
    char dir[] = "/tmp/thresher-cpp-test-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
        std::perror("mkdtemp");
        std::exit(2);
    }
    return dir;
}

bool file_exists(const std::string &path) { return access(path.c_str(), F_OK) == 0; }

// ---- compile-time properties ---------------------------------------------------------------

// Owning handles are move-only, and moves never throw (so std::vector<Batch> moves them).
static_assert(!std::is_copy_constructible<thresher::Loader>::value, "Loader is move-only");
static_assert(!std::is_copy_assignable<thresher::Loader>::value, "Loader is move-only");
static_assert(std::is_nothrow_move_constructible<thresher::Loader>::value, "");
static_assert(std::is_nothrow_move_assignable<thresher::Loader>::value, "");
static_assert(!std::is_copy_constructible<thresher::Batch>::value, "Batch is move-only");
static_assert(!std::is_copy_assignable<thresher::Batch>::value, "Batch is move-only");
static_assert(std::is_nothrow_move_constructible<thresher::Batch>::value, "");
static_assert(std::is_nothrow_move_assignable<thresher::Batch>::value, "");
static_assert(std::is_base_of<std::runtime_error, thresher::Error>::value, "");
static_assert(!std::is_copy_constructible<thresher::EpochPlan>::value, "EpochPlan is move-only");
static_assert(!std::is_copy_assignable<thresher::EpochPlan>::value, "EpochPlan is move-only");
static_assert(std::is_nothrow_move_constructible<thresher::EpochPlan>::value, "");
static_assert(std::is_nothrow_move_assignable<thresher::EpochPlan>::value, "");
// span converts only where memory is reinterpreted as the same type (plus const).
static_assert(std::is_convertible<std::vector<float> &, thresher::span<const float>>::value, "");
static_assert(std::is_convertible<thresher::span<float>, thresher::span<const float>>::value, "");
static_assert(!std::is_convertible<std::vector<int> &, thresher::span<const std::int64_t>>::value,
              "no integer reinterpretation");
static_assert(!std::is_convertible<const std::vector<float> &, thresher::span<float>>::value,
              "no const removal");

// ---- tests ---------------------------------------------------------------------------------

static void test_versions() {
    CHECK(std::strcmp(thresher::version(), THRESHER_VERSION) == 0);
    thresher::check_abi(); // throws on mismatch
    CHECK(std::string(thresher::status_name(THRESHER_IO)) == "THRESHER_IO");
    CHECK(thresher::last_error().empty()); // nothing failed on this thread yet
}

static void test_span() {
    std::vector<float> v{1, 2, 3};
    const std::array<std::uint64_t, 2> a{{7, 9}};
    std::uint8_t c_array[4] = {1, 0, 1, 1};
    thresher::span<const float> sv = v;
    thresher::span<const std::uint64_t> sa = a;
    thresher::span<std::uint8_t> sc = c_array;
    thresher::span<const std::uint8_t> scc = sc;
    CHECK(sv.size() == 3 && sv.data() == v.data() && sv[2] == 3.0f && sv.back() == 3.0f);
    CHECK(sa.size() == 2 && sa.front() == 7 && sa.size_bytes() == 16);
    CHECK(sc.size() == 4 && scc.data() == c_array);
    sc[1] = 5;
    CHECK(c_array[1] == 5);
    float sum = 0;
    for (float x : sv) sum += x;
    CHECK(sum == 6.0f);
    thresher::span<const float> empty;
    CHECK(empty.empty() && empty.begin() == empty.end() && empty.data() == nullptr);
    bool threw = false;
    try {
        (void)sv.at(3);
    } catch (const std::out_of_range &) {
        threw = true;
    }
    CHECK(threw);
}

static void test_errors() {
    // A bad config key: INVALID_ARGUMENT naming the key, in message() and what().
    CHECK_THROWS(thresher::Loader(config("\"batch_sise\": 3")), THRESHER_INVALID_ARGUMENT,
                 "batch_sise");
    try {
        thresher::Loader l(config("\"batch_sise\": 3"));
        CHECK(false);
    } catch (const thresher::Error &e) {
        CHECK(e.status() == THRESHER_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("THRESHER_INVALID_ARGUMENT") == 0);
        CHECK(std::string(e.what()).find("batch_sise") != std::string::npos);
        // The message is exactly the library's, read on this thread.
        CHECK(e.message() == thresher::last_error());
    }
    // Caught as the standard base class too.
    bool caught = false;
    try {
        thresher::Loader l(std::string("not json"));
    } catch (const std::runtime_error &) {
        caught = true;
    }
    CHECK(caught);
    CHECK_THROWS(thresher::Loader(config("\"policy\": {\"kind\": \"infobatch\", \"prune\": 2, "
                                         "\"epochs\": 3}")),
                 THRESHER_INVALID_ARGUMENT, "prune");
    // A missing file: THRESHER_IO naming the path.
    const std::string missing = g_images + ".does-not-exist";
    CHECK_THROWS(thresher::Loader(config("", missing)), THRESHER_IO, missing);
    // A file that is not IDX: THRESHER_FORMAT naming it.
    const std::string dir = temp_dir(), garbage = dir + "/garbage";
    FILE *f = std::fopen(garbage.c_str(), "wb");
    CHECK(f != nullptr);
    if (f) {
        std::fputs("not an IDX file at all\n", f);
        std::fclose(f);
    }
    CHECK_THROWS(thresher::Loader(config("", garbage)), THRESHER_FORMAT, garbage);
    std::remove(garbage.c_str());
    rmdir(dir.c_str());
    // Each thread has its own message: an error on another thread does not change ours.
    std::string before = thresher::last_error(), other;
    std::thread t([&] {
        try {
            thresher::Loader l("{\"workers\": 0}");
        } catch (const thresher::Error &e) {
            other = e.message();
        }
    });
    t.join();
    CHECK(other.find("workers") != std::string::npos || other.find("source") != std::string::npos);
    CHECK(thresher::last_error() == before);
}

static void test_epoch_range() {
    thresher::Loader loader(config("\"batch_size\": 256, \"workers\": 3, "
                                   "\"policy\": {\"kind\": \"random\", \"prune\": 0.3}"));
    for (int epoch = 0; epoch < 2; epoch++) {
        thresher::EpochInfo info = loader.epoch_info();
        CHECK(info.epoch == static_cast<std::uint64_t>(epoch));
        CHECK(info.samples == 7000 && info.dataset_len == 10000);
        std::vector<unsigned char> seen(10000, 0);
        std::size_t samples = 0, batches = 0, dups = 0, out_of_range = 0;
        for (auto &batch : loader.epoch()) {
            for (std::uint64_t id : batch.ids()) {
                if (id >= seen.size()) {
                    out_of_range++;
                    continue;
                }
                dups += seen[id];
                seen[id] = 1;
            }
            samples += batch.size();
            batches++;
        }
        CHECK(samples == 7000);
        CHECK(static_cast<std::size_t>(std::count(seen.begin(), seen.end(), 1)) == 7000);
        CHECK(dups == 0 && out_of_range == 0);
        CHECK(batches == info.batches);
        // The range ended at THRESHER_END_OF_EPOCH; the report describes the finished epoch.
        thresher::EpochReport r = loader.report();
        CHECK(r.epoch == static_cast<std::uint64_t>(epoch) && r.delivered == info.batches);
    }
    // A full-data epoch with next(): every sample once, nullopt at the end, then epoch 3.
    thresher::Loader full(config("\"batch_size\": 1000"));
    std::vector<unsigned char> seen(10000, 0);
    std::size_t n = 0;
    while (std::optional<thresher::Batch> b = full.next()) {
        for (std::uint64_t id : b->ids()) seen[id < 10000 ? id : 0]++;
        n += b->size();
    }
    CHECK(n == 10000);
    CHECK(std::all_of(seen.begin(), seen.end(), [](unsigned char s) { return s == 1; }));
    CHECK(full.next().has_value()); // the call after the end starts epoch 1
    CHECK(full.epoch_info().epoch == 1);
    // Leaving a range early keeps the loader mid-epoch: the next range continues it.
    std::size_t first = 0, rest = 0;
    for (auto &b : full.epoch()) {
        first += b.size();
        break;
    }
    for (auto &b : full.epoch()) rest += b.size();
    CHECK(first == 1000 && rest == 8000); // 1000 taken above, 1000 in the break, 8000 left
}

static void test_spans_match_c() {
    thresher::Loader loader(config("\"batch_size\": 100, \"transform\": {\"dtype\": \"u8\"}"));
    std::optional<thresher::Batch> b = loader.next();
    CHECK(b.has_value());
    if (!b) return;
    thresher_batch *raw = b->get();
    CHECK(raw != nullptr);
    CHECK(b->size() == thresher_batch_len(raw) && b->size() == 100);
    CHECK(b->ids().data() == thresher_batch_ids(raw) && b->ids().size() == 100);
    CHECK(b->labels().data() == thresher_batch_labels(raw) && b->labels().size() == 100);
    CHECK(b->weights().data() == thresher_batch_weights(raw) && b->weights().size() == 100);
    thresher_tensor t;
    CHECK(thresher_batch_data(raw, &t) == THRESHER_OK);
    thresher::Tensor x = b->data();
    CHECK(x.data() == t.data && x.dtype() == THRESHER_U8 && x.ndim() == 4);
    CHECK(x.shape().size() == 4 && x.dim(0) == 100 && x.dim(1) == 1 && x.dim(2) == 28 &&
          x.dim(3) == 28);
    CHECK(x.numel() == 100 * 784 && x.nbytes() == 100 * 784);
    CHECK(x.as<const std::uint8_t>().data() == t.data);
    CHECK_THROWS(x.as<float>(), THRESHER_INVALID_ARGUMENT, "u8");
    CHECK(std::all_of(b->weights().begin(), b->weights().end(), [](float w) { return w == 1.0f; }));
    CHECK(std::all_of(b->labels().begin(), b->labels().end(),
                      [](std::int64_t l) { return l >= 0 && l < 10; }));

    thresher::Loader f32(config("\"batch_size\": 64"));
    std::optional<thresher::Batch> fb = f32.next();
    CHECK(fb && fb->data().dtype() == THRESHER_F32 && fb->data().nbytes() == 64 * 784 * 4);
    if (fb) {
        thresher::span<const float> px = fb->data().as<const float>();
        CHECK(px.size() == 64 * 784);
        CHECK(std::all_of(px.begin(), px.end(), [](float v) { return v >= 0.0f && v <= 1.0f; }));
    }
}

static void test_moves() {
    thresher::Loader a(config("\"batch_size\": 500"));
    thresher_loader *raw = a.get();
    thresher::Loader b(std::move(a));
    CHECK(!a && a.get() == nullptr && b.get() == raw);
    // Every call on the moved-from loader throws (the C API refuses NULL), none crashes.
    CHECK_THROWS(a.next(), THRESHER_INVALID_ARGUMENT, "loader");
    CHECK_THROWS(a.epoch_info(), THRESHER_INVALID_ARGUMENT, "loader");
    a = std::move(b); // move-assign back
    CHECK(a.get() == raw && !b);

    std::optional<thresher::Batch> first = a.next(), second = a.next();
    CHECK(first && second);
    if (!first || !second) return;
    thresher_batch *raw1 = first->get();
    thresher::Batch kept(std::move(*first));
    CHECK(kept.get() == raw1 && !*first);
    CHECK(first->size() == 0 && first->ids().empty() && first->weights().empty());
    CHECK_THROWS(first->data(), THRESHER_INVALID_ARGUMENT, "NULL");
    // Move-assignment releases the batch it overwrites (LeakSanitizer would see a leak).
    kept = std::move(*second);
    CHECK(kept.size() == 500 && !*second);
    // Batches in a container move with it.
    std::vector<thresher::Batch> held;
    for (int i = 0; i < 5; i++) held.push_back(std::move(*a.next()));
    CHECK(held.size() == 5 && held[4].size() == 500);
    // release()/adopt: ownership back to C and into C++ again.
    thresher_batch *c = kept.release();
    CHECK(!kept && c != nullptr);
    thresher::Batch adopted(c);
    CHECK(adopted.size() == 500);
    adopted.reset();
    CHECK(!adopted);
    thresher_loader *cl = nullptr;
    CHECK(thresher_loader_new(config("\"batch_size\": 10").c_str(), &cl) == THRESHER_OK);
    thresher::Loader owned = thresher::Loader::adopt(cl);
    CHECK(owned.get() == cl && owned.next()->size() == 10);
}

static void test_batch_outlives_loader() {
    std::optional<thresher::Batch> b1, b2;
    std::vector<std::uint64_t> ids;
    std::vector<unsigned char> bytes;
    {
        thresher::Loader loader(config("\"batch_size\": 200, \"workers\": 3, \"prefetch\": 8, "
                                       "\"transform\": {\"dtype\": \"u8\"}"));
        b1 = loader.next();
        b2 = loader.next();
        CHECK(b1 && b2);
        if (!b1 || !b2) return;
        ids.assign(b2->ids().begin(), b2->ids().end());
        const auto px = b2->data().as<const std::uint8_t>();
        bytes.assign(px.begin(), px.end());
        b1.reset(); // back to the pool while the loader lives
    }               // the loader is freed mid-epoch with workers busy and b2 lent out
    CHECK(b2->size() == 200);
    CHECK(std::equal(ids.begin(), ids.end(), b2->ids().begin()));
    const auto px = b2->data().as<const std::uint8_t>();
    CHECK(px.size() == bytes.size() && std::memcmp(px.data(), bytes.data(), bytes.size()) == 0);
    b2.reset(); // released after the loader: ASan checks nothing was freed too early
}

static void test_feedback() {
    thresher::Loader loader(config("\"batch_size\": 128, "
                                   "\"policy\": {\"kind\": \"infobatch\", \"prune\": 0.5, "
                                   "\"epochs\": 4}"));
    std::size_t steps = 0;
    for (auto &batch : loader.epoch()) {
        const std::size_t n = batch.size();
        std::vector<float> loss(n), grad(n), el2n(n), emb(n * 3);
        std::vector<std::uint8_t> correct(n);
        for (std::size_t i = 0; i < n; i++) {
            loss[i] = 0.01f * static_cast<float>((batch.ids()[i] * 7919) % 300);
            grad[i] = loss[i] * 0.5f;
            el2n[i] = std::sqrt(loss[i]);
            correct[i] = loss[i] < 1.0f;
            emb[3 * i] = emb[3 * i + 1] = emb[3 * i + 2] = loss[i];
        }
        switch (steps++ % 4) {
        case 0: loader.feedback(batch.ids(), loss); break; // spans, minimal
        case 1: loader.feedback(batch.ids(), loss, grad, el2n, correct, emb, 3); break;
        case 2: // pointers
            loader.feedback(n, batch.ids().data(), loss.data(), nullptr, el2n.data());
            break;
        default: { // the named-field struct
            thresher::Feedback fb;
            fb.ids = batch.ids();
            fb.loss = loss;
            fb.correct = correct;
            loader.feedback(fb);
        }
        }
    }
    CHECK(steps == 79); // ceil(10000 / 128): epoch 0 of infobatch keeps everything
    // Length mismatches are caught before the C call, naming the field.
    std::vector<std::uint64_t> ids{1, 2, 3};
    std::vector<float> two{1.0f, 2.0f}, three{1.0f, 2.0f, 3.0f};
    CHECK_THROWS(loader.feedback(ids, two), THRESHER_INVALID_ARGUMENT, "loss");
    CHECK_THROWS(loader.feedback(ids, three, two), THRESHER_INVALID_ARGUMENT, "grad_norm");
    CHECK_THROWS(loader.feedback(ids, three, {}, {}, {}, three, 2), THRESHER_INVALID_ARGUMENT,
                 "embedding");
    // The library's own validation, with its message.
    std::vector<std::uint64_t> far{1, 10000};
    CHECK_THROWS(loader.feedback(far, two), THRESHER_INVALID_ARGUMENT, "ids[1]");
    std::vector<float> nan{1.0f, std::nanf("")};
    CHECK_THROWS(loader.feedback(2, ids.data(), nan.data()), THRESHER_INVALID_ARGUMENT,
                 "loss[1]");
    // The plan of epoch 1 prunes: infobatch drops half of the below-mean samples.
    thresher::EpochInfo info = loader.epoch_info();
    CHECK(info.epoch == 1 && info.samples < 10000 && info.samples > 5000);
    // Feedback from another thread while this one reads batches (documented as thread-safe).
    std::optional<thresher::Batch> b = loader.next();
    CHECK(b.has_value());
    if (b) {
        std::vector<float> loss(b->size(), 0.5f);
        std::thread t([&] { loader.feedback(b->ids(), loss); });
        std::optional<thresher::Batch> b2 = loader.next();
        t.join();
        CHECK(b2.has_value());
    }
}

static void test_report_and_files() {
    thresher::Loader loader(config("\"batch_size\": 250, \"seed\": 3, "
                                   "\"policy\": {\"kind\": \"random\", \"prune\": 0.4, "
                                   "\"rescale\": true}"));
    for (auto &batch : loader.epoch()) {
        std::vector<float> loss(batch.size(), 1.0f);
        loader.feedback(batch.ids(), loss);
    }
    thresher::EpochReport r = loader.report();
    CHECK(r.epoch == 0 && r.samples == 6000 && r.dataset_len == 10000);
    CHECK(std::fabs(r.prune_fraction - 0.4) < 1e-9 && std::fabs(r.saved_fraction - 0.4) < 1e-9);
    CHECK(std::fabs(r.mean_weight - 1.0 / 0.6) < 1e-5);
    CHECK(r.batches == 24 && r.delivered == 24);

    const std::string dir = temp_dir();
    const std::string scores = dir + "/scores.bin", state = dir + "/state.ckpt";
    loader.save_scores(scores);
    CHECK(file_exists(scores));
    const std::string bad = dir + "/no-such-dir/scores.bin";
    CHECK_THROWS(loader.save_scores(bad), THRESHER_IO, bad);
    CHECK_THROWS(loader.save_state(bad), THRESHER_IO, bad);

    // Checkpoint mid-epoch (epoch 1, after 3 batches); a resumed loader continues exactly.
    for (int i = 0; i < 3; i++) loader.next();
    loader.save_state(state);
    CHECK(file_exists(state));
    thresher::Loader resumed(config("\"batch_size\": 250, \"seed\": 3, \"resume_from\": " +
                                    json_string(state) +
                                    ", \"policy\": {\"kind\": \"random\", \"prune\": 0.4, "
                                    "\"rescale\": true}"));
    for (int i = 0; i < 3; i++) {
        std::optional<thresher::Batch> a = loader.next(), b = resumed.next();
        CHECK(a && b);
        if (!a || !b) break;
        CHECK(a->size() == b->size());
        CHECK(std::equal(a->ids().begin(), a->ids().end(), b->ids().begin()));
        CHECK(std::equal(a->weights().begin(), a->weights().end(), b->weights().begin()));
        thresher::Tensor ta = a->data(), tb = b->data();
        CHECK(ta.nbytes() == tb.nbytes() && std::memcmp(ta.data(), tb.data(), ta.nbytes()) == 0);
    }
    CHECK(resumed.epoch_info().epoch == 1);
    std::remove(scores.c_str());
    std::remove(state.c_str());
    rmdir(dir.c_str());
}

static void test_dlpack() {
    dl::ManagedTensor *m = nullptr;
    const void *want = nullptr;
    {
        thresher::Loader loader(config("\"batch_size\": 32"));
        std::optional<thresher::Batch> b = loader.next();
        CHECK(b.has_value());
        if (!b) return;
        m = static_cast<dl::ManagedTensor *>(b->dlpack(THRESHER_FIELD_DATA));
        want = b->data().data();
        CHECK_THROWS(b->dlpack(static_cast<thresher::Field>(7)), THRESHER_INVALID_ARGUMENT,
                     "field");
    } // batch and loader gone; the tensor keeps the memory
    CHECK(m != nullptr && m->deleter != nullptr);
    if (!m) return;
    CHECK(m->dl_tensor.data == want && m->dl_tensor.ndim == 4);
    CHECK(m->dl_tensor.dtype.code == 2 && m->dl_tensor.dtype.bits == 32);
    CHECK(m->dl_tensor.shape[0] == 32 && m->dl_tensor.shape[3] == 28);
    const float *px = static_cast<const float *>(m->dl_tensor.data);
    CHECK(px[32 * 784 - 1] >= 0.0f); // readable: ASan would flag freed memory
    m->deleter(m);
}

// Token blocks and ragged documents through the typed accessors: x is data(), y targets(),
// the mask only with offsets; an image batch has neither targets nor mask.
static void test_typed_tensors() {
    const std::string dir = temp_dir();
    const std::string tokens = dir + "/t.bin", offsets = dir + "/o.npy";
    std::vector<std::uint32_t> tok(21);
    for (std::size_t i = 0; i < tok.size(); i++) tok[i] = 70000 + 5 * static_cast<std::uint32_t>(i);
    {
        std::ofstream f(tokens, std::ios::binary);
        f.write(reinterpret_cast<const char *>(tok.data()),
                static_cast<std::streamsize>(tok.size() * 4));
    }
    thresher::Loader l("{\"source\": {\"kind\": \"tokens\", \"path\": " + json_string(tokens) +
                       ", \"dtype\": \"u32\", \"block\": 5}, \"batch_size\": 8, "
                       "\"shuffle\": false}");
    std::optional<thresher::Batch> b = l.next();
    CHECK(b && b->size() == 4 && b->labels().empty() && !b->mask());
    if (b) {
        const thresher::Tensor x = b->data();
        const std::optional<thresher::Tensor> y = b->targets();
        CHECK(x.dtype() == THRESHER_U32 && x.ndim() == 2 && x.dim(1) == 5 && x.element_size() == 4);
        CHECK(y && y->dtype() == THRESHER_U32 && y->nbytes() == 4 * 5 * 4);
        CHECK_THROWS(x.as<const std::uint16_t>(), THRESHER_INVALID_ARGUMENT, "u32");
        if (y) {
            const auto xs = x.as<const std::uint32_t>();
            const auto ys = y->as<const std::uint32_t>();
            for (std::size_t i = 0; i < 4; i++)
                for (std::size_t k = 0; k < 5; k++) {
                    CHECK(xs[5 * i + k] == tok[5 * i + k]);
                    CHECK(ys[5 * i + k] == tok[5 * i + k + 1]);
                }
        }
    }
    // Ragged: one document of 2 tokens and one of 19, block 5.
    {
        static const unsigned char npy_header[] =
            "\x93NUMPY\x01\x00\x76\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
        std::string h(reinterpret_cast<const char *>(npy_header), sizeof npy_header - 1);
        while ((h.size() + 1) % 64 != 0) h += ' ';
        h += '\n';
        h[8] = static_cast<char>(h.size() - 10);
        const std::int64_t off[3] = {0, 2, 21};
        std::ofstream f(offsets, std::ios::binary);
        f.write(h.data(), static_cast<std::streamsize>(h.size()));
        f.write(reinterpret_cast<const char *>(off), sizeof off);
    }
    thresher::Loader r("{\"source\": {\"kind\": \"tokens\", \"path\": " + json_string(tokens) +
                       ", \"dtype\": \"u32\", \"block\": 5, \"offsets\": " +
                       json_string(offsets) + "}, \"batch_size\": 8, \"shuffle\": false}");
    b = r.next();
    CHECK(b && b->size() == 2);
    if (b) {
        const std::optional<thresher::Tensor> m = b->mask();
        CHECK(m && m->dtype() == THRESHER_U8 && m->dim(0) == 2 && m->dim(1) == 5);
        if (m) {
            const auto ms = m->as<const std::uint8_t>();
            const std::uint8_t want[10] = {1, 0, 0, 0, 0, 1, 1, 1, 1, 1};
            CHECK(std::equal(ms.begin(), ms.end(), want));
        }
    }
    // Images: no targets, no mask.
    thresher::Loader images(config("\"batch_size\": 4"));
    b = images.next();
    CHECK(b && !b->targets() && !b->mask() && b->labels().size() == 4);
    CHECK(thresher::dtype_size(THRESHER_BF16) == 2 && thresher::dtype_size(THRESHER_F64) == 8);
    CHECK(std::string(thresher::dtype_name(THRESHER_BF16)) == "bf16");
    std::remove(tokens.c_str());
    std::remove(offsets.c_str());
    std::remove(dir.c_str());
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FASHION_MNIST_DIR (gzipped IDX files)\n", argv[0]);
        return 2;
    }
    g_images = std::string(argv[1]) + "/t10k-images-idx3-ubyte.gz";
    g_labels = std::string(argv[1]) + "/t10k-labels-idx1-ubyte.gz";

    run("versions", test_versions); // first: nothing may have failed on this thread yet
    run("span", test_span);
    run("errors", test_errors);
    run("epoch_range", test_epoch_range);
    run("spans_match_c", test_spans_match_c);
    run("moves", test_moves);
    run("batch_outlives_loader", test_batch_outlives_loader);
    run("feedback", test_feedback);
    run("report_and_files", test_report_and_files);
    run("dlpack", test_dlpack);
    run("typed_tensors", test_typed_tensors);
    run("index_batches", test_index_batches);
    run("epoch_plan", test_epoch_plan);
    run("total_batches", test_total_batches);
    run("plan_padding", test_plan_padding);
    run("end_epoch_and_save_state_at", test_end_epoch_and_save_state_at);
    run("advance", test_advance);
    run("noisy_labels_warning", test_noisy_labels_warning);

    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
