// The training loop: loss, determinism, early stopping and its checkpoint, NaN detection,
// and the effect PIANO exists for (QDIR resolving a query from the user's own history).
#include <catch2/catch.hpp>

#include <piano/data/jdsearch.hpp>
#include <piano/data/simulator.hpp>
#include <piano/model/factory.hpp>
#include <piano/train/trainer.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <support/test_helpers.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using piano::PianoConfig;
using piano::TrainOptions;
using piano::testing::lines_of;
using piano::testing::TempDir;
namespace data = piano::data;

namespace {

long count_fields(const std::string& line) { return 1 + std::count(line.begin(), line.end(), ','); }

/// The planted effect. Every request is a user with K habitual query terms 1..K; with
/// term t they once found an artist b_t (the history holds K searches, query {t} -> a song
/// of b_t, in random order, all the same type and age). The artists are drawn per user,
/// so no term means the same artist for two users: who b_t is can only be read from the
/// user's own history, by matching the current query to the past ones. The list holds one
/// song of each b_1..b_K plus distractors of other artists, shuffled; the current query
/// is {t*} and the click (with a conversion) is on the song of b_{t*}.
///
/// A model without QDIR summarises the history as the mean of its values, which holds the
/// K artists but not which query led to which; it can rank the K history artists above
/// the distractors and no further, so its NDCG is about that of a random order of K.
struct PlantedOptions {
    int requests = 0;
    int terms = 4;           // K
    int list_length = 8;     // L >= K
    int artists = 24;        // the pool the b_t and distractors come from, >= L
    std::uint64_t seed = 1;
};

std::vector<data::Request> planted_requests(const PlantedOptions& o) {
    std::mt19937_64 rng(o.seed);
    auto below = [&rng](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    auto song_of = [&below](int artist) {  // 3 songs per artist, so items differ between history and list
        data::ItemFields f;
        f.brand = static_cast<data::Row>(artist);
        f.item = static_cast<data::Row>(3 * artist + below(3));
        return f;
    };
    std::vector<data::Request> requests;
    for (int n = 0; n < o.requests; ++n) {
        // Distinct artists 1..artists: the first K are b_1..b_K, the rest distractors.
        std::vector<int> artists(static_cast<std::size_t>(o.artists));
        for (int a = 0; a < o.artists; ++a) artists[static_cast<std::size_t>(a)] = a + 1;
        for (int i = 0; i < o.list_length; ++i) std::swap(artists[static_cast<std::size_t>(i)],
                                                          artists[static_cast<std::size_t>(i + below(o.artists - i))]);
        data::Request r;
        const int target = below(o.terms);
        r.query = {static_cast<data::Row>(1 + target)};
        std::vector<int> event_order(static_cast<std::size_t>(o.terms));
        for (int t = 0; t < o.terms; ++t) event_order[static_cast<std::size_t>(t)] = t;
        for (int t = o.terms - 1; t > 0; --t) std::swap(event_order[static_cast<std::size_t>(t)],
                                                         event_order[static_cast<std::size_t>(below(t + 1))]);
        for (int t : event_order) {
            data::HistoryEvent e;
            e.has_query = true;
            e.query = {static_cast<data::Row>(1 + t)};
            e.fields = song_of(artists[static_cast<std::size_t>(t)]);
            e.type = data::Behavior::click;
            e.gap = 1000;
            r.history.push_back(e);
        }
        std::vector<int> slots(static_cast<std::size_t>(o.list_length));  // slot -> artist index
        for (int i = 0; i < o.list_length; ++i) slots[static_cast<std::size_t>(i)] = i;
        for (int i = o.list_length - 1; i > 0; --i) std::swap(slots[static_cast<std::size_t>(i)],
                                                               slots[static_cast<std::size_t>(below(i + 1))]);
        for (int slot : slots) {
            data::Candidate c;
            c.fields = song_of(artists[static_cast<std::size_t>(slot)]);
            c.click = c.conv = slot == target ? 1 : 0;
            c.label = c.conv ? 3.f : 0.f;
            r.candidates.push_back(c);
        }
        requests.push_back(std::move(r));
    }
    return requests;
}

/// Planted requests with the default K, L and artists.
std::vector<data::Request> planted(int requests, std::uint64_t seed) {
    PlantedOptions o;
    o.requests = requests;
    o.seed = seed;
    return planted_requests(o);
}

/// tiny() at d = 8 (it learns the planted effect in fewer epochs than d = 16), with
/// tables for 4 terms, 24 artists and their 3 songs each.
PianoConfig planted_config() {
    PianoConfig c = PianoConfig::tiny();
    c.d_model = 8;
    c.ffn_dim = 32;
    c.term_rows = 8;
    c.item_rows = 80;
    c.brand_rows = 32;
    c.category_rows = 2;
    c.shop_rows = 2;
    return c;
}

TrainOptions quiet_options() {
    TrainOptions o;
    o.progress = false;
    o.learning_rate = 3e-3;
    o.batch_size = 16;
    return o;
}

/// A small simulated music-search log, written as JDsearch files and read back.
const data::JdsearchDataset& simulated() {
    static const data::JdsearchDataset dataset = [] {
        data::SimulatorOptions o;
        o.users = 60;
        o.songs = 150;
        o.artists = 20;
        o.genres = 4;
        o.requests = 360;
        o.min_list_length = 6;
        o.max_list_length = 8;
        o.max_history = 6;
        o.vocabulary = 300;
        o.valid_fraction = 0.15;
        o.test_fraction = 0.05;
        TempDir dir("sim");
        data::write_jdsearch_files(data::simulate_music_search(o), dir.path());
        return data::load_jdsearch_dir(dir.path().string());
    }();
    return dataset;
}

/// tiny, with tables as large as the simulated vocabularies.
PianoConfig simulated_config() {
    return piano::sized_to_data(PianoConfig::tiny(), simulated().vocab, simulated().dense_dim);
}

std::vector<piano::Matrix<float>> parameter_values(const piano::Reranker<float>& model) {
    std::vector<piano::Matrix<float>> values;
    for (const auto& [name, p] : model.named_parameters()) values.push_back(p.value());
    return values;
}

}  // namespace

TEST_CASE("training on simulated music search lowers the loss and logs every epoch", "[train]") {
    const auto& dataset = simulated();
    REQUIRE(dataset.train.size() > 200);
    REQUIRE_FALSE(dataset.valid.empty());
    auto model = piano::make_model<float>("piano", simulated_config());
    TrainOptions options = quiet_options();
    options.epochs = 4;
    options.patience = 0;
    std::ostringstream log;
    const piano::TrainResult result = piano::train(*model, dataset.train, dataset.valid, options, log);

    REQUIRE(result.epochs.size() == 4);
    const std::size_t batches = (dataset.train.size() + 15) / 16;
    for (std::size_t e = 0; e < 4; ++e) {
        const piano::EpochRecord& r = result.epochs[e];
        CHECK(r.epoch == static_cast<int>(e + 1));
        CHECK(r.steps == static_cast<long>((e + 1) * batches));
        CHECK(std::isfinite(r.train_loss));
        CHECK(std::isfinite(r.terms[0]));  // ctr
        CHECK(std::isfinite(r.terms[1]));  // ctcvr
        CHECK(std::isfinite(r.terms[2]));  // list
        CHECK(std::isnan(r.terms[3]));     // listwise is off in tiny()
        CHECK(r.valid.requests == dataset.valid.size());
    }
    const std::string text = log.str();
    INFO(text);
    CHECK(result.epochs[3].train_loss < 0.9 * result.epochs[0].train_loss);
    CHECK(result.best_checkpoint.empty());  // no out_dir, no files
    // Plain lines (the log is not a terminal): one per epoch, no carriage return.
    CHECK(text.find('\r') == std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') >= 4);
    CHECK(text.find("epoch 4/4") != std::string::npos);
}

TEST_CASE("the same seed and options give bit-identical parameters", "[train]") {
    const auto train = planted(96, 11);
    const auto valid = planted(24, 12);
    PianoConfig config = planted_config();
    config.dropout = 0.1;  // dropout draws must repeat too
    TrainOptions options = quiet_options();
    options.epochs = 2;
    options.schedule = "cosine";
    options.warmup_steps = 3;
    std::ostringstream log;

    auto a = piano::make_model<float>("piano", config);
    auto b = piano::make_model<float>("piano", config);
    piano::train(*a, train, valid, options, log);
    piano::train(*b, train, valid, options, log);
    CHECK(parameter_values(*a) == parameter_values(*b));

    options.seed = 2;  // another batch order: another model
    auto c = piano::make_model<float>("piano", config);
    piano::train(*c, train, valid, options, log);
    CHECK_FALSE(parameter_values(*a) == parameter_values(*c));
}

TEST_CASE("early stopping keeps the best epoch, in the model and in best.ckpt", "[train]") {
    const auto train = planted(64, 21);
    // With patience 1 the first epoch that does not beat the best stops the run; eight
    // validation requests give NDCG few values to take, so that comes well before epoch 25.
    const std::vector<data::Request> valid(train.begin(), train.begin() + 8);
    TempDir dir("early");
    TrainOptions options = quiet_options();
    options.epochs = 25;
    options.patience = 1;
    options.early_stopping_metric = "ndcg@5";
    options.out_dir = dir.path().string();
    std::ostringstream log;
    auto model = piano::make_model<float>("piano", planted_config());
    const piano::TrainResult result = piano::train(*model, train, valid, options, log);
    INFO(log.str());

    REQUIRE(result.stopped_early);
    const int last = result.epochs.back().epoch;
    CHECK(last < 25);
    CHECK(result.best_epoch == last - 1);  // patience 1
    CHECK(result.best_metric == result.epochs[static_cast<std::size_t>(result.best_epoch - 1)].valid.ndcg_5);
    CHECK(result.epochs.back().valid.ndcg_5 <= result.best_metric);
    CHECK(log.str().find("early stopping") != std::string::npos);

    // The model holds exactly the parameters a run of best_epoch epochs ends with (an
    // empty validation split keeps the last epoch), not those of the last epoch run.
    TrainOptions plain = options;
    plain.out_dir.clear();
    plain.patience = 0;
    plain.epochs = result.best_epoch;
    auto at_best = piano::make_model<float>("piano", planted_config());
    piano::train(*at_best, train, {}, plain, log);
    CHECK(parameter_values(*model) == parameter_values(*at_best));
    plain.epochs = last;
    auto at_last = piano::make_model<float>("piano", planted_config());
    piano::train(*at_last, train, {}, plain, log);
    CHECK_FALSE(parameter_values(*model) == parameter_values(*at_last));
    // Re-scoring the returned model gives the best epoch's figure.
    CHECK(piano::metrics::evaluate(piano::predict(*model, valid)).ndcg_5 == result.best_metric);

    // best.ckpt: the same parameters, the config with the model's kind, optimizer state.
    REQUIRE(result.best_checkpoint == (dir / "best.ckpt").string());
    const auto checkpoint = piano::load_checkpoint<float>(result.best_checkpoint);
    CHECK(checkpoint.epoch == result.best_epoch);
    CHECK(checkpoint.step == result.epochs[static_cast<std::size_t>(result.best_epoch - 1)].steps);
    CHECK(checkpoint.config.at("model") == "piano");
    CHECK(checkpoint.optimizer_name == "adam");
    REQUIRE(checkpoint.optimizer.has_value());
    CHECK(checkpoint.optimizer->step == checkpoint.step);
    auto reloaded = piano::make_model<float>(checkpoint.config.at("model"), planted_config());
    piano::restore(*reloaded, checkpoint);
    CHECK(parameter_values(*reloaded) == parameter_values(*model));

    // train_log.csv: the header, then one row per epoch run, each with every column.
    const auto lines = lines_of(dir / "train_log.csv");
    REQUIRE(lines.size() == result.epochs.size() + 1);
    CHECK(lines[0] ==
          "epoch,steps,train_loss,loss_ctr,loss_ctcvr,loss_list,loss_listwise,auc_ctr,auc_ctcvr,auc_cvr,gauc_ctr,"
          "ndcg@5,ndcg@10,map@10,clicks@10,conv@10,list_auc_ctr,list_auc_cvr,seconds");
    for (std::size_t e = 1; e < lines.size(); ++e) {
        CHECK(lines[e].rfind(std::to_string(e) + "," + std::to_string(result.epochs[e - 1].steps) + ",", 0) == 0);
        CHECK(count_fields(lines[e]) == count_fields(lines[0]));
    }
}

TEST_CASE("a loss that turns NaN stops training with the step, the epoch and the term", "[train]") {
    const auto train = planted(48, 31);
    TrainOptions options = quiet_options();
    options.epochs = 2;
    std::ostringstream log;

    SECTION("a NaN parameter of the CVR head: the ctcvr term, at the first step") {
        auto model = piano::make_model<float>("piano", planted_config());
        for (auto& [name, p] : model->named_parameters()) {
            if (name.rfind("item_cvr.", 0) == 0) p.mutable_value().setConstant(std::numeric_limits<float>::quiet_NaN());
        }
        CHECK_THROWS_AS(piano::train(*model, train, {}, options, log), piano::TrainingError);
        CHECK_THROWS_WITH(piano::train(*model, train, {}, options, log),
                          "step 1 (epoch 1): loss term 'ctcvr' is nan");
    }
    SECTION("a NaN input feature: the ctr term, at the step of its batch, parameters untouched") {
        PianoConfig config = planted_config();
        config.dense_features = 1;
        auto with_dense = train;
        for (auto& r : with_dense)
            for (auto& c : r.candidates) c.dense = {0.5f};
        const std::size_t bad = 37;
        with_dense[bad].candidates[2].dense[0] = std::numeric_limits<float>::quiet_NaN();
        // The step whose batch holds request `bad` in epoch 1's seeded order.
        const data::Batcher batcher(with_dense, options.batch_size, options.seed);
        const auto& order = batcher.order();
        const auto position = static_cast<std::size_t>(std::find(order.begin(), order.end(), bad) - order.begin());
        const std::size_t step = position / options.batch_size + 1;

        auto model = piano::make_model<float>("piano", config);
        CHECK_THROWS_WITH(piano::train(*model, with_dense, {}, options, log),
                          "step " + std::to_string(step) + " (epoch 1): loss term 'ctr' is nan");
        for (const auto& [name, p] : model->named_parameters()) {
            INFO(name);
            CHECK(p.value().allFinite());
        }
    }
}

TEST_CASE("options are checked before any training", "[train]") {
    const auto train = planted(8, 41);
    auto model = piano::make_model<float>("piano", planted_config());
    std::ostringstream log;
    auto fails_with = [&](const TrainOptions& o, const std::string& text) {
        CHECK_THROWS_AS(piano::train(*model, train, train, o, log), piano::ConfigError);
        CHECK_THROWS_WITH(piano::train(*model, train, train, o, log), Catch::Contains(text));
    };
    TrainOptions o = quiet_options();
    o.early_stopping_metric = "ndcg@7";
    fails_with(o, "ndcg@10");  // the error lists the known columns
    o = quiet_options();
    o.optimizer = "rmsprop";
    fails_with(o, "rmsprop");
    o = quiet_options();
    o.schedule = "step";
    fails_with(o, "cosine");
    o = quiet_options();
    o.warmup_steps = 5;  // 8 requests, batch 16: one step per epoch, 5 in all
    fails_with(o, "warmup_steps");
    o = quiet_options();
    o.threads = -1;
    fails_with(o, "threads");
    CHECK_THROWS_AS(piano::train(*model, {}, train, quiet_options(), log), piano::ConfigError);
    // A metric the model cannot have: the DNN predicts no CVR.
    auto dnn = piano::make_model<float>("dnn", planted_config());
    o = quiet_options();
    o.epochs = 1;
    o.early_stopping_metric = "auc_cvr";
    CHECK_THROWS_WITH(piano::train(*dnn, train, train, o, log), Catch::Contains("'auc_cvr' is undefined"));
}

TEST_CASE("train leaves OpenMP's thread count as the caller set it, unless asked", "[train][threads]") {
#ifdef _OPENMP
    const auto train = planted(8, 43);
    auto model = piano::make_model<float>("piano", planted_config());
    std::ostringstream log;
    TrainOptions options = quiet_options();
    options.epochs = 1;
    REQUIRE(options.threads == 0);  // the default: do not touch
    const int before = omp_get_max_threads();
    omp_set_num_threads(3);
    piano::train(*model, train, {}, options, log);
    CHECK(omp_get_max_threads() == 3);
    options.threads = 2;  // an explicit count is applied
    piano::train(*model, train, {}, options, log);
    CHECK(omp_get_max_threads() == 2);
    omp_set_num_threads(before);
#else
    WARN("built without OpenMP: train's threads option has nothing to leave alone");
#endif
}

TEST_CASE("PIANO learns a query-history effect that PIANO without QDIR cannot", "[train][planted]") {
    const auto train = planted(640, 101);
    const auto valid = planted(160, 102);
    const auto test = planted(160, 103);
    TrainOptions options = quiet_options();
    options.epochs = 18;
    options.learning_rate = 1e-2;
    options.patience = 0;
    options.early_stopping_metric = "ndcg@5";
    std::ostringstream log;

    // Both models: the same data, seed, options and config but the QDIR switch; scored on
    // requests neither training nor model selection saw.
    auto run = [&](const std::string& name) {
        auto model = piano::make_model<float>(name, planted_config());
        piano::train(*model, train, valid, options, log);
        return piano::metrics::evaluate(piano::predict(*model, test));
    };
    const piano::metrics::MetricTable with_qdir = run("piano");
    const piano::metrics::MetricTable without_qdir = run("piano-noqdir");
    INFO(log.str());
    INFO(piano::metrics::markdown_table({{"piano", with_qdir}, {"piano-noqdir", without_qdir}}));
    // Without QDIR the best a model can do is the K = 4 history artists in a random order
    // above the distractors: NDCG@5 = (1 + 1/log2 3 + 1/2 + 1/log2 5) / 4 = 0.64, GAUC
    // (1 + 6/7 + 5/7 + 4/7) / 4 = 0.79. Reading the history by query, PIANO can reach 1.
    CHECK(with_qdir.ndcg_5 >= 0.9);
    CHECK(with_qdir.gauc_ctr >= 0.95);
    CHECK(without_qdir.ndcg_5 <= 0.7);
    CHECK(with_qdir.ndcg_5 >= without_qdir.ndcg_5 + 0.2);
}
