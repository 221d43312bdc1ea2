// Tutorial chapter 5 (docs/tutorial/05-qdir.md): QDIR, the query-driven interest refiner.
//
// A planted world where a query term means something different to every user, so the
// only way to know what "blue" means to this user is to find the past search where they
// typed "blue" and see what it led to. The program shows which past events QDIR attends
// to for one user before and after training (a text table and an SVG heatmap), and checks
// that training moves the attention onto the past search whose query matches.
// Usage: 05_qdir [heatmap.svg] [seed]   (default: 05_qdir_attention.svg, seed 1)
#include <piano/data/batch.hpp>
#include <piano/data/request.hpp>
#include <piano/data/shuffle.hpp>
#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/schedule.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "../common/svg.hpp"

namespace {

namespace data = piano::data;
using piano::Index;
using piano::Matrix;

// [tutorial:world]
constexpr int kTerms = 3;            // a user's habitual query terms, term rows 1..3
constexpr int kArtists = 24;         // artist (brand) rows 1..24
constexpr int kSongsPerArtist = 3;   // artist a's songs are item rows 3a, 3a+1, 3a+2
constexpr int kListLength = 6;
const char* const kTermNames[kTerms + 1] = {"", "blue", "queen", "heart"};

int below(std::mt19937_64& rng, int n) {
    return static_cast<int>(data::uniform_below(rng, static_cast<std::uint64_t>(n)));
}

data::ItemFields song_by(int artist, std::mt19937_64& rng) {
    data::ItemFields song;
    song.brand = artist;
    song.item = kSongsPerArtist * artist + below(rng, kSongsPerArtist);
    return song;
}

/// One search by a new user. To this user, term t means artist meaning[t] (three distinct
/// artists drawn for this user alone). History (H = 4, shuffled): one past search per
/// term, query {t} -> a song by meaning[t], and one query-less play of another artist.
/// The list (L = 6, shuffled): a song by each of the three, by the played artist and by
/// two strangers. The current query is one of the terms; the click and the conversion go
/// to the song by the artist that term means to this user.
data::Request search_by_new_user(std::mt19937_64& rng) {
    std::vector<int> artists(kArtists);  // after the shuffle: [0..2] meanings, [3] played, [4..5] strangers
    std::iota(artists.begin(), artists.end(), 1);
    data::seeded_shuffle(artists, rng);
    artists.resize(kListLength);

    data::Request request;
    const int term = 1 + below(rng, kTerms);
    request.query = {term};
    for (int t = 1; t <= kTerms + 1; ++t) {  // the searches with terms 1..3, then the play
        data::HistoryEvent event;
        event.has_query = t <= kTerms;
        if (event.has_query) event.query = {t};
        event.fields = song_by(artists[t - 1], rng);
        event.gap = 60 + below(rng, 86400);  // seconds before this search
        request.history.push_back(event);
    }
    data::seeded_shuffle(request.history, rng);
    for (int artist : artists) {
        data::Candidate candidate;
        candidate.fields = song_by(artist, rng);
        candidate.click = candidate.conv = artist == artists[term - 1];
        candidate.label = candidate.conv ? 3.0f : 0.0f;
        request.candidates.push_back(candidate);
    }
    data::seeded_shuffle(request.candidates, rng);
    return request;
}
// [tutorial:end]

std::vector<data::Request> searches(int n, std::mt19937_64& rng) {
    std::vector<data::Request> out;
    for (int i = 0; i < n; ++i) out.push_back(search_by_new_user(rng));
    return out;
}

/// "'blue' -> artist 7" or "(no query) -> artist 3": what a history event was.
std::string describe(const data::HistoryEvent& event) {
    const std::string query = event.has_query ? "'" + std::string(kTermNames[event.query[0]]) + "'" : "(no query)";
    return query + " -> artist " + std::to_string(event.fields.brand);
}

// [tutorial:attention]
/// QDIR's weights for one request: [heads, 1 + H]; row h is head h, column 0 the null
/// slot, column 1 + j history event j.
Matrix<float> qdir_attention(piano::Reranker<float>& model, const data::Request& request) {
    piano::NoGradGuard no_grad;
    const piano::ModelOutputs<float> out = model.forward(data::make_batch({&request}), /*want_attention=*/true);
    return out.qdir_weights.segments[0];
}

/// The attention column of the past search whose query is the current one.
Index matching_column(const data::Request& request) {
    for (std::size_t j = 0; j < request.history.size(); ++j) {
        if (request.history[j].has_query && request.history[j].query == request.query) return 1 + static_cast<Index>(j);
    }
    return 0;
}

/// The largest weight a head puts on the matching search: heads specialise, and one
/// head doing the lookup is enough.
float weight_on_match(const Matrix<float>& weights, const data::Request& request) {
    return weights.col(matching_column(request)).maxCoeff();
}
// [tutorial:end]

/// Over `requests`: the mean weight on the matching search, and the share of lists whose
/// clicked song the model ranks first.
std::pair<double, double> held_out_scores(piano::Reranker<float>& model, const std::vector<data::Request>& requests) {
    double weight = 0.0, first = 0.0;
    const std::vector<piano::RerankResult> ranked = model.rerank(requests);
    for (std::size_t i = 0; i < requests.size(); ++i) {
        weight += weight_on_match(qdir_attention(model, requests[i]), requests[i]);
        first += requests[i].candidates[ranked[i].order[0]].click;
    }
    const auto n = static_cast<double>(requests.size());
    return {weight / n, first / n};
}

// [tutorial:train]
/// The training loop that piano::train (chapter 7) runs, without validation and
/// checkpoints: batches of 8 requests, the multi-task loss, Adam with a warm-up of 200
/// steps to lr 0.01 and a linear decay to 0.
void train(piano::Reranker<float>& model, const std::vector<data::Request>& requests, int epochs) {
    piano::Adam<float> adam(model.named_parameters(), piano::AdamOptions{});
    data::Batcher batcher(requests, /*batch_size=*/8, /*seed=*/1);
    const piano::WarmupLinearSchedule schedule(0.01, 200, epochs * static_cast<long>(batcher.num_batches()));
    model.train();
    for (int epoch = 0; epoch < epochs; ++epoch) {
        batcher.start_epoch(static_cast<std::uint64_t>(epoch));
        double loss_sum = 0.0;
        long batches = 0;
        data::Batch batch;
        while (batcher.next(batch)) {
            const piano::ModelOutputs<float> out = model.forward(batch);  // logits: [ΣL,1] and [B,1]
            piano::LossBreakdown<float> loss =
                piano::multi_task_loss(out, batch, model.config(), model.loss_log_variances());
            loss.total.backward();
            adam.set_learning_rate(schedule.lr(adam.steps_taken()));
            adam.step();
            adam.zero_grad();
            loss_sum += static_cast<double>(loss.total.item());
            ++batches;
        }
        std::printf("epoch %2d  loss %.4f\n", epoch + 1, loss_sum / static_cast<double>(batches));
    }
    model.eval();
}
// [tutorial:end]

}  // namespace

int main(int argc, char** argv) {
    const std::string svg_path = argc > 1 ? argv[1] : "05_qdir_attention.svg";
    const unsigned long seed = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
    tutorial::Checks check;

    // [tutorial:setup]
    std::mt19937_64 rng(seed);
    const data::Request user = search_by_new_user(rng);  // the user we follow
    const std::vector<data::Request> train_set = searches(600, rng);
    const std::vector<data::Request> held_out = searches(200, rng);

    piano::PianoConfig config = piano::PianoConfig::tiny();  // d = 16, 2 heads, 1 layer
    config.term_rows = kTerms + 1;                           // row 0: unknown
    config.item_rows = kSongsPerArtist * (kArtists + 1);
    config.brand_rows = kArtists + 1;
    config.category_rows = config.shop_rows = 2;             // unused fields: row 0 only
    config.seed = seed;
    const std::unique_ptr<piano::Reranker<float>> model = piano::make_model<float>("piano", config);
    model->eval();
    // [tutorial:end]

    // [tutorial:before-after]
    const Matrix<float> before = qdir_attention(*model, user);
    const auto [weight_before, first_before] = held_out_scores(*model, held_out);
    train(*model, train_set, 12);
    const Matrix<float> after = qdir_attention(*model, user);
    const auto [weight_after, first_after] = held_out_scores(*model, held_out);
    // [tutorial:end]

    // [tutorial:table]
    std::printf("\nThe user searches '%s'. QDIR's attention, per head:\n", kTermNames[user.query[0]]);
    std::printf("  %-28s %8s %8s   %8s %8s\n", "key", "before 1", "before 2", "after 1", "after 2");
    const Index match = matching_column(user);
    for (Index k = 0; k < before.cols(); ++k) {
        const std::string key = k == 0 ? "null slot" : describe(user.history[static_cast<std::size_t>(k - 1)]);
        std::printf("  %-28s %8.3f %8.3f   %8.3f %8.3f%s\n", key.c_str(), before(0, k), before(1, k), after(0, k),
                    after(1, k), k == match ? "   <- same query" : "");
    }
    std::printf("\nHeld-out searches (%zu): weight on the matching search %.3f -> %.3f, clicked song first %.3f -> %.3f\n",
                held_out.size(), weight_before, weight_after, first_before, first_after);
    // [tutorial:end]

    // [tutorial:heatmap]
    svg::Heatmap map;
    map.title = "QDIR attention for the query '" + std::string(kTermNames[user.query[0]]) + "' (%)";
    map.row_labels = {"before, head 1", "before, head 2", "after, head 1", "after, head 2"};
    map.col_labels.push_back("null slot");
    for (const data::HistoryEvent& event : user.history) map.col_labels.push_back(describe(event));
    for (const Matrix<float>* weights : {&before, &after})
        for (Index head = 0; head < weights->rows(); ++head) {
            std::vector<double>& row = map.values.emplace_back();
            for (Index k = 0; k < weights->cols(); ++k) row.push_back((*weights)(head, k));
        }
    svg::write_file(svg_path, svg::render(map));
    std::printf("heatmap: %s\n", svg_path.c_str());
    // [tutorial:end]

    // [tutorial:claims]
    const float user_before = weight_on_match(before, user), user_after = weight_on_match(after, user);
    check(user_after >= 0.5f && user_after >= user_before + 0.3f,
          "for our user, a head moves its attention onto the past search with the same query (" +
              tutorial::fixed(user_before) + " -> " + tutorial::fixed(user_after) + ")");
    check(weight_before <= 0.4 && weight_after >= 0.7,
          "on held-out searches too, on average (" + tutorial::fixed(weight_before) + " -> " +
              tutorial::fixed(weight_after) + ")");
    check(first_before <= 0.4 && first_after >= 0.6,
          "and the clicked song is ranked first far more often than by chance, 1/6 (" + tutorial::fixed(first_before) +
              " -> " + tutorial::fixed(first_after) + ")");
    // [tutorial:end]
    return check.finish();
}
