// Tutorial chapter 7 (docs/tutorial/07-full-loop.md): the full loop.
//
// Simulates a small music-search world and writes its logs as JDsearch files, reads them
// back, trains PIANO and two baselines with the library's training loop, compares them on
// the test split beside the first-stage order and the simulator's oracle, and reranks one
// request. The same steps at full size are the `piano` command-line tool's (docs/cli.md)
// and scripts/demo.sh's. Returns non-zero if a claim fails.
// Usage: 07_full_loop [data directory]   (default: 07_full_loop_data in the current directory)
#include <piano/data/jdsearch.hpp>
#include <piano/data/simulator.hpp>
#include <piano/metrics/evaluate.hpp>
#include <piano/metrics/online.hpp>
#include <piano/metrics/ranking.hpp>
#include <piano/metrics/report.hpp>
#include <piano/model/factory.hpp>
#include <piano/train/trainer.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"

int main(int argc, char** argv) {
    namespace data = piano::data;
    using piano::metrics::MetricTable;
    const std::string dir = argc > 1 ? argv[1] : "07_full_loop_data";
    tutorial::Checks check;

    // [tutorial:simulate]
    // A small world (the defaults make ~20k requests; this is 800 of short lists), logged
    // as JDsearch files: products.txt, train.txt, valid.txt, test.txt, and the simulator's
    // truth.txt, online_truth.txt and click_model.txt.
    data::SimulatorOptions world;
    world.users = 80;
    world.songs = 200;
    world.artists = 30;
    world.genres = 4;
    world.requests = 800;
    world.min_list_length = 8;
    world.max_list_length = 14;
    world.max_history = 8;
    world.vocabulary = 400;
    world.valid_fraction = 0.15;
    world.test_fraction = 0.25;
    const data::Simulation simulation = data::simulate_music_search(world);
    data::write_jdsearch_files(simulation, dir);
    // [tutorial:end]

    // [tutorial:load]
    // Read back like any real JDsearch log: ids become rows of vocabularies built from
    // the training split; an id seen only in valid or test maps to the unknown row 0.
    const data::JdsearchDataset dataset = data::load_jdsearch_dir(dir);
    const std::vector<data::TruthRow> truth = data::read_truth(dir + "/truth.txt");
    std::printf("%zu train, %zu valid, %zu test requests; %zu terms, %zu songs, %zu artists\n", dataset.train.size(),
                dataset.valid.size(), dataset.test.size(), dataset.vocab[data::Table::term].rows(),
                dataset.vocab[data::Table::item].rows(), dataset.vocab[data::Table::brand].rows());
    // [tutorial:end]
    check(dataset.train.size() == simulation.train && dataset.test.size() == simulation.test && truth.size() == simulation.test,
          "the files hold every simulated request, in its split, and the truth of every test request");

    // [tutorial:config]
    // The tiny configuration (d = 16, 2 heads, 1 layer) with each embedding table as large
    // as its vocabulary, and the data's dense width.
    const piano::PianoConfig config = piano::sized_to_data(piano::PianoConfig::tiny(), dataset.vocab, dataset.dense_dim);
    // [tutorial:end]

    // [tutorial:baselines]
    // Two rows that need no training: the first-stage order as it came, and the oracle,
    // which ranks by the simulator's true pCTCVR (the best any model could learn).
    std::vector<piano::metrics::RequestPrediction> first_stage, oracle;
    for (std::size_t r = 0; r < dataset.test.size(); ++r) {
        std::vector<int> click, conv;
        for (const data::Candidate& c : dataset.test[r].candidates) {
            click.push_back(c.click);
            conv.push_back(c.conv);
        }
        first_stage.push_back(piano::metrics::first_stage_prediction(click, conv));
        piano::metrics::RequestPrediction best = first_stage.back();
        best.score = truth[r].pctcvr();
        best.p_ctr = truth[r].p_click;
        best.p_ctcvr = truth[r].pctcvr();
        oracle.push_back(best);
    }
    std::vector<std::pair<std::string, MetricTable>> report = {
        {"first-stage", piano::metrics::evaluate(first_stage)}, {"oracle", piano::metrics::evaluate(oracle)}};
    // [tutorial:end]

    // [tutorial:train]
    // The same loop, data and options for every model: 4 epochs of batches of 16, Adam at
    // lr 0.003; after each epoch the validation split is scored, and the best epoch's
    // parameters are kept (by NDCG@10).
    piano::TrainOptions options;
    options.epochs = 4;
    options.batch_size = 16;
    options.learning_rate = 3e-3;
    options.patience = 0;       // run every epoch
    options.progress = false;   // one line per epoch
    std::unique_ptr<piano::Reranker<float>> piano_model;
    std::vector<std::pair<std::string, std::vector<std::vector<std::size_t>>>> new_orders;  // per model
    bool every_loss_falls = true;
    for (const std::string name : {"dnn", "piano-noqdir", "piano"}) {
        std::unique_ptr<piano::Reranker<float>> model = piano::make_model<float>(name, config);
        std::printf("-- %s (%ld parameters)\n", name.c_str(), static_cast<long>(model->parameter_count()));
        const piano::TrainResult result = piano::train(*model, dataset.train, dataset.valid, options, std::cout);
        every_loss_falls = every_loss_falls && result.epochs.back().train_loss < result.epochs.front().train_loss;
        const std::vector<piano::metrics::RequestPrediction> predicted = piano::predict(*model, dataset.test);
        report.emplace_back(name, piano::metrics::evaluate(predicted));
        new_orders.emplace_back(name, std::vector<std::vector<std::size_t>>{});
        for (const auto& p : predicted) new_orders.back().second.push_back(piano::metrics::rerank_order(p.score));
        if (name == "piano") piano_model = std::move(model);
    }
    // [tutorial:end]
    check(every_loss_falls, "every model's training loss falls from the first epoch to the last");

    // [tutorial:report]
    std::printf("\n%s\n", piano::metrics::markdown_table(report).c_str());
    // [tutorial:end]
    // [tutorial:online]
    // The simulated A/B test: every new order of the test lists valued exactly under the
    // simulator's true user model (online_truth.txt, click_model.txt), beside the first
    // stage and the two oracles, with lifts against the first stage.
    const piano::metrics::OnlineEvaluator online = piano::metrics::OnlineEvaluator::from_dir(dir);
    const std::vector<piano::metrics::OnlineRow> online_rows = piano::metrics::online_table(online, new_orders);
    std::printf("\n%s\n", piano::metrics::online_markdown(online_rows).c_str());
    // [tutorial:end]
    const MetricTable& first_stage_table = report[0].second;
    const MetricTable& piano_table = report[4].second;
    const piano::metrics::OnlineRow& piano_online = online_rows[3];
    const piano::metrics::OnlineRow& oracle_online = online_rows[4];
    check(piano_table.ndcg_10 < first_stage_table.ndcg_10,
          "offline, on labels logged under the first-stage order, PIANO's order scores below that order: NDCG@10 " +
              tutorial::fixed(piano_table.ndcg_10) + " vs " + tutorial::fixed(first_stage_table.ndcg_10));
    bool oracle_above_every_model = true;
    for (std::size_t k = 1; k + 2 < online_rows.size(); ++k)
        oracle_above_every_model = oracle_above_every_model && oracle_online.mean[0].value > online_rows[k].mean[0].value &&
                                   oracle_online.mean[1].value > online_rows[k].mean[1].value;
    check(oracle_above_every_model && oracle_online.lift[0].low > 0.1,
          "online, the oracle's order would earn over 10% more clicks than the first stage (" +
              tutorial::fixed(100 * oracle_online.lift[0].value) + "%) and more than every model's: PIANO's lift is " +
              tutorial::fixed(100 * piano_online.lift[0].value) + "% on " + std::to_string(dataset.train.size()) +
              " training lists");

    // [tutorial:rerank]
    // Serve one request: the first test request that got a click and whose query is
    // ambiguous. The simulator's latent record (test requests come last, in file order)
    // says which songs match what this user meant and which match the other meaning.
    const std::size_t first_test = simulation.train + simulation.valid;
    std::size_t pick = 0;
    while (pick + 1 < dataset.test.size() &&
           !(simulation.requests[first_test + pick].ambiguous() &&
             std::any_of(dataset.test[pick].candidates.begin(), dataset.test[pick].candidates.end(),
                         [](const data::Candidate& c) { return c.click == 1; }))) {
        ++pick;
    }
    const data::Request& request = dataset.test[pick];
    const data::SimRequest& latent = simulation.requests[first_test + pick];
    const piano::RerankResult answer = piano_model->rerank(request);
    std::printf("test request %zu: %zu candidates, %zu past events; p_list_ctr %.3f, p_list_cvr %.3f\n", pick,
                request.candidates.size(), request.history.size(), answer.p_list_ctr, answer.p_list_cvr);
    std::printf("  new  first-stage  song   pCTR   pCVR   score  logged      the song matches\n");
    for (std::size_t k = 0; k < answer.order.size(); ++k) {
        const std::size_t i = answer.order[k];
        const int song = latent.candidates[i];  // the simulator's song index; its wid is song + 1
        const data::Candidate& c = request.candidates[i];
        const char* meaning = simulation.world.is_target(latent.intended, song)      ? "what the user meant"
                              : simulation.world.is_target(latent.alternative, song) ? "the other meaning"
                                                                                      : "";
        std::printf("  %3zu  %11zu  %4d  %.3f  %.3f  %6.2f  %-10s  %s\n", k, i, song + 1, answer.p_ctr[i],
                    answer.p_cvr[i], answer.score[i], c.conv ? "conversion" : c.click ? "click" : "", meaning);
    }
    // [tutorial:end]
    std::vector<std::size_t> sorted = answer.order;
    std::sort(sorted.begin(), sorted.end());
    bool is_permutation = sorted.size() == request.candidates.size();
    for (std::size_t i = 0; i < sorted.size(); ++i) is_permutation = is_permutation && sorted[i] == i;
    check(is_permutation && answer.order == piano::metrics::rerank_order(answer.score),
          "rerank returns every candidate once, sorted by the score s_i");

    return check.finish();
}
