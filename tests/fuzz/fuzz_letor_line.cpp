// libFuzzer target: one line of a LETOR / SVMlight file, from bytes to a Request.
//
// parse_letor_line, then letor_request with the line's own width, so that whatever the
// parser accepts also becomes dense features: every parsed value at its index, zeros
// elsewhere. DataError (a malformed line) is the one documented error; any other
// exception escapes and libFuzzer reports it as a crash, as it does a sanitizer finding.
#include <piano/data/letor.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    namespace data = piano::data;
    const data::LoadOptions options = data::letor_labels({});
    const std::string_view line(reinterpret_cast<const char*>(bytes), size);
    try {
        data::LetorLine parsed = data::parse_letor_line(line, {"fuzz", 1}, options);
        // What the parser promises: a label in range, increasing indices within the cap.
        if (!(parsed.label >= 0.0f && parsed.label <= options.max_label)) std::abort();
        std::size_t width = 0;
        for (const auto& [index, value] : parsed.features) {
            if (index <= width || index > data::kMaxLetorFeatures || !std::isfinite(value)) std::abort();
            width = index;
        }
        data::LetorList list;
        list.qid = parsed.qid;
        list.source = {"fuzz", 1};
        list.labels.push_back(parsed.label);
        list.features.push_back(parsed.features);
        const data::Request r = data::letor_request(list, width, options);
        if (r.candidates.size() != 1 || r.candidates[0].dense.size() != width) std::abort();
        for (const auto& [index, value] : parsed.features)
            if (r.candidates[0].dense[index - 1] != value) std::abort();
    } catch (const piano::DataError&) {
    }
    return 0;
}
