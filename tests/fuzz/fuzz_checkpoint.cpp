// libFuzzer target: a checkpoint file, read by load_checkpoint and restored into a model.
//
// Built twice (tests/fuzz/CMakeLists.txt): fuzz_checkpoint_binary puts the magic number
// in front of any input that lacks it, so every input reaches the binary reader, and
// reads each input a second time with its last 8 bytes replaced by the checksum of the
// rest, so that mutations also reach the parser behind the checksum of a version 2 file;
// fuzz_checkpoint_json feeds inputs as they are, from a corpus of JSON checkpoints (those
// of version 1, which have no checksum, reach its parser).
// Every input is read as float and as double. A checkpoint that loads is restored into
// the small fuzz model (with an Adam and a generator), whose restore must either fit or
// throw CheckpointError. load_checkpoint promises CheckpointError for any bad file and
// "never allocates much more than the file's size" (libFuzzer's -rss_limit_mb checks it).
#include <piano/io/checkpoint.hpp>
#include <piano/model/factory.hpp>
#include <piano/optim/adam.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>

#include "fuzz_model.hpp"

namespace {

template <typename T>
void load_and_restore(const std::string& bytes) {
    static const auto model = piano::make_model<T>("piano", piano::fuzz::fuzz_config());
    static piano::Adam<T> adam(model->named_parameters(), piano::AdamOptions{});
    std::mt19937_64 rng(1);
    std::istringstream in(bytes);
    try {
        const piano::Checkpoint<T> checkpoint = piano::load_checkpoint<T>(in, "fuzz.ckpt");
        piano::restore(*model, checkpoint, &adam, &rng);
    } catch (const piano::CheckpointError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
#ifdef PIANO_FUZZ_BINARY
    const std::size_t magic = sizeof(piano::kCheckpointMagic) - 1;
    if (size < magic || std::memcmp(data, piano::kCheckpointMagic, magic) != 0)
        bytes.insert(0, piano::kCheckpointMagic, magic);
    namespace ck = piano::detail::checkpoint;
    if (bytes.size() >= magic + ck::kChecksumSize) {
        std::string stamped = bytes.substr(0, bytes.size() - ck::kChecksumSize);
        stamped += ck::checksum_bytes(ck::checksum(stamped.data(), stamped.size()));
        load_and_restore<float>(stamped);
        load_and_restore<double>(stamped);
    }
#endif
    load_and_restore<float>(bytes);
    load_and_restore<double>(bytes);
    return 0;
}
