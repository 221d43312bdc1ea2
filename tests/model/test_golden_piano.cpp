// The whole PIANO model and its multi-task loss against the PyTorch twin
// (tests/golden/piano_torch.py, fixture written by tests/golden/golden_piano.py): the
// outputs, the QDIR attention, every loss term and every parameter's gradient, in double.
#include <catch2/catch.hpp>

#include <piano/model/losses.hpp>
#include <piano/model/piano_model.hpp>

#include <support/golden.hpp>

#include <map>
#include <sstream>
#include <string>
#include <vector>

using piano::Index;
using piano::Matrix;
using piano::testing::GoldenFixture;
using piano::testing::kGoldenTolerance;
using piano::testing::max_relative_difference;
namespace data = piano::data;

namespace {

std::vector<Index> ints(const Matrix<double>& m) {
    std::vector<Index> out(static_cast<std::size_t>(m.size()));
    for (Index i = 0; i < m.size(); ++i) out[static_cast<std::size_t>(i)] = static_cast<Index>(m.data()[i]);
    return out;
}

// The config as PianoConfig::from_map would read it from a file, so the test uses the
// values the fixture was made with rather than a copy that could drift.
piano::PianoConfig config_from(const GoldenFixture& fx) {
    const char* keys[] = {"d_model",        "heads",          "layers",      "ffn_dim",       "dropout",
                          "term_rows",      "item_rows",      "brand_rows",  "category_rows", "shop_rows",
                          "dense_features", "max_positions",  "gap_buckets", "use_qdir",      "use_ian",
                          "list_loss",      "detach_list_heads", "listwise_loss",  "lambda",      "weight_ctr",    "weight_ctcvr",
                          "weight_list",    "weight_listwise"};
    std::map<std::string, std::string> m;
    for (const char* key : keys) {
        std::ostringstream value;
        value.precision(17);
        value << fx[std::string("config.") + key](0, 0);
        m[key] = value.str();
    }
    m["position_model"] = piano::kPositionModelNames[static_cast<int>(fx["config.position_model"](0, 0))];
    m["query_match"] = "false";  // the twin is the paper's model; the query-match layer is ours
    return piano::PianoConfig::from_map(m);
}

data::ItemFields item_fields(const Matrix<double>& fields, Index column) {
    data::ItemFields f;
    for (int k = 0; k < data::ItemFields::kCount; ++k) f[k] = static_cast<data::Row>(fields(k, column));
    return f;
}

// The requests as a caller builds them, from the fixture's stacked arrays.
std::vector<data::Request> requests_from(const GoldenFixture& fx) {
    const auto query_offsets = ints(fx["batch.query_offsets"]), query_terms = ints(fx["batch.query_terms"]);
    const auto cand_offsets = ints(fx["batch.cand_offsets"]), click = ints(fx["batch.click"]),
               conv = ints(fx["batch.conv"]);
    const auto hist_offsets = ints(fx["batch.hist_offsets"]), hist_type = ints(fx["batch.hist_type"]),
               hist_gap = ints(fx["batch.hist_gap"]), hist_has_query = ints(fx["batch.hist_has_query"]),
               hist_query_offsets = ints(fx["batch.hist_query_offsets"]),
               hist_query_terms = ints(fx["batch.hist_query_terms"]);
    const Matrix<double>& cand_fields = fx["batch.cand_fields"];
    const Matrix<double>& hist_fields = fx["batch.hist_fields"];

    std::vector<data::Request> requests(query_offsets.size() - 1);
    for (std::size_t b = 0; b < requests.size(); ++b) {
        data::Request& r = requests[b];
        for (Index t = query_offsets[b]; t < query_offsets[b + 1]; ++t) {
            r.query.push_back(static_cast<data::Row>(query_terms[static_cast<std::size_t>(t)]));
        }
        for (Index e = hist_offsets[b]; e < hist_offsets[b + 1]; ++e) {
            const auto s = static_cast<std::size_t>(e);
            data::HistoryEvent event;
            event.has_query = hist_has_query[s] != 0;
            for (Index t = hist_query_offsets[s]; t < hist_query_offsets[s + 1]; ++t) {
                event.query.push_back(static_cast<data::Row>(hist_query_terms[static_cast<std::size_t>(t)]));
            }
            event.fields = item_fields(hist_fields, e);
            event.type = static_cast<data::Behavior>(hist_type[s]);
            event.gap = hist_gap[s];
            r.history.push_back(event);
        }
        for (Index i = cand_offsets[b]; i < cand_offsets[b + 1]; ++i) {
            const auto s = static_cast<std::size_t>(i);
            data::Candidate c;
            c.fields = item_fields(cand_fields, i);
            c.click = static_cast<int>(click[s]);
            c.conv = static_cast<int>(conv[s]);
            r.candidates.push_back(c);
        }
    }
    return requests;
}

}  // namespace

TEST_CASE("golden: PIANO forward, multi-task loss and every gradient match PyTorch", "[model][golden]") {
    const GoldenFixture fx(std::string(PIANO_TEST_FIXTURES) + "/golden/piano_full.txt");
    const piano::PianoConfig config = config_from(fx);
    const std::vector<data::Request> requests = requests_from(fx);
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    // make_batch stacks the requests back into the layout the twin was given.
    CHECK(batch.cand_offsets == ints(fx["batch.cand_offsets"]));
    CHECK(batch.cand_pos == ints(fx["batch.cand_pos"]));
    CHECK(batch.hist_query_offsets == ints(fx["batch.hist_query_offsets"]));

    piano::PianoModel<double> model(config);
    const auto params = model.named_parameters();
    // Equal counts and every C++ name present: the name sets are identical.
    REQUIRE(static_cast<double>(params.size()) == fx["param_count"](0, 0));
    for (auto [name, p] : params) {
        INFO("parameter " << name);
        REQUIRE(fx.has("param." + name));
        const Matrix<double>& value = fx["param." + name];
        REQUIRE(value.rows() == p.rows());
        REQUIRE(value.cols() == p.cols());
        p.mutable_value() = value;
    }

    const piano::ModelOutputs<double> out = model.forward(batch, /*want_attention=*/true);
    CHECK(max_relative_difference(out.ctr_logit.value(), fx["out.ctr_logit"]) < kGoldenTolerance);
    CHECK(max_relative_difference(out.cvr_logit.value(), fx["out.cvr_logit"]) < kGoldenTolerance);
    CHECK(max_relative_difference(out.list_ctr_logit.value(), fx["out.list_ctr_logit"]) < kGoldenTolerance);
    CHECK(max_relative_difference(out.list_cvr_logit.value(), fx["out.list_cvr_logit"]) < kGoldenTolerance);
    CHECK(max_relative_difference(out.exam_logit.value(), fx["out.exam_logit"]) < kGoldenTolerance);
    REQUIRE(out.qdir_weights.segments.size() == requests.size());
    for (std::size_t b = 0; b < requests.size(); ++b) {
        INFO("QDIR weights of request " << b);
        CHECK(max_relative_difference(out.qdir_weights.segments[b], fx["out.qdir_weights." + std::to_string(b)]) <
              kGoldenTolerance);
    }

    piano::LossBreakdown<double> loss = piano::multi_task_loss(out, batch, model.config(), model.loss_log_variances());
    for (int k = 0; k < piano::LossBreakdown<double>::kTerms; ++k) {
        const std::string name = piano::LossBreakdown<double>::kNames[k];
        INFO("loss term " << name);
        CHECK(max_relative_difference(Matrix<double>::Constant(1, 1, loss.terms[k]), fx["loss." + name]) <
              kGoldenTolerance);
    }
    CHECK(max_relative_difference(loss.total.value(), fx["loss.total"]) < kGoldenTolerance);

    loss.total.backward();
    for (const auto& [name, p] : params) {
        INFO("gradient of " << name);
        // A parameter the loss does not reach has no gradient, which means zero.
        const Matrix<double> grad = p.has_grad() ? p.grad() : Matrix<double>::Zero(p.rows(), p.cols());
        CHECK(max_relative_difference(grad, fx["grad." + name]) < kGoldenTolerance);
    }
}
