// libFuzzer target: a config file (`key = value` lines) read by read_config.
// A bad file must be a ConfigError. An accepted config must survive to_map/from_map
// unchanged (that is how checkpoints store it), or it would not restore as it was read.
#include <piano/model/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(bytes), size));
    try {
        const piano::PianoConfig config = piano::read_config(in, "fuzz.conf");
        const auto written = config.to_map();
        if (piano::PianoConfig::from_map(written).to_map() != written) std::abort();
    } catch (const piano::ConfigError&) {
    }
    return 0;
}
