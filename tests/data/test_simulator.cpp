// The music-search simulator: determinism, the JDsearch format it writes, truth.txt, and
// the two effects it exists to produce (position bias, ambiguous queries that only the
// user's own history resolves).
#include <catch2/catch.hpp>

#include <piano/data/jdsearch.hpp>
#include <piano/data/simulator.hpp>

#include <support/test_helpers.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using piano::data::SimRequest;
using piano::data::Simulation;
using piano::data::SimulatorOptions;
using piano::testing::lines_of;
using piano::testing::read_bytes;
using piano::testing::TempDir;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(s);
    while (std::getline(in, part, sep)) parts.push_back(part);
    if (!s.empty() && s.back() == sep) parts.emplace_back();
    if (s.empty()) parts.emplace_back();
    return parts;
}


/// Big enough for statistics, small enough for a sanitizer build: generated once.
const Simulation& medium() {
    static const Simulation sim = [] {
        SimulatorOptions o;
        o.users = 800;
        o.songs = 1500;
        o.artists = 150;
        o.genres = 10;
        o.requests = 8000;
        o.seed = 7;
        return piano::data::simulate_music_search(o);
    }();
    return sim;
}

const piano::data::World& world() { return medium().world; }

/// P(click | examined) of candidate i: the click probability without the position factor.
double attractiveness(const SimRequest& r, std::size_t i, double eta) {
    return r.p_click[i] * std::pow(static_cast<double>(i + 1), eta);
}

}  // namespace

TEST_CASE("same seed gives byte-identical files, another seed different ones", "[data][simulator]") {
    const SimulatorOptions o = piano::testing::small_world();
    SimulatorOptions other = o;
    other.seed = o.seed + 1;
    TempDir a("a"), b("b"), c("c");
    piano::data::write_jdsearch_files(piano::data::simulate_music_search(o), a.path());
    piano::data::write_jdsearch_files(piano::data::simulate_music_search(o), b.path());
    piano::data::write_jdsearch_files(piano::data::simulate_music_search(other), c.path());
    for (const char* name : {"products.txt", "train.txt", "valid.txt", "test.txt", "truth.txt"}) {
        INFO(name);
        const std::string bytes = read_bytes(a / name);
        CHECK(bytes.size() > 50);
        CHECK(bytes == read_bytes(b / name));
        CHECK(bytes != read_bytes(c / name));
    }
}

TEST_CASE("request files have the JDsearch header and field layout", "[data][simulator]") {
    const Simulation& sim = medium();
    TempDir dir("format");
    piano::data::write_jdsearch_files(sim, dir.path());
    const std::string request_header =
        "query\tcandidate_wid_list\tcandidate_label_list\thistory_qry_list\thistory_wid_list\thistory_type_list\t"
        "history_time_list";
    const std::string product_header =
        "wid\tname\tbrand_id\tbrand_name\tcate_id_1\tcate_name_1\tcate_id_2\tcate_name_2\tcate_id_3\tcate_name_3\t"
        "cate_id_4\tcate_name_4\tshop_id";
    // The project's fixture in JDsearch's exact layout (whose headers the [shared] test
    // below holds to the real files) starts with the same lines.
    const fs::path layout = fs::path(PIANO_TEST_FIXTURES) / "jdsearch" / "layout";
    CHECK(lines_of(layout / "requests.txt").front() == request_header);
    CHECK(lines_of(layout / "products.txt").front() == product_header);
    const std::vector<std::string> products = lines_of(dir / "products.txt");
    REQUIRE(products.size() == sim.world.songs.size() + 1);
    CHECK(products.front() == product_header);
    for (std::size_t k = 1; k < products.size(); ++k) REQUIRE(split(products[k], '\t').size() == 13);

    const std::set<std::string> labels = {"0.0", "1.0", "2.0", "3.0"};
    const std::set<std::string> types = {"CLICK", "CART", "ORD", "FLW"};
    const std::pair<const char*, std::size_t> files[] = {
        {"train.txt", sim.train}, {"valid.txt", sim.valid}, {"test.txt", sim.test}};
    std::size_t query_less = 0, empty_histories = 0, events = 0;
    for (const auto& [name, count] : files) {
        INFO(name);
        const std::vector<std::string> lines = lines_of(dir / name);
        REQUIRE(lines.size() == count + 1);
        CHECK(lines.front() == request_header);
        for (std::size_t k = 1; k < lines.size(); ++k) {
            const std::vector<std::string> f = split(lines[k], '\t');
            REQUIRE(f.size() == 7);
            CHECK(!f[0].empty());
            const auto wids = split(f[1], '_');
            const auto label = split(f[2], '_');
            REQUIRE(wids.size() == label.size());
            CHECK(wids.size() >= 20);
            CHECK(wids.size() <= 30);
            for (const std::string& l : label) REQUIRE(labels.count(l) == 1);
            const auto times = split(f[6], '_');
            CHECK(times.front() == "0");
            for (const std::string& t : times) REQUIRE(std::stoll(t) >= 0);
            if (f[4].empty()) {  // H = 0
                ++empty_histories;
                CHECK(f[3].empty());
                CHECK(f[5].empty());
                CHECK(times.size() == 1);
                continue;
            }
            const auto queries = split(f[3], '_');
            const auto items = split(f[4], '_');
            const auto kinds = split(f[5], '_');
            REQUIRE(queries.size() == items.size());
            REQUIRE(kinds.size() == items.size());
            REQUIRE(times.size() == items.size() + 1);
            CHECK(items.size() <= 30);
            for (const std::string& t : kinds) REQUIRE(types.count(t) == 1);
            for (const std::string& q : queries) {
                REQUIRE(!q.empty());
                query_less += q == "-1";
            }
            events += items.size();
        }
    }
    CHECK(query_less > 0);        // browsing events exist
    CHECK(query_less < events / 2);
    CHECK(empty_histories > 0);   // cold-start requests exist
}

TEST_CASE("the JDsearch loader reads the simulator's files", "[data][simulator]") {
    const Simulation& sim = medium();
    TempDir dir("loader");
    piano::data::write_jdsearch_files(sim, dir.path());
    const piano::data::JdsearchDataset data = piano::data::load_jdsearch_dir(dir.path().string());
    REQUIRE(data.train.size() == sim.train);
    REQUIRE(data.valid.size() == sim.valid);
    REQUIRE(data.test.size() == sim.test);
    std::size_t clicks = 0, convs = 0;
    for (std::size_t k = 0; k < sim.test; ++k) {
        const SimRequest& r = sim.requests[sim.train + sim.valid + k];
        const piano::data::Request& loaded = data.test[k];
        REQUIRE(loaded.candidates.size() == r.candidates.size());
        REQUIRE(loaded.history.size() == r.history_end - r.history_begin);
        for (std::size_t i = 0; i < r.candidates.size(); ++i) {
            const piano::data::Candidate& c = loaded.candidates[i];
            CHECK(c.click == (r.label[i] >= 1 ? 1 : 0));
            CHECK(c.conv == (r.label[i] == 3 ? 1 : 0));
            CHECK(c.conv <= c.click);  // conv only where click
            clicks += c.click;
            convs += c.conv;
        }
        // Gaps to the search: the newest event is r.time - its time before it.
        if (!loaded.history.empty())
            CHECK(loaded.history.back().gap == r.time - sim.timelines[r.user][r.history_end - 1].time);
    }
    CHECK(clicks > 0);
    CHECK(convs > 0);
}

TEST_CASE("truth.txt holds one line of true probabilities per test request", "[data][simulator]") {
    const Simulation& sim = medium();
    TempDir dir("truth");
    piano::data::write_jdsearch_files(sim, dir.path());
    const std::vector<piano::data::TruthRow> truth = piano::data::read_truth(dir / "truth.txt");
    REQUIRE(truth.size() == sim.test);
    REQUIRE(lines_of(dir / "truth.txt").size() == sim.test);
    const std::vector<std::string> test_lines = lines_of(dir / "test.txt");
    for (std::size_t k = 0; k < truth.size(); ++k) {
        const SimRequest& r = sim.requests[sim.train + sim.valid + k];
        REQUIRE(truth[k].request == k);
        REQUIRE(truth[k].p_click.size() == split(split(test_lines[k + 1], '\t')[1], '_').size());
        for (std::size_t i = 0; i < r.p_click.size(); ++i) {
            REQUIRE(truth[k].p_click[i] >= 0.0);
            REQUIRE(truth[k].p_click[i] <= 1.0);
            REQUIRE(truth[k].p_conv[i] >= 0.0);
            REQUIRE(truth[k].p_conv[i] <= 1.0);
            CHECK(truth[k].p_click[i] == Approx(r.p_click[i]).margin(1e-6));
            CHECK(truth[k].p_conv[i] == Approx(r.p_conv[i]).margin(1e-6));
        }
        const std::vector<double> oracle = truth[k].pctcvr();
        CHECK(oracle[0] == Approx(r.p_click[0] * r.p_conv[0]).margin(1e-6));
    }
}

TEST_CASE("read_truth refuses malformed lines with file, line and field", "[data][simulator]") {
    TempDir dir("bad_truth");
    const fs::path path = dir / "truth.txt";
    auto rejects = [&](const std::string& text, const std::string& expected) {
        std::ofstream(path, std::ios::binary) << text;
        try {
            piano::data::read_truth(path);
            FAIL("accepted: " << text);
        } catch (const piano::DataError& e) {
            CHECK(e.line() == 2);
            CHECK(e.field() == expected);
        }
    };
    const std::string good = "0\t0.5_0.25\t0.1_0.2\n";
    rejects(good + "1\t0.5_1.5\t0.1_0.2\n", "p_click");
    rejects(good + "1\t0.5\t0.1_0.2\n", "p_conv");
    rejects(good + "1\t0.5_0.5\n", "line");
    rejects(good + "x\t0.5\t0.5\n", "request");
    rejects(good + "1\t0.5_\t0.1_0.2\n", "p_click");
}

TEST_CASE("the empirical click rate falls with position, and only through position_bias", "[data][simulator]") {
    const Simulation& sim = medium();
    // Click rate over positions 0-4, 5-9, 10-14, 15-19 (every list has at least 20).
    auto bucket_rates = [](const Simulation& s) {
        std::vector<double> clicks(4, 0.0), shown(4, 0.0);
        for (std::size_t k = 0; k < s.train; ++k)
            for (std::size_t i = 0; i < 20; ++i) {
                clicks[i / 5] += s.requests[k].label[i] >= 1;
                shown[i / 5] += 1.0;
            }
        for (std::size_t b = 0; b < 4; ++b) clicks[b] /= shown[b];
        return clicks;
    };
    const std::vector<double> rate = bucket_rates(sim);
    for (std::size_t b = 1; b < 4; ++b) CHECK(rate[b] < rate[b - 1]);
    CHECK(rate[0] > 3.0 * rate[3]);

    // Without position bias the fall is only the first-stage ranker's relevance order.
    SimulatorOptions flat = sim.world.options;
    flat.clicks.position_bias = 0.0;
    flat.requests = 3000;
    const std::vector<double> flat_rate = bucket_rates(piano::data::simulate_music_search(flat));
    CHECK(flat_rate[0] / flat_rate[3] < 0.5 * rate[0] / rate[3]);
}

TEST_CASE("conversion follows taste, not position", "[data][simulator]") {
    const Simulation& sim = medium();
    double top = 0.0, bottom = 0.0, liked = 0.0, disliked = 0.0;
    double n_top = 0.0, n_bottom = 0.0, n_liked = 0.0, n_disliked = 0.0;
    for (const SimRequest& r : sim.requests)
        for (std::size_t i = 0; i < r.candidates.size(); ++i) {
            if (i < 5) top += r.p_conv[i], n_top += 1.0;
            if (i >= 15 && i < 20) bottom += r.p_conv[i], n_bottom += 1.0;
            const double aff = world().affinity(r.user, r.candidates[i]);
            if (aff > 1.5) liked += r.p_conv[i], n_liked += 1.0;
            if (aff < 0.5) disliked += r.p_conv[i], n_disliked += 1.0;
        }
    CHECK(std::abs(top / n_top - bottom / n_bottom) < 0.03);
    CHECK(liked / n_liked > disliked / n_disliked + 0.25);
}

TEST_CASE("ambiguous queries: the intended meaning draws the clicks", "[data][simulator]") {
    const Simulation& sim = medium();
    const double eta = sim.world.options.clicks.position_bias;
    std::size_t ambiguous = 0, mixed = 0, compared = 0, intended_wins = 0;
    double margin = 0.0;
    for (const SimRequest& r : sim.requests) {
        if (!r.ambiguous()) continue;
        ++ambiguous;
        double mine = 0.0, other = 0.0;
        int n_mine = 0, n_other = 0;
        for (std::size_t i = 0; i < r.candidates.size(); ++i) {
            const bool is_mine = world().is_target(r.intended, r.candidates[i]);
            const bool is_other = world().is_target(r.alternative, r.candidates[i]);
            if (is_mine == is_other) continue;
            (is_mine ? mine : other) += attractiveness(r, i, eta);
            (is_mine ? n_mine : n_other) += 1;
        }
        if (n_mine == 0 || n_other == 0) continue;
        ++mixed;
        ++compared;
        margin += mine / n_mine - other / n_other;
        intended_wins += mine / n_mine > other / n_other;
    }
    const double fraction = static_cast<double>(ambiguous) / static_cast<double>(sim.requests.size());
    CHECK(std::abs(fraction - sim.world.options.ambiguity) < 0.03);
    // The first-stage list mixes both meanings, so re-ranking has something to fix.
    CHECK(static_cast<double>(mixed) > 0.9 * static_cast<double>(ambiguous));
    CHECK(static_cast<double>(intended_wins) > 0.95 * static_cast<double>(compared));
    CHECK(margin / static_cast<double>(compared) > 0.3);
}

TEST_CASE("ambiguous queries: the user's own history resolves them, the taste does not", "[data][simulator]") {
    const Simulation& sim = medium();
    std::size_t ambiguous = 0, covered = 0, history_right = 0, taste_right = 0;
    for (const SimRequest& r : sim.requests) {
        if (!r.ambiguous()) continue;
        ++ambiguous;
        const int term = r.query.front();
        const int first = std::min(r.intended, r.alternative);
        const int second = std::max(r.intended, r.alternative);
        // Vote: past events whose query held this term, by the meaning their song belongs to.
        int votes = 0;
        for (std::size_t j = r.history_begin; j < r.history_end; ++j) {
            const piano::data::SimEvent& e = sim.timelines[r.user][j];
            if (std::find(e.query.begin(), e.query.end(), term) == e.query.end()) continue;
            votes += world().is_target(first, e.song) - world().is_target(second, e.song);
        }
        // The best taste-only guess: the meaning whose genre the user likes more.
        const std::vector<double>& taste = world().users[r.user].taste;
        const int taste_guess = taste[world().meanings[first].genre] >= taste[world().meanings[second].genre]
                                    ? first : second;
        taste_right += taste_guess == r.intended;
        if (votes == 0) continue;
        ++covered;
        history_right += (votes > 0 ? first : second) == r.intended;
    }
    const double coverage = static_cast<double>(covered) / static_cast<double>(ambiguous);
    const double history_accuracy = static_cast<double>(history_right) / static_cast<double>(covered);
    const double taste_accuracy = static_cast<double>(taste_right) / static_cast<double>(ambiguous);
    INFO("coverage " << coverage << ", history " << history_accuracy << ", taste " << taste_accuracy);
    CHECK(coverage > 0.5);
    CHECK(history_accuracy > 0.85);
    CHECK(taste_accuracy > 0.4);
    CHECK(taste_accuracy < 0.6);
}

TEST_CASE("options that cannot work throw ConfigError naming the option", "[data][simulator]") {
    auto rejects = [](SimulatorOptions o, const std::string& name) {
        try {
            piano::data::check_options(o);
            FAIL("accepted options with bad " << name);
        } catch (const piano::ConfigError& e) {
            CHECK_THAT(e.what(), Catch::Contains(name));
        }
    };
    SimulatorOptions o;
    CHECK_NOTHROW(piano::data::check_options(o));
    o.genres = 1;
    rejects(o, "genres");
    o = {};
    o.songs = 25;
    rejects(o, "songs");
    o = {};
    o.min_list_length = 40;
    rejects(o, "max_list_length");
    o = {};
    o.ambiguity = 1.5;
    rejects(o, "ambiguity");
    o = {};
    o.vocabulary = 100;
    rejects(o, "vocabulary");
    o = {};
    o.requests = 2;
    o.valid_fraction = 0.5;
    o.test_fraction = 0.45;
    rejects(o, "requests");
}
