// idx.hpp — reads (Fashion-)MNIST IDX files, raw or gzipped, with no library: a small gzip
// member parser, a DEFLATE decoder (RFC 1951, written after the structure of zlib's
// contrib/puff: canonical Huffman codes decoded a bit at a time) and the IDX header.
//
// Part of examples/cpp_reader: the point of that example is a pipeline that reads its own
// samples and asks thresher only for ids and weights, so the decoding here is its own too.
// Decoding stops once `max_bytes` of output exist (a `limit` on samples then inflates only the
// front of the file); the gzip trailer's CRC-32 and length are checked when a file is inflated
// whole.

#ifndef CPP_READER_IDX_HPP
#define CPP_READER_IDX_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace idx {

struct Error : std::runtime_error {
    explicit Error(const std::string &what) : std::runtime_error(what) {}
};

inline std::vector<std::uint8_t> read_file(const std::string &path) {
    std::FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("cannot open " + path);
    std::vector<std::uint8_t> bytes;
    std::uint8_t buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw Error("cannot read " + path);
    return bytes;
}

// ---- DEFLATE ---------------------------------------------------------------------------------

namespace detail {

class Inflater {
  public:
    Inflater(const std::uint8_t *in, std::size_t len, std::size_t max_out)
        : in_(in), len_(len), max_out_(max_out) {}

    // Decodes blocks until the last one ends or `max_out` bytes exist. Returns true when the
    // stream ended (then consumed() is where the gzip trailer begins).
    bool run(std::vector<std::uint8_t> &out) {
        for (;;) {
            if (out.size() >= max_out_) return false;
            const unsigned last = bits(1);
            switch (bits(2)) {
            case 0: stored(out); break;
            case 1: fixed(out); break;
            case 2: dynamic(out); break;
            default: throw Error("deflate: invalid block type 3");
            }
            if (stopped_) return false; // max_out reached inside the block
            if (last) return true;
        }
    }
    std::size_t consumed() const { return pos_; }

  private:
    static constexpr int kMaxBits = 15;
    struct Huffman {
        std::array<std::int16_t, kMaxBits + 1> count{};
        std::array<std::int16_t, 288> symbol{};
    };

    unsigned bits(int need) {
        std::uint32_t val = bitbuf_;
        while (bitcnt_ < need) {
            if (pos_ >= len_) throw Error("deflate: the stream ends early");
            val |= static_cast<std::uint32_t>(in_[pos_++]) << bitcnt_;
            bitcnt_ += 8;
        }
        bitbuf_ = val >> need;
        bitcnt_ -= need;
        return val & ((1u << need) - 1u);
    }

    // Canonical code from code lengths; an over-subscribed set is an error, an incomplete one
    // is allowed only for a single code (as RFC 1951 permits for distance codes).
    static void build(Huffman &h, const std::int16_t *length, int n) {
        h.count.fill(0);
        for (int s = 0; s < n; s++) h.count[static_cast<std::size_t>(length[s])]++;
        if (h.count[0] == n) return; // no codes: any use of it fails in decode
        int left = 1;
        for (int len = 1; len <= kMaxBits; len++) {
            left = (left << 1) - h.count[static_cast<std::size_t>(len)];
            if (left < 0) throw Error("deflate: over-subscribed Huffman code");
        }
        std::array<std::int16_t, kMaxBits + 1> offs{};
        for (int len = 1; len < kMaxBits; len++)
            offs[static_cast<std::size_t>(len + 1)] = static_cast<std::int16_t>(
                offs[static_cast<std::size_t>(len)] + h.count[static_cast<std::size_t>(len)]);
        for (int s = 0; s < n; s++)
            if (length[s] != 0)
                h.symbol[static_cast<std::size_t>(offs[static_cast<std::size_t>(length[s])]++)] =
                    static_cast<std::int16_t>(s);
    }

    int decode(const Huffman &h) {
        int code = 0, first = 0, index = 0;
        for (int len = 1; len <= kMaxBits; len++) {
            code |= static_cast<int>(bits(1));
            const int count = h.count[static_cast<std::size_t>(len)];
            if (code - count < first)
                return h.symbol[static_cast<std::size_t>(index + (code - first))];
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        throw Error("deflate: invalid Huffman code");
    }

    void stored(std::vector<std::uint8_t> &out) {
        bitbuf_ = 0; // to a byte boundary
        bitcnt_ = 0;
        if (pos_ + 4 > len_) throw Error("deflate: the stream ends early");
        const unsigned n = in_[pos_] | in_[pos_ + 1] << 8;
        const unsigned nn = in_[pos_ + 2] | in_[pos_ + 3] << 8;
        pos_ += 4;
        if ((n ^ 0xffffu) != nn) throw Error("deflate: stored block length check failed");
        if (pos_ + n > len_) throw Error("deflate: the stream ends early");
        out.insert(out.end(), in_ + pos_, in_ + pos_ + n);
        pos_ += n;
    }

    void codes(std::vector<std::uint8_t> &out, const Huffman &lit, const Huffman &dist) {
        static const std::uint16_t lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10,  11,  13,
                                                15, 17, 19, 23, 27, 31, 35, 43,  51,  59,
                                                67, 83, 99, 115, 131, 163, 195, 227, 258};
        static const std::uint8_t lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                              2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
        static const std::uint16_t dbase[30] = {
            1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
            193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
        static const std::uint8_t dext[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                              6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
        for (;;) {
            int symbol = decode(lit);
            if (symbol < 256) {
                out.push_back(static_cast<std::uint8_t>(symbol));
                if (out.size() >= max_out_) {
                    stopped_ = true; // enough: the caller stops here
                    return;
                }
            } else if (symbol == 256) {
                return;
            } else {
                symbol -= 257;
                if (symbol >= 29) throw Error("deflate: invalid length code");
                const std::size_t len = lbase[symbol] + bits(lext[symbol]);
                const int ds = decode(dist);
                if (ds >= 30) throw Error("deflate: invalid distance code");
                const std::size_t d = dbase[ds] + bits(dext[ds]);
                if (d > out.size()) throw Error("deflate: distance too far back");
                for (std::size_t i = 0; i < len; i++) out.push_back(out[out.size() - d]);
                if (out.size() >= max_out_) {
                    stopped_ = true;
                    return;
                }
            }
        }
    }

    void fixed(std::vector<std::uint8_t> &out) {
        static const auto tables = [] {
            std::pair<Huffman, Huffman> t;
            std::int16_t lengths[288];
            for (int s = 0; s < 288; s++) lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
            build(t.first, lengths, 288);
            for (int s = 0; s < 30; s++) lengths[s] = 5;
            build(t.second, lengths, 30);
            return t;
        }();
        codes(out, tables.first, tables.second);
    }

    void dynamic(std::vector<std::uint8_t> &out) {
        static const std::uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                               11, 4,  12, 3, 13, 2, 14, 1, 15};
        const int nlen = static_cast<int>(bits(5)) + 257, ndist = static_cast<int>(bits(5)) + 1;
        const int ncode = static_cast<int>(bits(4)) + 4;
        if (nlen > 286 || ndist > 30) throw Error("deflate: bad code counts");
        std::int16_t lengths[320] = {};
        for (int i = 0; i < ncode; i++) lengths[order[i]] = static_cast<std::int16_t>(bits(3));
        Huffman lencode, lit, dist;
        build(lencode, lengths, 19);
        int i = 0;
        while (i < nlen + ndist) {
            int symbol = decode(lencode);
            if (symbol < 16) {
                lengths[i++] = static_cast<std::int16_t>(symbol);
                continue;
            }
            std::int16_t value = 0;
            int repeat;
            if (symbol == 16) {
                if (i == 0) throw Error("deflate: repeat with no first length");
                value = lengths[i - 1];
                repeat = 3 + static_cast<int>(bits(2));
            } else if (symbol == 17) {
                repeat = 3 + static_cast<int>(bits(3));
            } else {
                repeat = 11 + static_cast<int>(bits(7));
            }
            if (i + repeat > nlen + ndist) throw Error("deflate: too many lengths");
            while (repeat--) lengths[i++] = value;
        }
        if (lengths[256] == 0) throw Error("deflate: no end-of-block code");
        build(lit, lengths, nlen);
        build(dist, lengths + nlen, ndist);
        codes(out, lit, dist);
    }

    const std::uint8_t *in_;
    std::size_t len_, pos_ = 0, max_out_;
    std::uint32_t bitbuf_ = 0;
    int bitcnt_ = 0;
    bool stopped_ = false;
};

inline std::uint32_t crc32(const std::uint8_t *p, std::size_t n) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; i++) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

inline std::uint32_t le32(const std::uint8_t *p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

} // namespace detail

/// The file's bytes, gunzipped when it starts with the gzip magic; at most about `max_bytes`
/// (at least that many when the file has them).
inline std::vector<std::uint8_t> load(const std::string &path,
                                      std::size_t max_bytes = static_cast<std::size_t>(-1)) {
    std::vector<std::uint8_t> raw = read_file(path);
    if (raw.size() < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
    // RFC 1952 member header: ID1 ID2 CM FLG MTIME(4) XFL OS [EXTRA] [NAME] [COMMENT] [HCRC].
    if (raw.size() < 18 || raw[2] != 8) throw Error(path + ": not a deflate gzip file");
    const std::uint8_t flags = raw[3];
    std::size_t pos = 10;
    auto need = [&](std::size_t n) {
        if (pos + n > raw.size()) throw Error(path + ": truncated gzip header");
    };
    if (flags & 4) { // FEXTRA
        need(2);
        pos += 2 + (raw[pos] | raw[pos + 1] << 8);
    }
    for (int bit : {8, 16}) // FNAME, FCOMMENT: NUL-terminated
        if (flags & bit) {
            while (need(1), raw[pos] != 0) pos++;
            pos++;
        }
    if (flags & 2) pos += 2; // FHCRC
    need(0);
    std::vector<std::uint8_t> out;
    detail::Inflater inflater(raw.data() + pos, raw.size() - pos, max_bytes);
    try {
        if (inflater.run(out)) {
            const std::size_t end = pos + inflater.consumed();
            if (end + 8 > raw.size()) throw Error("the gzip trailer is missing");
            if (detail::le32(&raw[end]) != detail::crc32(out.data(), out.size()))
                throw Error("CRC-32 mismatch");
            if (detail::le32(&raw[end + 4]) != static_cast<std::uint32_t>(out.size()))
                throw Error("length mismatch");
        }
    } catch (const Error &e) {
        throw Error(path + ": " + e.what());
    }
    return out;
}

inline std::uint32_t be32(const std::uint8_t *p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}

/// An IDX image file (magic 0x00000803: unsigned bytes, 3 dimensions) and its label file
/// (0x00000801), the first `limit` samples (0: all), decoded and checked against each other.
struct Dataset {
    std::size_t n = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels; // n * rows * cols, row-major
    std::vector<std::uint8_t> labels; // n

    std::size_t pixels_per_image() const { return rows * cols; }
    const std::uint8_t *image(std::size_t i) const { return pixels.data() + i * rows * cols; }
};

inline Dataset load_dataset(const std::string &images, const std::string &labels,
                            std::size_t limit = 0) {
    // The headers first (16 and 8 bytes), to know how much to inflate.
    std::vector<std::uint8_t> ih = load(images, 16), lh = load(labels, 8);
    if (ih.size() < 16 || be32(ih.data()) != 0x00000803u)
        throw Error(images + ": not an IDX file of unsigned bytes in 3 dimensions");
    if (lh.size() < 8 || be32(lh.data()) != 0x00000801u)
        throw Error(labels + ": not an IDX file of unsigned bytes in 1 dimension");
    Dataset d;
    const std::size_t count = be32(ih.data() + 4);
    d.rows = be32(ih.data() + 8);
    d.cols = be32(ih.data() + 12);
    if (be32(lh.data() + 4) != count)
        throw Error(labels + " has " + std::to_string(be32(lh.data() + 4)) + " labels, " +
                    images + " " + std::to_string(count) + " images");
    d.n = limit > 0 && limit < count ? limit : count;
    const std::size_t image_bytes = 16 + d.n * d.rows * d.cols, label_bytes = 8 + d.n;
    ih = load(images, image_bytes);
    lh = load(labels, label_bytes);
    if (ih.size() < image_bytes) throw Error(images + ": fewer images than its header says");
    if (lh.size() < label_bytes) throw Error(labels + ": fewer labels than its header says");
    d.pixels.assign(ih.begin() + 16, ih.begin() + static_cast<std::ptrdiff_t>(image_bytes));
    d.labels.assign(lh.begin() + 8, lh.begin() + static_cast<std::ptrdiff_t>(label_bytes));
    for (std::size_t i = 0; i < d.n; i++)
        if (d.labels[i] > 9) throw Error(labels + ": label " + std::to_string(d.labels[i]) +
                                         " of sample " + std::to_string(i) + " is not 0..9");
    return d;
}

} // namespace idx

#endif // CPP_READER_IDX_HPP
