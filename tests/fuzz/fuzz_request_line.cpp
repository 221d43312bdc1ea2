// libFuzzer target: one line of a JDsearch requests file, from bytes to rerank scores.
//
// parse_request_line, then map_request (empty vocabularies: every id is unknown, row 0),
// make_batch and a rerank by a small PIANO model, so that whatever the parser accepts is
// also shown to be usable by the model (huge gaps, 200 candidates, dense features...).
// The first input byte picks LoadOptions (max_history, max_candidates) so both limits
// are fuzzed; the rest is the line. Documented errors (DataError for a malformed line,
// ShapeError for dense features the model has no input for) are expected; any other
// exception escapes and libFuzzer reports it as a crash, as it does a sanitizer finding
// or a non-finite score.
#include <piano/data/batch.hpp>
#include <piano/data/jdsearch.hpp>
#include <piano/model/factory.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    namespace data = piano::data;
    static const auto model = piano::make_model<float>("piano", piano::fuzz::fuzz_config());
    static const data::ProductTable no_products;
    static const data::Vocabularies no_vocab;

    data::LoadOptions options;
    options.max_history = bytes[0] & 3;                       // 0 (keep all) .. 3 events
    options.max_candidates = (bytes[0] & 4) ? 8 : 1000;       // a tight and the default limit
    const std::string_view line(reinterpret_cast<const char*>(bytes + 1), size - 1);
    try {
        const data::RawRequest raw = data::parse_request_line(line, {"fuzz", 1}, options);
        // What the parser promises: 1..max_candidates candidates, at most max_history events.
        if (raw.candidates.empty() || raw.candidates.size() > options.max_candidates) std::abort();
        if (options.max_history > 0 && raw.history.size() > options.max_history) std::abort();
        const data::Request request = data::map_request(raw, no_products, no_vocab, options);
        const piano::RerankResult result = model->rerank(request);
        if (result.order.size() != request.candidates.size()) std::abort();
        for (double s : result.score)
            if (!std::isfinite(s)) std::abort();
    } catch (const piano::DataError&) {
    } catch (const piano::ShapeError&) {
    }
    return 0;
}
