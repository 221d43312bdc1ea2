// serve: rerank one request, given by its string ids, with a model folder that
// `piano train` wrote. What a service does per request, in a few lines of the library.
//
//   serve MODEL_DIR "TERM TERM ..." WID WID ...
//
// prints the wids in the new order, best first, with pCTR and pCTCVR, and how many of
// the request's ids the model never saw.
#include <piano/io/model_dir.hpp>

#include <cstdio>
#include <exception>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: serve MODEL_DIR \"TERM TERM ...\" WID WID ...\n");
        return 2;
    }
    try {
        // One call loads the model, its vocabularies and product metadata.
        const piano::TrainedModel<float> model = piano::load_model_dir<float>(argv[1]);

        // A request as a service has it: string ids, no labels, no history here.
        piano::data::RawRequest request;
        std::istringstream terms(argv[2]);
        for (std::string term; terms >> term;) request.query.push_back(term);
        for (int k = 3; k < argc; ++k) {
            piano::data::RawCandidate candidate;
            candidate.item = argv[k];
            request.candidates.push_back(candidate);
        }

        piano::data::IdCounts unknown;
        const piano::RerankResult result = model.rerank(request, &unknown);
        for (const std::size_t i : result.order)
            std::printf("%s\t%.6f\t%.6f\n", request.candidates[i].item.c_str(), result.p_ctr[i],
                        result.p_ctcvr.empty() ? result.p_ctr[i] : result.p_ctcvr[i]);
        std::fprintf(stderr, "%s: %s\n", model.kind().c_str(), unknown.summary().c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "serve: %s\n", e.what());
        return 1;
    }
}
