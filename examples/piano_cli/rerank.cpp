// piano rerank: new orders for a file (or standard input) of requests, with a trained
// model's folder, written for machines (piano/io/rerank_output.hpp).
#include <iostream>
#include <string>
#include <vector>

#include <piano/data/letor.hpp>
#include <piano/data/lines.hpp>
#include <piano/io/rerank_output.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

CommandSpec rerank_spec() {
    return {"rerank",
            "rerank the candidate lists of a requests file with a trained model",
            "reads requests in the model's format (JDsearch or LETOR, its data.txt says); JDsearch\n"
            "labels may be left out (an empty candidate_label_list) and are never used. Ids the model\n"
            "never saw map to its unknown rows; their count goes to stderr. Writes, per request:\n"
            "  tsv    one line: line, p_list_ctr, p_list_cvr, then wids, indices, scores, p_ctr, p_cvr,\n"
            "         p_ctcvr of the candidates in the new order, each a comma-separated list\n"
            "  long   one line per candidate: line, rank, index, wid, score, p_ctr, p_cvr, p_ctcvr,\n"
            "         p_list_ctr, p_list_cvr\n"
            "  jsonl  one JSON object: {\"line\", \"p_list_ctr\", \"p_list_cvr\", \"candidates\": [{\"rank\",\n"
            "         \"index\", \"wid\", \"score\", \"p_ctr\", \"p_cvr\", \"p_ctcvr\"}, ...]}\n"
            "index is the candidate's place in the input list (0-based), line the request's input line;\n"
            "score is s_i = (1-lambda) log pCTR_i + lambda log pCTCVR_i. A quantity the model does not\n"
            "predict is empty (null in jsonl). LETOR lists have no ids: their wid is the index.\n",
            {{"model", "DIR", "", "a trained model's folder (what piano train --out wrote)", true},
             {"requests", "FILE", "", "requests to rerank; - reads standard input", true},
             {"products", "FILE", "", "product metadata (default: the model folder's products.txt)"},
             {"format", "tsv|jsonl|long", "tsv", "output format"},
             {"lambda", "X", "", "serve at this λ of the score (default: the model's)"},
             {"batch-size", "N", "256", "requests per forward pass"},
             {"threads", "N", "1", "OpenMP threads"}}};
}

namespace {

/// Reranks the pending requests and writes them; `wids[k]` are request k's candidate ids.
void flush(const TrainedModel& trained, std::vector<piano::data::Request>& requests,
           std::vector<std::vector<std::string>>& wids, piano::RerankFormat format) {
    if (requests.empty()) return;
    const std::vector<piano::RerankResult> results =
        trained.model->rerank(piano::data::make_batch(requests, 0, requests.size()));
    for (std::size_t k = 0; k < results.size(); ++k)
        piano::write_rerank(std::cout, format, requests[k].source.line, wids[k], results[k]);
    requests.clear();
    wids.clear();
}

}  // namespace

int run_rerank(const Args& args) {
    set_threads(args.integer("threads", 1, 1024));
    const auto batch_size = static_cast<std::size_t>(args.integer("batch-size", 1, 1000000));
    const piano::RerankFormat format = piano::rerank_format_from_string(args.str("format"));
    const std::string requests_file = args.str("requests");

    TrainedModel trained = load_trained(args.str("model"));
    if (args.has("lambda")) trained.model->set_score_lambda(args.real("lambda", 0.0, 1.0));
    piano::data::LoadOptions options = trained.load_options();
    options.labels_optional = true;
    if (args.has("products")) trained.data.products = piano::data::read_products(args.str("products"), options);

    // Requests are read one line at a time and reranked batch_size at a time, so standard
    // input can stream; the candidates keep their input order (the score reads no position).
    std::cout << piano::rerank_header(format);
    std::vector<piano::data::Request> pending;
    std::vector<std::vector<std::string>> wids;
    piano::data::IdCounts counts;
    auto add = [&](piano::data::Request request, std::vector<std::string> ids) {
        pending.push_back(std::move(request));
        wids.push_back(std::move(ids));
        if (pending.size() == batch_size) flush(trained, pending, wids, format);
    };
    if (trained.data.recipe.format == piano::data::DataFormat::letor) {
        const auto width = static_cast<std::size_t>(trained.model->config().dense_features);
        piano::data::for_each_letor_list(requests_file, options, [&](const piano::data::LetorList& list) {
            std::vector<std::string> ids;
            for (std::size_t i = 0; i < list.labels.size(); ++i) ids.push_back(std::to_string(i));
            add(piano::data::letor_request(list, width, options), std::move(ids));
        });
    } else {
        piano::data::for_each_request(requests_file, [&](const piano::data::RawRequest& raw) {
            std::vector<std::string> ids;
            for (const auto& c : raw.candidates) ids.push_back(c.item);
            add(trained.map(raw, &counts), std::move(ids));
        }, options);
    }
    flush(trained, pending, wids, format);
    if (counts.total_unknown() > 0) std::cerr << "piano: rerank: " << counts.summary() << '\n';
    return kOk;
}

}  // namespace piano_cli
