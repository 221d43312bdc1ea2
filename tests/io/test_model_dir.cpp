// The model folder (piano/io/model_dir.hpp, piano/train/fit.hpp) and the machine-readable
// rerank output (piano/io/rerank_output.hpp): one call trains into a folder, one loads it,
// a raw request of string ids is reranked, and every way a folder can be wrong is named.
#include <catch2/catch.hpp>

#include <piano/data/simulator.hpp>
#include <piano/io/model_dir.hpp>
#include <piano/io/rerank_output.hpp>
#include <piano/train/fit.hpp>

// After piano's headers: cereal's JSON archive configures rapidjson before including it.
#include <rapidjson/document.h>

#include <support/test_helpers.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace model_dir_test {

using piano::testing::TempDir;
namespace data = piano::data;

/// A simulated world written as JDsearch files and read back, with its raw test lines.
struct ServedWorld {
    TempDir dir{"model_dir_world"};
    data::JdsearchDataset dataset;
    std::vector<data::RawRequest> raw_test;  // test.txt's requests with their string ids
};

const ServedWorld& served_world() {
    static ServedWorld* const w = [] {
        auto* created = new ServedWorld;
        data::write_jdsearch_files(data::simulate_music_search(piano::testing::small_world()), created->dir.path());
        created->dataset = data::load_jdsearch_dir(created->dir.path().string());
        data::for_each_request((created->dir / "test.txt").string(),
                               [&](const data::RawRequest& raw) { created->raw_test.push_back(raw); });
        return created;
    }();
    return *w;
}

piano::TrainOptions quick_options(const std::string& out_dir) {
    piano::TrainOptions o;
    o.epochs = 1;
    o.batch_size = 32;
    o.progress = false;
    o.out_dir = out_dir;
    return o;
}

piano::FitResult<float> fit_into(const std::string& kind, const std::string& out_dir) {
    std::ostringstream log;
    return piano::fit<float>(kind, piano::PianoConfig::tiny(), served_world().dataset, quick_options(out_dir), log);
}

/// Every number of two answers, bit for bit.
void require_same(const std::vector<piano::RerankResult>& a, const std::vector<piano::RerankResult>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
        REQUIRE(a[k].order == b[k].order);
        REQUIRE(a[k].score == b[k].score);
        REQUIRE(a[k].p_ctr == b[k].p_ctr);
        REQUIRE(a[k].p_ctcvr == b[k].p_ctcvr);
    }
}

std::string what_of_load(const std::filesystem::path& dir, const std::string& kind = "") {
    try {
        (void)piano::load_model_dir<float>(dir, kind);
    } catch (const piano::CheckpointError& e) {
        return e.what();
    }
    return "(loaded without an error)";
}

void replace_line(const std::filesystem::path& file, const std::string& key, const std::string& value) {
    std::string text;
    for (const std::string& line : piano::testing::lines_of(file))
        text += (line.compare(0, key.size() + 3, key + " = ") == 0 ? key + " = " + value : line) + "\n";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace model_dir_test

using namespace model_dir_test;

TEST_CASE("fit writes a model folder that load_model_dir reads back to the same predictions", "[model_dir]") {
    TempDir out("model_dir_fit");
    const piano::FitResult<float> fitted = fit_into("piano", out.path().string());
    for (const char* f : {"model.txt", "best.ckpt", "products.txt", "data.txt", "train_log.csv", "vocab/items.vocab"})
        REQUIRE(std::filesystem::exists(out / f));
    REQUIRE(piano::testing::lines_of(out / "model.txt").front() == "piano-model 1");

    const piano::TrainedModel<float> loaded = piano::load_model_dir<float>(out.path(), "piano");
    CHECK(loaded.kind() == "piano");
    CHECK(loaded.written_by == piano::kVersion);
    CHECK(!loaded.model->is_training());
    const auto& test = served_world().dataset.test;
    require_same(loaded.model->rerank(data::make_batch(test, 0, test.size())),
                 fitted.trained.model->rerank(data::make_batch(test, 0, test.size())));

    // The raw test lines through the folder's vocabularies and products are the loader's requests.
    const std::vector<piano::RerankResult> raw = loaded.rerank(served_world().raw_test);
    require_same(raw, loaded.model->rerank(data::make_batch(test, 0, test.size())));
}

TEST_CASE("a raw request of string ids is reranked and its unknown ids are counted, never fatal", "[model_dir]") {
    TempDir out("model_dir_raw");
    const piano::TrainedModel<float> model = fit_into("din", out.path().string()).trained;
    data::RawRequest request = served_world().raw_test.front();
    const std::size_t L = request.candidates.size();
    request.query = {"never-seen-term"};
    request.candidates.push_back({"never-seen-song", 0.0f, {}});
    for (auto& c : request.candidates) c.label = 0.0f;  // new traffic: no labels

    data::IdCounts counts;
    const piano::RerankResult r = model.rerank(request, &counts);
    REQUIRE(r.order.size() == L + 1);
    std::vector<std::size_t> sorted = r.order;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i <= L; ++i) CHECK(sorted[i] == i);
    CHECK(counts.unknown[static_cast<std::size_t>(data::Table::term)] == 1);
    CHECK(counts.unknown[static_cast<std::size_t>(data::Table::item)] >= 1);
    CHECK(counts.total_unknown() < counts.total_looked_up());
    CHECK(counts.summary().find("ids unknown (terms 1 of") != std::string::npos);
}

TEST_CASE("rerank of a loaded model gives the same answers from several threads at once", "[model_dir]") {
    TempDir out("model_dir_threads");
    const piano::TrainedModel<float> model = fit_into("piano", out.path().string()).trained;
    const std::vector<piano::RerankResult> expected = model.rerank(served_world().raw_test);
    std::vector<std::vector<piano::RerankResult>> answers(4);
    std::vector<std::thread> threads;
    for (auto& answer : answers)
        threads.emplace_back([&model, &answer] {
            for (int repeat = 0; repeat < 3; ++repeat) answer = model.rerank(served_world().raw_test);
        });
    for (auto& t : threads) t.join();
    for (const auto& answer : answers) require_same(answer, expected);
}

TEST_CASE("save_model_dir saves a model trained by hand as a complete folder", "[model_dir]") {
    TempDir out("model_dir_save");
    const piano::TrainedModel<float> fitted = fit_into("prm", "").trained;
    REQUIRE(!std::filesystem::exists(out / "model.txt"));
    piano::save_model_dir(out.path(), *fitted.model, fitted.data);
    const piano::TrainedModel<float> loaded = piano::load_model_dir<float>(out.path());
    CHECK(loaded.kind() == "prm");
    require_same(loaded.rerank(served_world().raw_test), fitted.rerank(served_world().raw_test));
    // Only products with an id the model knows are kept, and they read back unchanged.
    CHECK(!loaded.data.products.empty());
    CHECK(loaded.data.products.size() <= served_world().dataset.products.size());
    for (const auto& [wid, p] : loaded.data.products) {
        const auto original = served_world().dataset.products.find(wid);
        REQUIRE(original != served_world().dataset.products.end());
        CHECK(original->second.brand == p.brand);
        CHECK(original->second.cate == p.cate);
        CHECK(original->second.shop == p.shop);
    }
}

TEST_CASE("load_model_dir names what is wrong with a folder", "[model_dir]") {
    TempDir out("model_dir_errors");
    const std::filesystem::path dir = out / "model";
    (void)fit_into("dnn", dir.string());

    CHECK_THAT(what_of_load(out / "absent"), Catch::Contains("model folder '") && Catch::Contains("does not exist"));
    CHECK_THAT(what_of_load(dir / "best.ckpt"), Catch::Contains("is a file, expected the folder"));
    CHECK_THAT(what_of_load(dir, "piano"), Catch::Contains("holds a 'dnn' model, expected 'piano'"));
    try {
        (void)piano::load_model_dir<double>(dir);
        FAIL("a float model loaded as double");
    } catch (const piano::CheckpointError& e) {
        CHECK_THAT(e.what(), Catch::Contains("holds a float model, loaded as double"));
    }

    replace_line(dir / "model.txt", "piano_version", "9.9.0");
    CHECK_THAT(what_of_load(dir), Catch::Contains("was written by piano 9.9.0; this is piano " + std::string(piano::kVersion)));
    replace_line(dir / "model.txt", "piano_version", piano::kVersion);
    replace_line(dir / "model.txt", "kind", "din");
    CHECK_THAT(what_of_load(dir), Catch::Contains("best.ckpt holds a 'dnn' model, model.txt says 'din'"));
    replace_line(dir / "model.txt", "kind", "dnn");
    REQUIRE(what_of_load(dir) == "(loaded without an error)");

    // A truncated checkpoint, then a folder whose writing never finished (no model.txt).
    const std::string bytes = piano::testing::read_bytes(dir / "best.ckpt");
    std::ofstream(dir / "best.ckpt", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    CHECK_THAT(what_of_load(dir), Catch::Contains("load_checkpoint '"));
    std::filesystem::remove(dir / "model.txt");
    CHECK_THAT(what_of_load(dir), Catch::Contains("has no model.txt: it is not a model folder, or its writing did not finish"));
    std::ofstream(dir / "model.txt", std::ios::binary) << "piano-model 2\n";
    CHECK_THAT(what_of_load(dir), Catch::Contains("model folder format 2, this build (piano"));
}

TEST_CASE("fit refuses an unknown model kind before writing anything", "[model_dir]") {
    TempDir out("model_dir_kind");
    std::ostringstream log;
    CHECK_THROWS_AS(piano::fit<float>("transformer", piano::PianoConfig::tiny(), served_world().dataset,
                                      quick_options((out / "m").string()), log),
                    piano::ConfigError);
    CHECK(!std::filesystem::exists(out / "m"));
}

TEST_CASE("rerank output: jsonl parses back to the result and tsv and long hold the same numbers", "[model_dir]") {
    TempDir out("model_dir_output");
    const piano::TrainedModel<float> dnn = fit_into("dnn", out.path().string()).trained;  // no CVR, no list heads
    const data::RawRequest& request = served_world().raw_test.front();
    std::vector<std::string> wids;
    for (const auto& c : request.candidates) wids.push_back(c.item);
    wids.front() = "quote\"and\\slash";  // escaped in JSON
    const piano::RerankResult r = dnn.rerank(request);

    std::ostringstream jsonl;
    piano::write_rerank(jsonl, piano::RerankFormat::jsonl, 7, wids, r);
    const std::string text = jsonl.str();
    REQUIRE(text.back() == '\n');
    REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    REQUIRE(!doc.HasParseError());
    CHECK(doc["line"].GetInt() == 7);
    CHECK(doc["p_list_ctr"].IsNull());  // the DNN has no list heads
    const auto& candidates = doc["candidates"];
    REQUIRE(candidates.Size() == r.order.size());
    for (rapidjson::SizeType rank = 0; rank < candidates.Size(); ++rank) {
        const auto& c = candidates[rank];
        const std::size_t i = r.order[rank];
        CHECK(c["rank"].GetUint() == rank + 1);
        CHECK(c["index"].GetUint() == i);
        CHECK(c["wid"].GetString() == wids[i]);
        CHECK(c["score"].GetDouble() == Approx(r.score[i]).epsilon(1e-8));
        CHECK(c["p_ctr"].GetDouble() == Approx(r.p_ctr[i]).epsilon(1e-8));
        CHECK(c["p_cvr"].IsNull());
    }

    std::ostringstream tsv, long_table;
    piano::write_rerank(tsv, piano::RerankFormat::tsv, 7, wids, r);
    piano::write_rerank(long_table, piano::RerankFormat::long_table, 7, wids, r);
    const std::vector<std::string> tsv_fields = piano::testing::split_tabs(tsv.str().substr(0, tsv.str().size() - 1));
    REQUIRE(tsv_fields.size() == 9);
    CHECK(piano::rerank_header(piano::RerankFormat::tsv).substr(0, 5) == "line\t");
    CHECK(tsv_fields[0] == "7");
    CHECK(tsv_fields[1].empty());  // no list heads
    CHECK(tsv_fields[7].empty());  // no CVR head: p_cvr is empty, not a row of commas
    std::istringstream rows(long_table.str());
    std::string row, wid_list;
    std::size_t n = 0;
    while (std::getline(rows, row)) {
        const std::vector<std::string> f = piano::testing::split_tabs(row);
        REQUIRE(f.size() == 10);
        CHECK(f[1] == std::to_string(n + 1));
        wid_list += (n++ == 0 ? "" : ",") + f[3];
    }
    CHECK(n == r.order.size());
    CHECK(wid_list == tsv_fields[3]);

    CHECK_THROWS_AS(piano::write_rerank(tsv, piano::RerankFormat::tsv, 7, {"only-one"}, r), piano::ShapeError);
    CHECK_THROWS_AS(piano::rerank_format_from_string("csv"), piano::ConfigError);
}
