// wrapper_test.hpp — what the parts of the C++ wrapper test share: the check harness and the
// helpers (defined in wrapper_test.cpp, with main and the tests of loaders with data), and the
// index-mode tests (wrapper_index.cpp) that main runs. The same shape as tests/c/abi_test.h.
#ifndef THRESHER_WRAPPER_TEST_HPP
#define THRESHER_WRAPPER_TEST_HPP

#include "thresher.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

// ---- the harness ----------------------------------------------------------------------------

// Checks passed and failed so far; main prints them.
extern int g_passed, g_failed;

void check_impl(bool ok, const char *expr, const char *file, int line);
// `body` must throw thresher::Error with `want` and a message containing `needle`.
void check_throws_impl(const std::function<void()> &body, thresher_status want,
                       const std::string &needle, const char *expr, const char *file, int line);

#define CHECK(cond) check_impl(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define CHECK_THROWS(stmt, want, needle) \
    check_throws_impl([&] { stmt; }, (want), (needle), #stmt, __FILE__, __LINE__)
// `stmt` must throw the standard exception `type`.
#define CHECK_THROWS_STD(stmt, type)                                                            \
    do {                                                                                         \
        bool threw_ = false;                                                                     \
        try {                                                                                    \
            (void)(stmt);                                                                        \
        } catch (const type &) {                                                                 \
            threw_ = true;                                                                       \
        }                                                                                        \
        check_impl(threw_, #stmt " throws " #type, __FILE__, __LINE__);                          \
    } while (0)

// ---- helpers --------------------------------------------------------------------------------

// Fashion-MNIST t10k (10,000 samples): the gzipped IDX files, set by main.
extern std::string g_images, g_labels;

// A JSON string literal (quotes and backslashes escaped).
std::string json_string(const std::string &s);
// A config over (images, labels) plus `extra` top-level keys.
std::string config(const std::string &extra = "", const std::string &images = g_images,
                   const std::string &labels = g_labels);
// An index-mode config over `len` ids plus `extra` top-level keys.
std::string index_config(std::size_t len, const std::string &extra = "");
// A new directory under /tmp (exits with status 2 when none can be made).
std::string temp_dir();
bool file_exists(const std::string &path);

// ---- DLPack (wrapper_test.cpp, wrapper_index.cpp) -------------------------------------------

// DLPack 0.8, declared here as a consumer would (thresher.h deliberately does not).
namespace dl {
struct Device {
    std::int32_t device_type, device_id;
};
struct DataType {
    std::uint8_t code, bits;
    std::uint16_t lanes;
};
struct Tensor {
    void *data;
    Device device;
    std::int32_t ndim;
    DataType dtype;
    std::int64_t *shape, *strides;
    std::uint64_t byte_offset;
};
struct ManagedTensor {
    Tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(ManagedTensor *);
};
} // namespace dl

// ---- the index-mode tests (wrapper_index.cpp), in the order main runs them ------------------

void test_index_batches();
void test_epoch_plan();
void test_total_batches();
void test_plan_padding();
void test_end_epoch_and_save_state_at();
void test_advance();
void test_noisy_labels_warning();

#endif // THRESHER_WRAPPER_TEST_HPP
