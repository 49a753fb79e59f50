// header_cpp.cpp — thresher.h must compile as C++ (extern "C", no C-only constructs) and must
// survive being included twice (include guard). Compiled by `make test-c` with
// g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only; never linked or run.
#include "thresher.h"
#include "thresher.h"

#include <cstdio>

int main() {
    // Take the address of a few declarations so their C++ signatures are checked.
    thresher_status (*make)(const char *, thresher_loader **) = &thresher_loader_new;
    thresher_status (*next)(thresher_loader *, thresher_batch **) = &thresher_loader_next;
    void (*release)(thresher_batch *) = &thresher_batch_release;
    size_t (*last_error)(char *, size_t) = &thresher_last_error;
    thresher_feedback fb = {};
    thresher_epoch_info info = {};
    thresher_tensor tensor = {};
    std::printf("%s %u %d %p %p %p %p %zu %llu %d\n", THRESHER_VERSION, thresher_abi_version(),
                static_cast<int>(THRESHER_END_OF_EPOCH), reinterpret_cast<void *>(make),
                reinterpret_cast<void *>(next), reinterpret_cast<void *>(release),
                reinterpret_cast<void *>(last_error), fb.len,
                static_cast<unsigned long long>(info.epoch), static_cast<int>(tensor.dtype));
    return 0;
}
