// PIANO and its baselines: shapes, gradients of the whole model, and inference.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>

#include <set>

using piano::Index;
using piano::PianoConfig;
using piano::Tensor;
namespace data = piano::data;

namespace {

// A request as a caller builds one by hand: rows already mapped by the vocabularies.
data::Request make_request(int seed, std::size_t list_length, std::size_t history_length) {
    data::Request r;
    r.query.push_back(3);
    r.query.push_back(7);
    for (std::size_t j = 0; j < history_length; ++j) {
        data::HistoryEvent e;
        e.has_query = j % 3 != 2;  // every third event is a query-less behaviour
        if (e.has_query) e.query.push_back(static_cast<data::Row>(1 + (seed + j) % 9));
        e.fields.item = static_cast<data::Row>(1 + (seed * 7 + j * 3) % 40);
        e.fields.brand = static_cast<data::Row>(1 + j % 5);
        e.fields.cate1 = static_cast<data::Row>(1 + j % 4);
        e.type = static_cast<data::Behavior>(j % data::kBehaviorCount);
        e.gap = static_cast<std::int64_t>(j * 100);
        r.history.push_back(e);
    }
    for (std::size_t i = 0; i < list_length; ++i) {
        data::Candidate c;
        c.fields.item = static_cast<data::Row>(1 + (seed * 11 + i * 5) % 40);
        c.fields.brand = static_cast<data::Row>(1 + i % 5);
        c.fields.cate1 = static_cast<data::Row>(1 + i % 4);
        c.fields.cate2 = static_cast<data::Row>(5 + i % 3);
        c.fields.shop = static_cast<data::Row>(1 + i % 2);
        c.click = (i + seed) % 3 == 0;
        c.conv = c.click && i % 2 == 0;
        c.label = c.conv ? 3.f : static_cast<float>(c.click);
        r.candidates.push_back(c);
    }
    return r;
}

PianoConfig micro_config() {
    PianoConfig c = PianoConfig::tiny();
    c.d_model = 8;
    c.heads = 2;
    c.ffn_dim = 16;
    c.term_rows = 12;
    c.item_rows = 45;
    c.brand_rows = 8;
    c.category_rows = 10;
    c.shop_rows = 4;
    c.max_positions = 8;
    c.gap_buckets = 6;
    c.listwise_loss = true;
    return c;
}

}  // namespace

TEST_CASE("every model maps a ragged batch to logits of the right shapes", "[model]") {
    std::vector<data::Request> requests = {make_request(1, 5, 4), make_request(2, 1, 0), make_request(3, 7, 9)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    for (const auto& name : piano::model_names()) {
        DYNAMIC_SECTION(name) {
            auto model = piano::make_model<float>(name, PianoConfig::tiny());
            CHECK(model->kind() == name);
            const auto out = model->forward(batch);
            CHECK(out.ctr_logit.rows() == 13);
            CHECK(out.ctr_logit.cols() == 1);
            CHECK(out.ctr_logit.value().allFinite());
            if (out.cvr_logit.defined()) CHECK(out.cvr_logit.rows() == 13);
            const bool has_list = name == "piano" || name == "piano-noqdir";
            CHECK(out.list_ctr_logit.defined() == has_list);
            if (has_list) CHECK(out.list_ctr_logit.rows() == 3);
        }
    }
}

TEST_CASE("the whole model's gradient matches finite differences", "[model][gradcheck]") {
    std::vector<data::Request> requests = {make_request(1, 4, 3), make_request(2, 1, 0), make_request(3, 3, 5)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    for (const auto& name : piano::model_names()) {
        for (auto weighting : {piano::LossWeighting::fixed, piano::LossWeighting::uncertainty}) {
            if (weighting == piano::LossWeighting::uncertainty && name != "piano") continue;
            DYNAMIC_SECTION(name << (weighting == piano::LossWeighting::fixed ? " fixed" : " uncertainty")) {
                PianoConfig config = micro_config();
                config.weighting = weighting;
                auto model = piano::make_model<double>(name, config);
                std::vector<Tensor<double>> params = model->parameters();
                auto loss = [&](const std::vector<Tensor<double>>&) {
                    const auto out = model->forward(batch);
                    return piano::multi_task_loss(out, batch, model->config(), model->loss_log_variances()).total;
                };
                piano::GradCheckOptions options;
                options.max_entries_per_input = 6;
                const auto result = piano::check_gradients(loss, params, options);
                INFO(result.message);
                CHECK(result.ok);
            }
        }
    }
}

TEST_CASE("rerank returns a permutation and calibrated probabilities without building a graph", "[model][rerank]") {
    // One user, one query, a history of four events, a first-stage list of six songs.
    const data::Request request = make_request(5, 6, 4);
    auto model = piano::make_model<float>("piano", PianoConfig::tiny());
    model->train();
    const piano::RerankResult result = model->rerank(request);
    CHECK(model->is_training());  // the mode is restored

    REQUIRE(result.order.size() == 6);
    CHECK(std::set<std::size_t>(result.order.begin(), result.order.end()).size() == 6);
    for (std::size_t k = 0; k + 1 < result.order.size(); ++k) {
        CHECK(result.score[result.order[k]] >= result.score[result.order[k + 1]]);
    }
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(result.p_ctr[i] > 0.0);
        CHECK(result.p_ctr[i] < 1.0);
        CHECK(result.p_ctcvr[i] == Approx(result.p_ctr[i] * result.p_cvr[i]));
        // s_i = (1-λ) log pCTR + λ log pCTCVR with λ = 0.5
        CHECK(result.score[i] == Approx(0.5 * std::log(result.p_ctr[i]) + 0.5 * std::log(result.p_ctcvr[i])));
    }
    CHECK(result.p_list_ctr > 0.0);
    CHECK(result.p_list_cvr < 1.0);
    for (const auto& [name, p] : model->named_parameters()) CHECK_FALSE(p.has_grad());
}

TEST_CASE("QDIR returns its attention over the null slot and the history", "[model][qdir]") {
    std::vector<data::Request> requests = {make_request(1, 3, 4), make_request(2, 2, 0)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    piano::PianoModel<float> model(PianoConfig::tiny());
    const auto out = model.forward(batch, /*want_attention=*/true);
    REQUIRE(out.qdir_weights.segments.size() == 2);
    CHECK(out.qdir_weights.segments[0].cols() == 5);  // null slot + 4 events
    CHECK(out.qdir_weights.segments[1].cols() == 1);  // only the null slot
    CHECK(out.qdir_weights.segments[1].isOnes());
    for (Index h = 0; h < out.qdir_weights.heads; ++h) {
        CHECK(out.qdir_weights.head(0, h).sum() == Approx(1.f));
    }
}

TEST_CASE("the product BCE equals the naive formula where that is accurate", "[model][loss]") {
    piano::Matrix<double> a(3, 1), b(3, 1), y(3, 1);
    a << 0.3, -1.2, 2.0;
    b << -0.5, 0.7, 1.5;
    y << 1, 0, 1;
    const auto loss = piano::product_bce_with_logits(Tensor<double>(a), Tensor<double>(b), y).value();
    for (Index i = 0; i < 3; ++i) {
        const double p = 1 / (1 + std::exp(-a(i, 0))) / (1 + std::exp(-b(i, 0)));
        CHECK(loss(i, 0) == Approx(-(y(i, 0) * std::log(p) + (1 - y(i, 0)) * std::log(1 - p))));
    }
    // Far in the tails the naive form overflows; the logit form stays finite.
    piano::Matrix<float> big(1, 1);
    big << 200.f;
    const auto tail = piano::product_bce_with_logits(Tensor<float>(big), Tensor<float>(big), piano::Matrix<float>(piano::Matrix<float>::Zero(1, 1)));
    CHECK(std::isfinite(tail.item()));
    // -log(1 - σ(a)σ(b)) = log(1 + e^a + e^b) - 2 softplus(a) ≈ a - log 2 at a = b = 200.
    CHECK(tail.item() == Approx(200.f - std::log(2.f)).epsilon(1e-5));
}

TEST_CASE("an unknown model name lists the known ones", "[model][errors]") {
    CHECK_THROWS_AS(piano::make_model<float>("gpt", PianoConfig::tiny()), piano::ConfigError);
    CHECK_THROWS_WITH(piano::make_model<float>("gpt", PianoConfig::tiny()),
                      Catch::Contains("gpt") && Catch::Contains("piano-noqdir"));
}
