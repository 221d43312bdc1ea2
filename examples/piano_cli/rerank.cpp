// piano rerank: new orders for a file of requests, with a trained model.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include <piano/data/letor.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

CommandSpec rerank_spec() {
    return {"rerank",
            "rerank the candidate lists of a requests file with a trained model",
            "prints a header, then one tab-separated line per request:\n"
            "  line    the request's line in --requests\n"
            "  order   candidate indices (0 = first in the file's list), best first\n"
            "  score   the rerank scores s_i = (1-lambda) log pCTR_i + lambda log pCTCVR_i, in the new order\n"
            "The requests file is in the model's format (JDsearch or LETOR, its data.txt says) and its\n"
            "lists are ordered as at training (shuffled by the same seed when they were); labels are\n"
            "read but not used (write 0 for new traffic). Ids the model never saw map to its unknown rows.\n",
            {{"checkpoint", "FILE", "", "best.ckpt of a trained model (its vocab/ directory beside it)", true},
             {"requests", "FILE", "", "requests to rerank", true},
             {"products", "FILE", "", "product metadata (default: products.txt beside --requests)"},
             {"batch-size", "N", "256", "requests per forward pass"},
             {"threads", "N", "1", "OpenMP threads"}}};
}

int run_rerank(const Args& args) {
    set_threads(args.integer("threads", 1, 1024));
    const auto batch_size = static_cast<std::size_t>(args.integer("batch-size", 1, 1000000));
    const fs::path requests_file = args.str("requests");
    const fs::path products_file =
        args.has("products") ? fs::path(args.str("products")) : requests_file.parent_path() / "products.txt";

    TrainedModel trained = load_trained(args.str("checkpoint"));
    const piano::data::LoadOptions options = load_options(trained.model->config(), trained.recipe);
    const auto loaded =
        trained.recipe.format == piano::data::DataFormat::letor
            ? piano::data::load_letor_file(requests_file.string(),
                                           static_cast<std::size_t>(trained.model->config().dense_features), options)
            : piano::data::load_requests_file(requests_file.string(),
                                              piano::data::read_products(products_file.string(), options),
                                              trained.vocab, options);
    const auto& requests = loaded.requests;
    const bool shuffled = loaded.candidate_order == piano::data::CandidateOrder::shuffle;

    std::cout << "line\torder\tscore\n";
    char number[32];
    for (std::size_t begin = 0; begin < requests.size(); begin += batch_size) {
        const std::size_t end = std::min(requests.size(), begin + batch_size);
        const auto results = trained.model->rerank(piano::data::make_batch(requests, begin, end));
        for (std::size_t k = 0; k < results.size(); ++k) {
            const piano::RerankResult& r = results[k];
            // A shuffled list's index i is the file's candidate perm[i].
            const std::size_t L = r.score.size();
            const std::vector<std::size_t> perm =
                shuffled ? piano::data::candidate_permutation(options.order_seed, requests[begin + k].source.line, L)
                         : std::vector<std::size_t>();
            std::string order, score;
            for (std::size_t i : r.order) {
                order += (order.empty() ? "" : " ") + std::to_string(shuffled ? perm[i] : i);
                std::snprintf(number, sizeof number, "%.6f", r.score[i]);
                score += (score.empty() ? "" : " ") + std::string(number);
            }
            std::cout << requests[begin + k].source.line << '\t' << order << '\t' << score << '\n';
        }
    }
    return kOk;
}

}  // namespace piano_cli
