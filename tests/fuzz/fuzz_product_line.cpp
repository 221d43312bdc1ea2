// libFuzzer target: one line of a JDsearch products file (parse_product_line).
// A malformed line must be a DataError; any other exception or a sanitizer report is a
// finding. An accepted line has a non-empty wid (the parser's promise).
#include <piano/data/jdsearch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(bytes), size);
    try {
        const auto [wid, product] = piano::data::parse_product_line(line, {"fuzz", 1});
        if (wid.empty()) std::abort();
    } catch (const piano::DataError&) {
    }
    return 0;
}
