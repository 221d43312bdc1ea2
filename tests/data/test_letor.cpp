// The LETOR / SVMlight reader: the project's fixtures, malformed lines, the shared MQ2008
// files, and a listwise model trained on LETOR requests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "piano/data/letor.hpp"
#include "piano/metrics/evaluate.hpp"
#include "piano/model/factory.hpp"
#include "piano/train/trainer.hpp"

#include <support/test_helpers.hpp>

using namespace piano::data;

namespace {

const std::string kLetorFixtures = std::string(PIANO_TEST_FIXTURES) + "/letor/";

/// LETOR's labels, the file's order kept.
LoadOptions letor_options() {
    LoadOptions o = letor_labels(LoadOptions{});
    o.candidate_order = CandidateOrder::as_logged;
    return o;
}

}  // namespace

TEST_CASE("LETOR lines stream into one list per query", "[data][letor]") {
    std::vector<LetorList> lists;
    const ReadStats stats =
        for_each_letor_list(kLetorFixtures + "good.txt", letor_options(), [&](const LetorList& l) { lists.push_back(l); });
    CHECK(stats.records == 3);
    CHECK(stats.skipped == 0);
    REQUIRE(lists.size() == 3);
    CHECK(lists[0].qid == "10");
    CHECK(lists[1].qid == "11");
    CHECK(lists[2].qid == "12");
    CHECK(lists[0].source.line == 2);  // line 1 is a comment
    CHECK(lists[1].source.line == 5);
    CHECK(lists[2].source.line == 8);  // after a blank line
    CHECK(lists[0].labels == std::vector<float>{2, 0, 1});
    CHECK(lists[1].labels == std::vector<float>{0, 0});
    REQUIRE(lists[0].features[2].size() == 1);
    CHECK(lists[0].features[2][0].first == 2);
    CHECK(lists[0].features[2][0].second == Approx(0.7));
    CHECK(letor_feature_count(kLetorFixtures + "good.txt") == 3);
    // Lists with both classes: query 10 only, and its relevant ones are not all first.
    CHECK(stats.order.lists_with_both == 1);
    CHECK(stats.order.label_sorted == 0);
}

TEST_CASE("LETOR requests carry dense features and no ids", "[data][letor]") {
    const LoadedRequests loaded = load_letor_file(kLetorFixtures + "good.txt", 3, letor_options());
    REQUIRE(loaded.requests.size() == 3);
    const Request& r = loaded.requests[0];
    CHECK(r.query.empty());
    CHECK(r.history.empty());
    CHECK(r.first_stage_order);
    REQUIRE(r.candidates.size() == 3);
    CHECK(r.candidates[1].dense == std::vector<float>{0.1f, 0.0f, 0.3f});  // index 2 absent
    CHECK(r.candidates[2].dense == std::vector<float>{0.0f, 0.7f, 0.0f});
    CHECK(r.candidates[0].fields.item == kUnknownRow);
    CHECK(r.candidates[0].click == 1);
    CHECK(r.candidates[0].conv == 1);  // label 2 >= conv_threshold 2
    CHECK(r.candidates[2].click == 1);
    CHECK(r.candidates[2].conv == 0);
    CHECK(piano::metrics::relevance_grade(r.candidates[0].click, r.candidates[0].conv) == 2);

    // A test file may not use a feature the training data did not have.
    try {
        load_letor_file(kLetorFixtures + "good.txt", 2, letor_options());
        FAIL("no DataError for a feature beyond the training width");
    } catch (const piano::DataError& e) {
        CHECK(e.line() == 2);
        CHECK(e.field() == "feature");
        CHECK(std::string(e.what()).find("index 3 beyond the 2 features") != std::string::npos);
    }
}

TEST_CASE("a malformed LETOR line names its file, line and field", "[data][letor]") {
    struct Case {
        const char* file;
        long line;
        const char* field;
        const char* says;
    };
    const Case cases[] = {
        {"label_not_a_number.txt", 2, "label", "'x' is not a number"},
        {"label_above_max.txt", 2, "label", "'7' is outside [0, max_label = 4]"},
        {"qid_missing.txt", 1, "qid", "expected 'qid:<query>'"},
        {"qid_interrupted.txt", 3, "qid", "query '1' began at line 1 and was interrupted"},
        {"feature_value.txt", 1, "feature", "'1:abc': the value is not a finite number"},
        {"feature_order.txt", 1, "feature", "index 1 after index 2"},
        {"feature_index_zero.txt", 1, "feature", "the index is not an integer >= 1"},
        {"feature_no_colon.txt", 1, "feature", "'5' is not '<index>:<value>'"},
        {"feature_index_huge.txt", 1, "feature", "index above the limit of 100000 features"},
        {"line_too_short.txt", 1, "line", "expected '<label> qid:<query>"},
    };
    for (const Case& c : cases) {
        INFO(c.file);
        const std::string path = kLetorFixtures + "malformed/" + c.file;
        try {
            for_each_letor_list(path, letor_options(), [](const LetorList&) {});
            FAIL("no DataError from " << c.file);
        } catch (const piano::DataError& e) {
            CHECK(e.file() == path);
            CHECK(e.line() == c.line);
            CHECK(e.field() == c.field);
            CHECK(std::string(e.what()).find(c.says) != std::string::npos);
            CHECK(std::string(e.what()).rfind(path + ":" + std::to_string(c.line) + ": field " + c.field + ": ", 0) == 0);
        }
    }
    LoadOptions skip = letor_options();
    skip.skip_malformed = true;
    std::size_t lists = 0;
    const ReadStats stats = for_each_letor_list(kLetorFixtures + "malformed/label_not_a_number.txt", skip,
                                                [&](const LetorList& l) { lists += l.labels.size(); });
    CHECK(stats.skipped == 1);
    CHECK(stats.records == 1);
    CHECK(lists == 1);
    CHECK(stats.first_error.find(":2: field label:") != std::string::npos);
}

TEST_CASE("the shared MQ2008 files read as their README counts them", "[data][letor][shared]") {
    struct Counts {
        const char* file;
        std::size_t queries, lines, with_relevant, l0, l1, l2, shortest, longest;
    };
    const Counts expected[] = {{"vali.txt", 157, 2707, 120, 2140, 400, 167, 6, 118},
                               {"test.txt", 156, 2874, 105, 2319, 378, 177, 6, 119}};
    for (const Counts& c : expected) {
        INFO(c.file);
        const std::string path = piano::testing::shared_data(std::string("letor-mq2008/") + c.file);
        CHECK(letor_feature_count(path) == 46);
        const LoadedRequests loaded = load_letor_file(path, 46, letor_options());
        CHECK(loaded.requests.size() == c.queries);
        std::size_t lines = 0, with_relevant = 0, labels[3] = {0, 0, 0}, shortest = 1000, longest = 0;
        for (const Request& r : loaded.requests) {
            lines += r.candidates.size();
            shortest = std::min(shortest, r.candidates.size());
            longest = std::max(longest, r.candidates.size());
            bool relevant = false;
            for (const Candidate& cand : r.candidates) {
                REQUIRE(cand.dense.size() == 46);
                ++labels[static_cast<int>(cand.label)];
                relevant = relevant || cand.click == 1;
            }
            with_relevant += relevant ? 1 : 0;
        }
        CHECK(lines == c.lines);
        CHECK(with_relevant == c.with_relevant);
        CHECK(labels[0] == c.l0);
        CHECK(labels[1] == c.l1);
        CHECK(labels[2] == c.l2);
        CHECK(shortest == c.shortest);
        CHECK(longest == c.longest);
        // LETOR's order is the documents' order, not sorted by label.
        CHECK_FALSE(loaded.stats.order.label_sorted_beyond_chance());
    }
}

TEST_CASE("listwise models train on LETOR requests", "[data][letor][train]") {
    piano::testing::TempDir dir("letor");
    std::filesystem::copy_file(kLetorFixtures + "good.txt", dir / "train.txt");
    std::filesystem::copy_file(kLetorFixtures + "good.txt", dir / "valid.txt");
    const JdsearchDataset data = load_letor(letor_dir_files(dir.path().string()), letor_options());
    CHECK(data.dense_dim == 3);
    CHECK(data.train.size() == 3);
    CHECK(data.valid.size() == 3);
    CHECK(data.test.empty());
    for (int t = 0; t < kTableCount; ++t) CHECK(data.vocab.tables[static_cast<std::size_t>(t)].rows() == 1);

    for (const char* name : {"prm", "piano"}) {
        INFO(name);
        piano::PianoConfig config = piano::PianoConfig::tiny();
        config.dense_features = static_cast<long>(data.dense_dim);
        auto model = piano::make_model<float>(name, config);
        piano::TrainOptions options;
        options.epochs = 2;
        options.batch_size = 2;
        options.out_dir = (dir / name).string();
        std::ostringstream log;
        const piano::TrainResult result = piano::train(*model, data.train, data.valid, options, log);
        REQUIRE(result.epochs.size() == 2);
        for (const auto& epoch : result.epochs) CHECK(std::isfinite(epoch.valid.ndcg_10));
        CHECK(piano::metrics::evaluate(piano::predict(*model, data.valid)).requests == 3);
    }
}
