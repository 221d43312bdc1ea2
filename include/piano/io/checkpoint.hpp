// piano/io/checkpoint.hpp: save a model (and its training state) to one file, load it back.
//
// A checkpoint holds everything needed to continue a run bit for bit: the parameters by
// name, the model's config, the optimizer's state keyed by parameter name, the step and
// epoch counters and the random generator's state. Names, not positions, tie the file to
// the model, so a file written by a model that registered its parameters in another order
// still loads, and a mismatch is reported by name and shape.
//
// This is the only piano header that includes cereal. Everything is written by plain,
// non-polymorphic save/load code: no type registration, so no load can fail because a
// registration was missing.
//
// File layout, format version 2. Binary (the default):
//   8 bytes   "PIANOCKP", raw, so the kind of file shows in its first bytes
//   then a cereal PortableBinaryArchive: 1 byte, the endianness (always little since
//   version 2; a reader byte-swaps values when it differs from its own), then
//   u32       format_version
//   string    scalar             "float" or "double"
//   i64       step, epoch
//   map       config
//   list      parameters         each: string name, matrix
//   u8        has_optimizer      0 or 1; if 1: string name, i64 step,
//                                list of (string parameter name, list of matrix)
//   string    rng_state
//   map       metadata
//   8 bytes   checksum: FNV-1a (64 bit) of every byte before it, magic included, little-endian
// where string = u64 length, bytes; list = u64 count, items; map = list of (string key,
// string value), keys ascending; matrix = i64 rows, i64 cols, u64 count (= rows*cols),
// count scalars in row-major order.
// JSON (for inspection and diffing) holds the same fields by name, after "magic":
// "PIANOCKP"; a list is an array of objects, a matrix {"rows", "cols", "values": [...]};
// its last field "checksum" is 16 hex digits, the checksum the binary file of the same
// checkpoint ends with, so it is checked against the contents as parsed (JSON has many
// spellings of one number). Scalars are written so that they parse back to the same bits.
// A corrupt file is refused by the checksum before its body is parsed (binary) or before
// load_checkpoint returns it (JSON); either way before anything is restored. Loading also
// refuses non-finite parameters and optimizer state, whatever the version.
// Version 1 (the same without the checksum) still loads, unchecked.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <cereal/archives/json.hpp>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/core/tensor.hpp"
#include "piano/nn/module.hpp"
#include "piano/optim/optimizer.hpp"
#include "piano/version.hpp"

namespace piano {

/// The format version this build writes, and the newest it reads.
inline constexpr std::uint32_t kCheckpointFormatVersion = 2;
/// The first version with a checksum; older files (version 1) load without one.
inline constexpr std::uint32_t kCheckpointFirstChecksummedVersion = 2;
/// The first 8 bytes of a binary checkpoint, and the "magic" field of a JSON one.
inline constexpr char kCheckpointMagic[] = "PIANOCKP";

enum class CheckpointFormat {
    binary,  // compact and exact; the default
    json     // readable, for inspection and diffs; also exact, but larger and slower
};

/// Everything a checkpoint file holds. Plain data: fill it with capture() or by hand.
template <typename T>
struct Checkpoint {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Checkpoint<T>: T is float or double");

    /// The model's hyperparameters, as the model class converts its config struct.
    std::map<std::string, std::string> config;
    /// name -> value, in the model's registration order.
    std::vector<std::pair<std::string, Matrix<T>>> parameters;
    /// The optimizer's state and Optimizer::name(); both absent for a model-only file.
    std::optional<OptimizerState<T>> optimizer;
    std::string optimizer_name;  // saved only together with `optimizer`
    /// The training loop's counters (capture leaves them 0; the loop sets them).
    long step = 0;
    long epoch = 0;
    /// A std::mt19937_64 written with operator<<; empty when no generator was captured.
    std::string rng_state;
    /// Free-form notes: data set, git revision, metrics...
    std::map<std::string, std::string> metadata;
};

namespace detail::checkpoint {

constexpr std::size_t kMagicSize = sizeof(kCheckpointMagic) - 1;
// The deepest nesting the format uses is 7: root, optimizer, slots, slot, buffers, matrix, values.
constexpr int kMaxJsonDepth = 16;

template <typename T>
const char* scalar_name() {
    return std::is_same_v<T, float> ? "float" : "double";
}

// FNV-1a, 64 bit. Every step (xor a byte, multiply by an odd number) is a bijection of
// the state, so any change confined to one byte of the input changes the result.
inline std::uint64_t checksum(const char* data, std::size_t size) {
    std::uint64_t h = 14695981039346656037ull;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 1099511628211ull;
    }
    return h;
}
inline std::string hex64(std::uint64_t v) {
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 15];
    return out;
}
constexpr std::size_t kChecksumSize = 8;
inline std::string checksum_bytes(std::uint64_t v) {  // little-endian
    std::string out(kChecksumSize, '\0');
    for (std::size_t i = 0; i < kChecksumSize; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
}
inline std::uint64_t read_checksum_bytes(const char* p) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < kChecksumSize; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
}

template <class Archive>
constexpr bool is_json =
    std::is_same_v<Archive, cereal::JSONOutputArchive> || std::is_same_v<Archive, cereal::JSONInputArchive>;

// --- Building blocks. Each is a JSON object or array; in binary only the values remain. ---

// An object whose fields `body(archive)` writes or reads in order.
template <class Body>
struct Fields {
    Body body;
    template <class Archive>
    void serialize(Archive& ar) {
        body(ar);
    }
};
template <class Body>
Fields<Body> fields(Body body) {
    return {std::move(body)};
}

// A list of objects: the count, then `write(archive, item)` for each item, inside its object.
template <class Container, class Write>
struct ListOut {
    const Container& items;
    Write write;
    template <class Archive>
    void save(Archive& ar) const {
        ar(cereal::make_size_tag(static_cast<cereal::size_type>(items.size())));
        for (const auto& item : items) ar(fields([&](auto& a) { write(a, item); }));
    }
};
template <class Container, class Write>
ListOut<Container, Write> list_out(const Container& items, Write write) {
    return {items, std::move(write)};
}

// Reads what ListOut wrote: `read(archive)` once per object. Nothing is reserved from the
// count, so a corrupt count fails at the end of the file instead of allocating.
template <class Read>
struct ListIn {
    Read read;
    template <class Archive>
    void load(Archive& ar) {
        cereal::size_type count = 0;
        ar(cereal::make_size_tag(count));
        for (cereal::size_type i = 0; i < count; ++i) ar(fields([&](auto& a) { read(a); }));
    }
};
template <class Read>
ListIn<Read> list_in(Read read) {
    return {std::move(read)};
}

// A run of scalars (or the chars of a binary string): binary writes one block, JSON an
// array of numbers.
template <class E>
struct SpanOut {
    const E* data;
    std::size_t size;
    template <class Archive>
    void save(Archive& ar) const {
        ar(cereal::make_size_tag(static_cast<cereal::size_type>(size)));
        if constexpr (is_json<Archive>) {
            for (std::size_t i = 0; i < size; ++i) ar(data[i]);
        } else {
            ar(cereal::binary_data(data, size * sizeof(E)));
        }
    }
};

// Reads a SpanOut into a std::vector or std::string. A binary count is read in chunks and
// the container grows only as bytes actually arrive: a corrupt count of 2^60 then fails at
// the end of the file instead of allocating what it claims. (A JSON count is the length of
// an array already parsed, so it is real.)
template <class Container>
struct GrowIn {
    Container& out;
    template <class Archive>
    void load(Archive& ar) {
        using E = typename Container::value_type;
        cereal::size_type count = 0;
        ar(cereal::make_size_tag(count));
        out.clear();
        if constexpr (is_json<Archive> && std::is_same_v<E, float>) {
            // JSON numbers are doubles; one beyond float's range (1e39) would make the cast
            // cereal does undefined. It becomes an infinity here, which check_finite refuses.
            out.resize(static_cast<std::size_t>(count));
            for (auto& e : out) {
                double d = 0;
                ar(d);
                const double limit = std::numeric_limits<float>::max();
                e = d > limit    ? std::numeric_limits<float>::infinity()
                    : d < -limit ? -std::numeric_limits<float>::infinity()
                                 : static_cast<float>(d);
            }
        } else if constexpr (is_json<Archive>) {
            out.resize(static_cast<std::size_t>(count));
            for (auto& e : out) ar(e);
        } else {
            constexpr std::size_t chunk = (std::size_t{1} << 16) / sizeof(E);
            while (out.size() < count) {
                const std::size_t done = out.size();
                const auto take = static_cast<std::size_t>(std::min<cereal::size_type>(chunk, count - done));
                out.resize(done + take);
                ar(cereal::binary_data(out.data() + done, take * sizeof(E)));
            }
        }
    }
};

// Strings are JSON strings in JSON, length-prefixed bytes (read by GrowIn) in binary.
template <class Archive>
void put_text(Archive& ar, const char* name, const std::string& s) {
    if constexpr (is_json<Archive>) {
        ar(cereal::make_nvp(name, s));
    } else {
        ar(SpanOut<char>{s.data(), s.size()});
    }
}
template <class Archive>
void get_text(Archive& ar, const char* name, std::string& s) {
    if constexpr (is_json<Archive>) {
        ar(cereal::make_nvp(name, s));
    } else {
        ar(GrowIn<std::string>{s});
    }
}

// The fields of a matrix: rows, cols, values (row-major).
template <class Archive, typename T>
void put_matrix(Archive& ar, const Matrix<T>& m) {
    ar(cereal::make_nvp("rows", static_cast<std::int64_t>(m.rows())),
       cereal::make_nvp("cols", static_cast<std::int64_t>(m.cols())),
       cereal::make_nvp("values", SpanOut<T>{m.data(), static_cast<std::size_t>(m.size())}));
}
template <class Archive, typename T>
void get_matrix(Archive& ar, Matrix<T>& m) {
    std::int64_t rows = 0, cols = 0;
    std::vector<T> values;
    ar(cereal::make_nvp("rows", rows), cereal::make_nvp("cols", cols),
       cereal::make_nvp("values", GrowIn<std::vector<T>>{values}));
    // Compared by division: rows * cols may overflow in a corrupt file.
    const auto n = static_cast<std::uint64_t>(values.size());
    const auto r = static_cast<std::uint64_t>(rows), k = static_cast<std::uint64_t>(cols);
    const bool fits = rows >= 0 && cols >= 0 && (k == 0 ? n == 0 : n % k == 0 && n / k == r);
    if (!fits) {
        throw CheckpointError("a matrix declares shape [" + std::to_string(rows) + "," + std::to_string(cols) +
                              "] but holds " + std::to_string(n) + " values (the file is corrupt)");
    }
    m = Eigen::Map<const Matrix<T>>(values.data(), static_cast<Index>(rows), static_cast<Index>(cols));
}

inline auto put_text_map(const std::map<std::string, std::string>& map) {
    return list_out(map, [](auto& ar, const auto& entry) {
        put_text(ar, "key", entry.first);
        put_text(ar, "value", entry.second);
    });
}
inline auto get_text_map(std::map<std::string, std::string>& map, const char* what) {
    map.clear();
    return list_in([&map, what](auto& ar) {
        std::string key, value;
        get_text(ar, "key", key);
        get_text(ar, "value", value);
        if (!map.emplace(key, std::move(value)).second) {
            throw CheckpointError(std::string(what) + " key '" + key + "' appears twice (the file is corrupt)");
        }
    });
}

// The optimizer record: name, step, and per parameter name the list of its state buffers.
template <class Archive, typename T>
void put_optimizer(Archive& ar, const std::string& name, const OptimizerState<T>& state) {
    put_text(ar, "name", name);
    ar(cereal::make_nvp("step", static_cast<std::int64_t>(state.step)));
    const auto put_buffer = [](auto& a, const Matrix<T>& m) { put_matrix(a, m); };
    ar(cereal::make_nvp("slots", list_out(state.slots, [&put_buffer](auto& a, const auto& slot) {
                            put_text(a, "name", slot.first);
                            a(cereal::make_nvp("buffers", list_out(slot.second, put_buffer)));
                        })));
}
template <class Archive, typename T>
void get_optimizer(Archive& ar, std::string& name, OptimizerState<T>& state) {
    get_text(ar, "name", name);
    std::int64_t step = 0;
    ar(cereal::make_nvp("step", step));
    state.step = static_cast<long>(step);
    ar(cereal::make_nvp("slots", list_in([&state](auto& a) {
                            std::string parameter;
                            std::vector<Matrix<T>> buffers;
                            get_text(a, "name", parameter);
                            a(cereal::make_nvp("buffers", list_in([&buffers](auto& b) {
                                                   buffers.emplace_back();
                                                   get_matrix(b, buffers.back());
                                               })));
                            if (!state.slots.emplace(parameter, std::move(buffers)).second) {
                                throw CheckpointError("optimizer state for '" + parameter +
                                                      "' appears twice (the file is corrupt)");
                            }
                        })));
}

// --- The body: everything after the magic number, in the order of the layout above. ---

template <class Archive, typename T>
void save_body(Archive& ar, const Checkpoint<T>& c) {
    ar(cereal::make_nvp("format_version", kCheckpointFormatVersion));
    put_text(ar, "scalar", scalar_name<T>());
    ar(cereal::make_nvp("step", static_cast<std::int64_t>(c.step)),
       cereal::make_nvp("epoch", static_cast<std::int64_t>(c.epoch)));
    ar(cereal::make_nvp("config", put_text_map(c.config)));
    ar(cereal::make_nvp("parameters", list_out(c.parameters, [](auto& a, const auto& named) {
                            put_text(a, "name", named.first);
                            put_matrix(a, named.second);
                        })));
    const std::uint8_t has_optimizer = c.optimizer ? 1 : 0;
    ar(cereal::make_nvp("has_optimizer", has_optimizer));
    if (c.optimizer) {
        ar(cereal::make_nvp("optimizer", fields([&c](auto& a) { put_optimizer(a, c.optimizer_name, *c.optimizer); })));
    }
    put_text(ar, "rng_state", c.rng_state);
    ar(cereal::make_nvp("metadata", put_text_map(c.metadata)));
}

inline void check_version(std::uint32_t version) {
    if (version > kCheckpointFormatVersion) {
        throw CheckpointError("format version " + std::to_string(version) +
                              " was written by a newer piano; this build reads versions up to " +
                              std::to_string(kCheckpointFormatVersion) + ". Upgrade piano to load it");
    }
    if (version == 0) throw CheckpointError("format version 0 does not exist (the header is corrupt)");
}

template <typename T>
void check_scalar(const std::string& scalar) {
    if (scalar == scalar_name<T>()) return;
    if (scalar == "float" || scalar == "double") {
        // Not converted: a silent double -> float rounding would break exact resumption.
        throw CheckpointError("the checkpoint holds " + scalar + " parameters but is loaded as " + scalar_name<T>() +
                              "; load it with load_checkpoint<" + scalar + "> (and convert with .cast<>() if "
                              "that is what you want)");
    }
    throw CheckpointError("unknown scalar type '" + scalar + "' (the file is corrupt)");
}

// Reads format_version through the body into `c`, checking the version and scalar type
// before anything else.
template <class Archive, typename T>
std::uint32_t load_body(Archive& ar, Checkpoint<T>& c) {
    std::uint32_t version = 0;
    ar(cereal::make_nvp("format_version", version));
    check_version(version);
    std::string scalar;
    get_text(ar, "scalar", scalar);
    check_scalar<T>(scalar);

    std::int64_t step = 0, epoch = 0;
    ar(cereal::make_nvp("step", step), cereal::make_nvp("epoch", epoch));
    c.step = static_cast<long>(step);
    c.epoch = static_cast<long>(epoch);
    ar(cereal::make_nvp("config", get_text_map(c.config, "config")));
    c.parameters.clear();
    // A set, not a scan of the names before: a file of n parameters loads in O(n).
    std::unordered_set<std::string> names;
    ar(cereal::make_nvp("parameters", list_in([&c, &names](auto& a) {
                            std::string name;
                            Matrix<T> value;
                            get_text(a, "name", name);
                            get_matrix(a, value);
                            if (!names.insert(name).second) {
                                throw CheckpointError("parameter '" + name + "' appears twice");
                            }
                            c.parameters.emplace_back(std::move(name), std::move(value));
                        })));
    std::uint8_t has_optimizer = 0;
    ar(cereal::make_nvp("has_optimizer", has_optimizer));
    if (has_optimizer > 1) throw CheckpointError("the optimizer flag is neither 0 nor 1 (the file is corrupt)");
    c.optimizer.reset();
    c.optimizer_name.clear();
    if (has_optimizer == 1) {
        OptimizerState<T> state;
        ar(cereal::make_nvp("optimizer", fields([&](auto& a) { get_optimizer(a, c.optimizer_name, state); })));
        c.optimizer = std::move(state);
    }
    get_text(ar, "rng_state", c.rng_state);
    ar(cereal::make_nvp("metadata", get_text_map(c.metadata, "metadata")));
    return version;
}

// The bytes of the binary file of `c` up to its checksum: magic, then the archive, always
// little-endian so that the bytes (and the checksum) do not depend on the machine.
template <typename T>
std::string encode_binary(const Checkpoint<T>& c) {
    std::ostringstream out(std::ios::binary);
    out.write(kCheckpointMagic, kMagicSize);
    {
        cereal::PortableBinaryOutputArchive ar(out, cereal::PortableBinaryOutputArchive::Options::LittleEndian());
        save_body(ar, c);
    }
    return std::move(out).str();
}

// "at entry (r,c)" of the first entry of m that is not finite, or empty when all are.
template <typename T>
std::string first_non_finite(const Matrix<T>& m) {
    for (Index k = 0; k < m.size(); ++k) {
        const T v = m.data()[k];
        if (!std::isfinite(v)) {
            std::ostringstream out;
            out << v << " at entry (" << k / m.cols() << "," << k % m.cols() << ")";
            return out.str();
        }
    }
    return {};
}

// Refuses parameters and optimizer state that are not finite: no trained model holds
// them, and one Inf (a float field of 1e39 in a JSON file, say) turns the next step into NaN.
template <typename T>
void check_finite(const Checkpoint<T>& c) {
    for (const auto& [name, value] : c.parameters) {
        const std::string bad = first_non_finite(value);
        if (!bad.empty()) throw CheckpointError("parameter '" + name + "' holds " + bad + ", which is not finite");
    }
    if (!c.optimizer) return;
    for (const auto& [name, buffers] : c.optimizer->slots) {
        for (std::size_t k = 0; k < buffers.size(); ++k) {
            const std::string bad = first_non_finite(buffers[k]);
            if (!bad.empty()) {
                throw CheckpointError("optimizer state " + std::to_string(k) + " of '" + name + "' holds " + bad +
                                      ", which is not finite");
            }
        }
    }
}

// --- Recognising a file ---

// Bytes as a C string literal ("\x89PNG\r\n..."), for messages about unknown files.
inline std::string quoted_bytes(const char* data, std::size_t size) {
    std::string out = "\"";
    for (std::size_t i = 0; i < size; ++i) {
        const auto byte = static_cast<unsigned char>(data[i]);
        if (byte == '\n') {
            out += "\\n";
        } else if (byte == '\r') {
            out += "\\r";
        } else if (byte == '"' || byte == '\\') {
            out += '\\';
            out += static_cast<char>(byte);
        } else if (byte >= 0x20 && byte < 0x7f) {
            out += static_cast<char>(byte);
        } else {
            const char* hex = "0123456789ABCDEF";
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 15];
        }
    }
    return out + "\"";
}

inline CheckpointError not_a_checkpoint(const std::string& magic) {
    return CheckpointError("not a piano checkpoint (magic " + magic + ", expected \"" + kCheckpointMagic +
                           "\"). Hint: piano reads only files written by piano::save_checkpoint: binary ones "
                           "start with \"" + kCheckpointMagic + "\", JSON ones are an object with \"magic\": \"" +
                           kCheckpointMagic + "\"");
}

// Checks the bracket structure of a JSON text before rapidjson parses it. rapidjson's
// parser recurses once per nesting level, so a hostile file of a million '[' would
// overflow the stack; and a file cut in half deserves a clearer message than a parse error.
inline void check_json_shape(const std::string& text) {
    int depth = 0;
    bool in_string = false, escaped = false, closed = false;
    for (const char ch : text) {
        if (closed) {
            if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t') {
                throw CheckpointError("unexpected text after the end of the JSON object (the file is corrupt)");
            }
        } else if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > kMaxJsonDepth) {
                throw CheckpointError("the JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                                      " levels, which no checkpoint does (the file is corrupt)");
            }
        } else if (ch == '}' || ch == ']') {
            closed = --depth == 0;
        }
    }
    if (!closed) throw CheckpointError("the JSON ends before its closing '}' (the file is cut off)");
}

// A binary checkpoint: `bytes` is the whole file, magic included. From version 2 on the
// checksum is compared before the body is parsed, so a corrupt file is refused as such.
template <typename T>
Checkpoint<T> read_binary(const std::string& bytes) {
    std::uint32_t version = 0;
    {
        std::istringstream head(bytes.substr(kMagicSize, 16));
        cereal::PortableBinaryInputArchive ar(head);
        ar(version);
        check_version(version);
    }
    std::size_t body_end = bytes.size();
    if (version >= kCheckpointFirstChecksummedVersion) {
        if (bytes.size() < kMagicSize + kChecksumSize) throw CheckpointError("the file is cut off before its checksum");
        body_end -= kChecksumSize;
        const std::uint64_t stored = read_checksum_bytes(bytes.data() + body_end);
        const std::uint64_t computed = checksum(bytes.data(), body_end);
        if (stored != computed) {
            throw CheckpointError("checksum mismatch: the file says " + hex64(stored) + ", its contents give " +
                                  hex64(computed) + " (the file is corrupt or was changed after it was written)");
        }
    }
    Checkpoint<T> c;
    std::istringstream in(bytes.substr(kMagicSize, body_end - kMagicSize), std::ios::binary);
    {
        cereal::PortableBinaryInputArchive ar(in);
        load_body(ar, c);
    }
    if (in.peek() != std::char_traits<char>::eof()) {
        throw CheckpointError("unexpected bytes after the end of the checkpoint (the file is corrupt)");
    }
    return c;
}

// A JSON checkpoint. From version 2 on its "checksum" field must match the contents as
// parsed (see encode_binary); a version 1 file must not have one.
template <typename T>
Checkpoint<T> read_json(const std::string& text) {
    check_json_shape(text);
    std::istringstream in(text);
    cereal::JSONInputArchive ar(in);
    std::string magic;
    try {
        get_text(ar, "magic", magic);
    } catch (const cereal::Exception&) {
        throw not_a_checkpoint("missing: a JSON object without a string \"magic\" field");
    }
    if (magic != kCheckpointMagic) throw not_a_checkpoint(quoted_bytes(magic.data(), magic.size()));
    Checkpoint<T> c;
    const std::uint32_t version = load_body(ar, c);
    if (version >= kCheckpointFirstChecksummedVersion) {
        std::string stored;
        get_text(ar, "checksum", stored);
        const std::string canonical = encode_binary(c);
        const std::string computed = hex64(checksum(canonical.data(), canonical.size()));
        if (stored != computed) {
            throw CheckpointError("checksum mismatch: the file says '" + stored + "', its contents give '" + computed +
                                  "' (the file is corrupt or was changed after it was written)");
        }
    }
    if (ar.getNodeName() != nullptr) {
        throw CheckpointError(std::string("unexpected field '") + ar.getNodeName() + "' after the last one of version " +
                              std::to_string(version) + " (the file is corrupt)");
    }
    return c;
}

// A binary or JSON checkpoint from a stream positioned at its first byte, read whole
// (a checksum needs every byte anyway).
template <typename T>
Checkpoint<T> read_stream(std::istream& in) {
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty()) throw CheckpointError("the file is empty");
    Checkpoint<T> c;
    if (bytes.size() >= kMagicSize && std::memcmp(bytes.data(), kCheckpointMagic, kMagicSize) == 0) {
        c = read_binary<T>(bytes);
    } else {
        const auto first = bytes.find_first_not_of(" \t\r\n");
        if (first == std::string::npos || bytes[first] != '{') {
            throw not_a_checkpoint(quoted_bytes(bytes.data(), std::min(bytes.size(), kMagicSize)));
        }
        c = read_json<T>(bytes);
    }
    check_finite(c);
    return c;
}

template <typename T>
Checkpoint<T> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw CheckpointError("cannot open the file: " + std::error_code(errno, std::generic_category()).message());
    }
    return read_stream<T>(in);
}

// Runs `read` and turns every failure into a CheckpointError that starts with `where`.
template <class Read>
auto with_context(const std::string& where, Read read) {
    try {
        return read();
    } catch (const CheckpointError& e) {
        throw CheckpointError(where + e.what());
    } catch (const cereal::Exception& e) {
        throw CheckpointError(where + "the file is truncated or corrupt (" + e.what() + ")");
    } catch (const std::exception& e) {  // e.g. bad_alloc
        throw CheckpointError(where + "the file is corrupt (" + e.what() + ")");
    }
}

// --- Matching a checkpoint to a model ---

inline std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

// "'a', 'b', 'c' and 4 more": the names of `pool` closest to `name` first, so a renamed
// parameter's new name leads the list.
inline std::string closest_names(const std::string& name, std::vector<std::string> pool) {
    if (pool.empty()) return "no parameters";
    std::vector<std::pair<std::size_t, std::string>> ranked;
    for (auto& candidate : pool) ranked.emplace_back(edit_distance(name, candidate), std::move(candidate));
    std::sort(ranked.begin(), ranked.end());
    constexpr std::size_t shown = 3;
    std::string out;
    for (std::size_t i = 0; i < std::min(shown, ranked.size()); ++i) {
        out += (i ? ", '" : "'") + ranked[i].second + "'";
    }
    if (ranked.size() > shown) out += " and " + std::to_string(ranked.size() - shown) + " more";
    return out;
}

}  // namespace detail::checkpoint

/// Writes `checkpoint` to `path`, atomically: the data goes to `path.tmp.<random>` in the
/// same directory, which is flushed, closed, checked and then renamed over `path`.
/// Ensures: on success `path` holds the whole new checkpoint and no temporary file remains;
/// on any failure a CheckpointError naming `path` is thrown, the temporary file is removed
/// and an existing file at `path` is untouched. (Atomic against a crash of the program;
/// the data is not fsync'ed, so not against a power cut before the OS writes it out.)
template <typename T>
void save_checkpoint(const std::filesystem::path& path, const Checkpoint<T>& checkpoint,
                     CheckpointFormat format = CheckpointFormat::binary) {
    std::random_device random;
    std::ostringstream suffix;
    suffix << ".tmp." << std::hex << random() << random();
    std::filesystem::path temp = path;
    temp += suffix.str();
    try {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out) {
            throw CheckpointError("cannot create '" + temp.string() +
                                  "': " + std::error_code(errno, std::generic_category()).message());
        }
        detail::checkpoint::check_finite(checkpoint);  // a file that load_checkpoint would refuse
        const std::string bytes = detail::checkpoint::encode_binary(checkpoint);
        const std::uint64_t sum = detail::checkpoint::checksum(bytes.data(), bytes.size());
        if (format == CheckpointFormat::binary) {
            out << bytes << detail::checkpoint::checksum_bytes(sum);
        } else {
            cereal::JSONOutputArchive ar(out);  // the JSON is complete once `ar` is destroyed
            ar(cereal::make_nvp("magic", std::string(kCheckpointMagic)));
            detail::checkpoint::save_body(ar, checkpoint);
            detail::checkpoint::put_text(ar, "checksum", detail::checkpoint::hex64(sum));
        }
        out.flush();
        out.close();
        if (!out) throw CheckpointError("writing '" + temp.string() + "' failed (is the disk full?)");
        std::error_code ec;
        std::filesystem::rename(temp, path, ec);
        if (ec) throw CheckpointError("cannot rename '" + temp.string() + "' over it: " + ec.message());
    } catch (const std::exception& e) {
        std::error_code ignored;
        std::filesystem::remove(temp, ignored);
        throw CheckpointError("save_checkpoint '" + path.string() + "': " + e.what() +
                              "; an existing file there is unchanged");
    }
}

/// Reads a checkpoint written by save_checkpoint, binary or JSON (told apart by content).
/// Checks, in order: the magic number, the format version, the scalar type (a double file
/// loaded as float, or the reverse, is an error naming both; no conversion), then the body.
/// Throws CheckpointError naming `path` for any unreadable, foreign, newer, truncated or
/// corrupt file; never crashes and never allocates much more than the file's size.
template <typename T>
Checkpoint<T> load_checkpoint(const std::filesystem::path& path) {
    return detail::checkpoint::with_context("load_checkpoint '" + path.string() + "': ",
                                            [&] { return detail::checkpoint::read_file<T>(path); });
}

/// load_checkpoint from a seekable stream (a std::istringstream of a file's bytes, say),
/// positioned at the checkpoint's first byte; errors name `name` where they would name
/// the file. The same checks, errors and guarantees as loading from a path.
template <typename T>
Checkpoint<T> load_checkpoint(std::istream& in, const std::string& name) {
    return detail::checkpoint::with_context("load_checkpoint '" + name + "': ",
                                            [&] { return detail::checkpoint::read_stream<T>(in); });
}

/// A checkpoint of `model` (its parameters copied by name), with `config`, and when given
/// the optimizer's state and name and the generator's state; metadata["piano_version"] is
/// the version of this build (version.hpp). step and epoch are left 0 for the caller to set.
template <typename T>
Checkpoint<T> capture(const Module<T>& model, std::map<std::string, std::string> config = {},
                      const Optimizer<T>* optimizer = nullptr, const std::mt19937_64* rng = nullptr) {
    Checkpoint<T> c;
    c.config = std::move(config);
    c.metadata["piano_version"] = kVersion;
    for (const auto& [name, p] : model.named_parameters()) c.parameters.emplace_back(name, p.value());
    if (optimizer) {
        c.optimizer = optimizer->state();
        c.optimizer_name = optimizer->name();
    }
    if (rng) {
        std::ostringstream out;
        out << *rng;
        c.rng_state = out.str();
    }
    return c;
}

/// Loads `checkpoint` into `model`, and into `optimizer` and `rng` when given.
/// Requires: the model (built from checkpoint.config) has exactly the checkpoint's
/// parameter names and shapes; every key of model.config_map() that the checkpoint's
/// config also holds has the same value there; an optimizer of the same name() if one is
/// given; an RNG state in the checkpoint if `rng` is given.
/// Ensures: on success the model, optimizer and generator continue exactly where the saved
/// run stopped. On failure throws CheckpointError listing every mismatch by name
///   config 'd_model': checkpoint 16, model 32
///   checkpoint has no parameter 'a.weight' (it has: 'b.weight', ...)
///   checkpoint parameter 'c.bias' is not in the model (it has: ...)
///   parameter 'x.weight': checkpoint [4,8], model [4,16]
/// and changes nothing: everything is checked before anything is written.
template <typename T>
void restore(Module<T>& model, const Checkpoint<T>& checkpoint, Optimizer<T>* optimizer = nullptr,
             std::mt19937_64* rng = nullptr) {
    using detail::checkpoint::closest_names;
    auto model_parameters = model.named_parameters();
    std::vector<std::string> model_names, file_names;
    for (const auto& [name, p] : model_parameters) model_names.push_back(name);
    for (const auto& [name, value] : checkpoint.parameters) file_names.push_back(name);

    std::vector<std::string> problems;
    // Config first: a different d_model explains the shape mismatches listed after it, and
    // a different lambda or switch changes the model without changing any shape.
    for (const auto& [key, value] : model.config_map()) {
        const auto it = checkpoint.config.find(key);
        if (it != checkpoint.config.end() && it->second != value) {
            problems.push_back("config '" + key + "': checkpoint " + it->second + ", model " + value);
        }
    }
    // Names looked up in hash maps, so matching n parameters is O(n), not O(n^2).
    std::unordered_map<std::string, const Matrix<T>*> in_file;
    for (const auto& [name, value] : checkpoint.parameters) in_file.emplace(name, &value);
    const std::unordered_set<std::string> in_model(model_names.begin(), model_names.end());
    std::vector<const Matrix<T>*> sources;  // sources[i]: the value for model_parameters[i]
    for (const auto& [name, p] : model_parameters) {
        const auto found = in_file.find(name);
        const Matrix<T>* value = found == in_file.end() ? nullptr : found->second;
        if (!value) {
            problems.push_back("checkpoint has no parameter '" + name +
                               "' (it has: " + closest_names(name, file_names) + ")");
        } else if (value->rows() != p.rows() || value->cols() != p.cols()) {
            problems.push_back("parameter '" + name + "': checkpoint " + shape_string(value->rows(), value->cols()) +
                               ", model " + p.shape());
        } else {
            sources.push_back(value);
        }
    }
    for (const auto& name : file_names) {
        if (!in_model.count(name)) {
            problems.push_back("checkpoint parameter '" + name + "' is not in the model (it has: " +
                               closest_names(name, model_names) + ")");
        }
    }
    if (optimizer) {
        if (!checkpoint.optimizer) {
            problems.push_back("checkpoint has no optimizer state (it was saved without one); restore without an "
                               "optimizer to load only the model");
        } else if (checkpoint.optimizer_name != optimizer->name()) {
            problems.push_back("checkpoint optimizer is '" + checkpoint.optimizer_name + "', the optimizer given is '" +
                               optimizer->name() + "'");
        }
    }
    std::mt19937_64 restored_rng;
    if (rng) {
        std::istringstream in(checkpoint.rng_state);
        in >> restored_rng;
        if (checkpoint.rng_state.empty()) {
            problems.push_back("checkpoint has no RNG state (it was saved without a generator)");
        } else if (in.fail()) {
            problems.push_back("checkpoint RNG state is not a std::mt19937_64 state");
        }
    }
    auto fail = [](const std::vector<std::string>& list) {
        std::string message = "restore: the checkpoint does not fit; nothing was changed:";
        for (const auto& p : list) message += "\n  " + p;
        return CheckpointError(message);
    };
    if (!problems.empty()) throw fail(problems);

    // The optimizer checks its own slots, and either loads all of them or throws.
    if (optimizer) {
        try {
            optimizer->load_state(*checkpoint.optimizer);
        } catch (const CheckpointError& e) {
            throw fail({e.what()});
        }
    }
    for (std::size_t i = 0; i < model_parameters.size(); ++i) model_parameters[i].second.mutable_value() = *sources[i];
    if (rng) *rng = restored_rng;
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(void save_checkpoint<float>(const std::filesystem::path&, const Checkpoint<float>&,
                                              CheckpointFormat));
PIANO_INSTANTIATE(Checkpoint<float> load_checkpoint<float>(const std::filesystem::path&));
PIANO_INSTANTIATE(Checkpoint<float> load_checkpoint<float>(std::istream&, const std::string&));
PIANO_INSTANTIATE(Checkpoint<float> capture<float>(const Module<float>&, std::map<std::string, std::string>,
                                                   const Optimizer<float>*, const std::mt19937_64*));
PIANO_INSTANTIATE(void restore<float>(Module<float>&, const Checkpoint<float>&, Optimizer<float>*, std::mt19937_64*));

}  // namespace piano
