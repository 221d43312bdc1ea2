// letor_ndcg: NDCG@5 and NDCG@10 of any system's scores on a LETOR file, computed by
// piano's own metric code, so that another learner's scores (bench/letor_mq2008.sh feeds
// XGBoost's) are judged exactly as piano's models are by `piano eval`.
//
//   letor_ndcg FILE SCORES
//
// SCORES holds one number per candidate line of FILE, in file order (comment and blank
// lines of FILE have none). Prints "ndcg@5 ndcg@10 queries_ranked queries_without_relevant".
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <piano/data/letor.hpp>
#include <piano/metrics/evaluate.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: letor_ndcg FILE SCORES\n";
        return 2;
    }
    try {
        piano::data::LoadOptions options = piano::data::letor_labels({});
        options.candidate_order = piano::data::CandidateOrder::as_logged;
        std::ifstream scores_in(argv[2]);
        if (!scores_in) throw piano::DataError(argv[2], 0, "file", "cannot open");
        std::vector<piano::metrics::RequestPrediction> predictions;
        long line = 0;
        piano::data::for_each_letor_list(argv[1], options, [&](const piano::data::LetorList& list) {
            piano::metrics::RequestPrediction p;
            for (float label : list.labels) {
                double s = 0.0;
                ++line;
                if (!(scores_in >> s)) throw piano::DataError(argv[2], line, "score", "missing or not a number");
                p.score.push_back(s);
                p.click.push_back(label >= 1.0f ? 1 : 0);
                p.conv.push_back(label >= options.conv_threshold ? 1 : 0);
            }
            predictions.push_back(std::move(p));
        });
        double extra = 0.0;
        if (scores_in >> extra) throw piano::DataError(argv[2], line + 1, "score", "more scores than candidates");
        const piano::metrics::MetricTable t = piano::metrics::evaluate(predictions);
        std::cout << t.ndcg_5 << ' ' << t.ndcg_10 << ' ' << t.requests - t.requests_without_click << ' '
                  << t.requests_without_click << '\n';
    } catch (const std::exception& e) {
        std::cerr << "letor_ndcg: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
