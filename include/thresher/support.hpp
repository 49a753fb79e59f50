// thresher/support.hpp — what every part of the wrapper uses: thresher::Error and the status check, the
// library's version and ABI check, and thresher::span.
// A part of thresher.hpp (the C++17 wrapper over thresher.h), which includes it: include
// thresher.hpp, not this file. Installed beside it by `make install` (PREFIX/include/thresher/).

#ifndef THRESHER_SUPPORT_HPP
#define THRESHER_SUPPORT_HPP

#include "../thresher.h"

#include <cstddef>
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

} // namespace thresher

#endif // THRESHER_SUPPORT_HPP
