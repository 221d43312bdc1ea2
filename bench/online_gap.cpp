// online_gap: where the first-stage -> oracle gap of a simulated world lies, and what each
// piece of knowledge is worth online.
//
// A model's online figures say how much of the gap it closes, not which part it misses.
// This program draws the world `piano simulate --seed S` draws (same options, so the same
// test requests) and values, under the world's click model, orders a model could reach
// only by knowing part of the truth. Each order sorts a test list by a_i computed from
// the simulator's equations (piano/data/simulator.hpp) with one ingredient withheld:
//
//   first stage             the logged order
//   no intent               an ambiguous query's two meanings weighed alike: E over the
//                           meaning of a_i (what no personal evidence can beat)
//   no taste                aff(u, s) = 0: relevance to the intended meaning + popularity
//   no popularity           relevance + taste
//   relevance only          rel(m*, s) alone
//   oracle by attraction    a_i (most clicks)
//   oracle by conversion    a_i c_i (most conversions)
//
// separately for plain and ambiguous queries, as the lift in expected clicks and
// conversions per request and the share of the gap each closes (clicks against the
// attraction oracle, conversions against the conversion oracle, as metrics/online.hpp).
// With --orders, a model's orders join the table: the output of
// `piano rerank --model M --requests W/test.txt --format tsv` on that world.
//
//   online_gap [--seed S] [--requests N] [--ambiguity A] [--click-model pbm|dbn] [--orders TSV]
#include <piano/data/click_model.hpp>
#include <piano/data/simulator.hpp>

#include <algorithm>
#include <memory>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using piano::data::SimRequest;
using piano::data::World;

struct Knowledge {
    const char* name;
    // The score of candidate i of request r (higher first).
    std::function<double(const World&, const SimRequest&, std::size_t)> score;
};

double known_attraction(const World& w, const SimRequest& r, std::size_t i, bool taste, bool popularity) {
    using namespace piano::data::simulator_model;
    const int s = r.candidates[i];
    return kClickRelevance * w.relevance(r.intended, s) + (taste ? kClickAffinity * w.affinity(r.user, s) : 0.0) +
           (popularity ? kClickPopularity * w.songs[static_cast<std::size_t>(s)].popularity : 0.0);
}

const std::vector<Knowledge>& orders() {
    static const std::vector<Knowledge> k = {
        {"first stage", [](const World&, const SimRequest&, std::size_t i) { return -static_cast<double>(i); }},
        {"no intent",
         [](const World& w, const SimRequest& r, std::size_t i) {
             const int s = r.candidates[i];
             if (r.alternative < 0) return r.attraction[i];
             return 0.5 * (w.attractiveness(r.user, r.intended, s) + w.attractiveness(r.user, r.alternative, s));
         }},
        {"no taste", [](const World& w, const SimRequest& r, std::size_t i) { return known_attraction(w, r, i, false, true); }},
        {"no popularity",
         [](const World& w, const SimRequest& r, std::size_t i) { return known_attraction(w, r, i, true, false); }},
        {"relevance only",
         [](const World& w, const SimRequest& r, std::size_t i) { return w.relevance(r.intended, r.candidates[i]); }},
        {"oracle by attraction", [](const World&, const SimRequest& r, std::size_t i) { return r.attraction[i]; }},
        {"oracle by conversion",
         [](const World&, const SimRequest& r, std::size_t i) { return r.attraction[i] * r.p_conv[i]; }},
    };
    return k;
}

// The `indices` column of a `piano rerank --format tsv` file, by test request: row k holds
// the first-stage index of each candidate in the model's order. Test request k sits on
// line k + 2 of test.txt (after the header line), the number in the `line` column.
std::vector<std::vector<std::size_t>> read_orders(const std::string& path, std::size_t requests) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<std::vector<std::size_t>> orders(requests);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string column[5];
        for (std::string& c : column) std::getline(fields, c, '\t');
        const std::size_t k = std::stoul(column[0]) - 2;
        if (k >= requests) throw std::runtime_error(path + ": line " + column[0] + " is not a test request of this world");
        std::istringstream indices(column[4]);
        for (std::string i; std::getline(indices, i, ',');) orders[k].push_back(std::stoul(i));
    }
    return orders;
}

}  // namespace

int main(int argc, char** argv) {
    piano::data::SimulatorOptions options;
    std::string orders_path;
    for (int a = 1; a + 1 < argc; a += 2) {
        const std::string key = argv[a], value = argv[a + 1];
        if (key == "--seed") options.seed = std::stoull(value);
        else if (key == "--requests") options.requests = std::stoi(value);
        else if (key == "--ambiguity") options.ambiguity = std::stod(value);
        else if (key == "--orders") orders_path = value;
        else if (key == "--click-model") options.clicks.kind = value == "dbn" ? piano::data::ClickModelKind::dbn
                                                                             : piano::data::ClickModelKind::position_based;
        else {
            std::fprintf(stderr, "usage: online_gap [--seed S] [--requests N] [--ambiguity A] [--click-model pbm|dbn] [--orders TSV]\n");
            return 2;
        }
    }
    const piano::data::Simulation sim = piano::data::simulate_music_search(options);
    std::vector<Knowledge> k = orders();
    const std::size_t by_attraction = k.size() - 2, by_conversion = k.size() - 1;
    if (!orders_path.empty()) {
        // The model's order as a score: its rank, best first.
        auto model = std::make_shared<std::vector<std::vector<std::size_t>>>(read_orders(orders_path, sim.test));
        const std::size_t first_test = sim.train + sim.valid;
        k.push_back({"the model (--orders)", [model, &sim, first_test](const World&, const SimRequest& r, std::size_t i) {
                         const std::vector<std::size_t>& order = (*model)[static_cast<std::size_t>(&r - &sim.requests[first_test])];
                         if (order.size() != r.candidates.size()) throw std::runtime_error("--orders: a request's order has the wrong length");
                         return -static_cast<double>(std::find(order.begin(), order.end(), i) - order.begin());
                     }});
    }
    const std::size_t K = k.size();
    // [plain, ambiguous][order] sums of E[clicks] and E[conversions], and request counts.
    std::array<std::vector<double>, 2> clicks{std::vector<double>(K), std::vector<double>(K)};
    std::array<std::vector<double>, 2> conversions = clicks;
    std::array<std::size_t, 2> requests{0, 0};
    for (std::size_t t = 0; t < sim.test; ++t) {
        const SimRequest& r = sim.requests[sim.train + sim.valid + t];
        const int group = r.alternative >= 0;
        ++requests[static_cast<std::size_t>(group)];
        const std::size_t L = r.candidates.size();
        for (std::size_t o = 0; o < K; ++o) {
            std::vector<double> score(L);
            for (std::size_t i = 0; i < L; ++i) score[i] = k[o].score(sim.world, r, i);
            std::vector<std::size_t> order(L);
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
            std::vector<double> a(L), c(L);
            for (std::size_t rank = 0; rank < L; ++rank) {
                a[rank] = r.attraction[order[rank]];
                c[rank] = r.p_conv[order[rank]];
            }
            const piano::data::ListOutcome out = piano::data::expected_outcome(options.clicks, a, c);
            clicks[static_cast<std::size_t>(group)][o] += out.clicks;
            conversions[static_cast<std::size_t>(group)][o] += out.conversions;
        }
    }
    std::printf("world: seed %llu, %zu test requests (%zu plain, %zu ambiguous), click model %s\n",
                static_cast<unsigned long long>(options.seed), sim.test, requests[0], requests[1],
                options.clicks.kind == piano::data::ClickModelKind::dbn ? "dbn" : "pbm");
    for (int group = 0; group < 2; ++group) {
        const std::vector<double>& cl = clicks[static_cast<std::size_t>(group)];
        const std::vector<double>& cv = conversions[static_cast<std::size_t>(group)];
        std::printf("\n%s queries\n| order | clicks lift | gap closed | conversions lift | gap closed |\n|---|---:|---:|---:|---:|\n",
                    group ? "ambiguous" : "plain");
        for (std::size_t o = 0; o < K; ++o) {
            std::printf("| %s | %+.2f%% | %.1f%% | %+.2f%% | %.1f%% |\n", k[o].name, 100 * (cl[o] / cl[0] - 1),
                        100 * (cl[o] - cl[0]) / (cl[by_attraction] - cl[0]), 100 * (cv[o] / cv[0] - 1),
                        100 * (cv[o] - cv[0]) / (cv[by_conversion] - cv[0]));
        }
    }
    return 0;
}
