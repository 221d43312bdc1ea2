// PIANO and its baselines: shapes, gradients of the whole model, and inference.
#include <catch2/catch.hpp>

#include <piano/core/gradcheck.hpp>
#include <piano/model/explain.hpp>
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
    c.detach_list_heads = false;  // the list loss's gradient reaches every parameter
    return c;
}

// The multi-task loss of `model` on `batch` against finite differences, every parameter
// (6 entries of each).
piano::GradCheckResult whole_model_gradcheck(piano::Reranker<double>& model, const data::Batch& batch) {
    auto loss = [&](const std::vector<Tensor<double>>&) {
        const auto out = model.forward(batch);
        return piano::multi_task_loss(out, batch, model.config(), model.loss_log_variances()).total;
    };
    piano::GradCheckOptions options;
    options.max_entries_per_input = 6;
    return piano::check_gradients(loss, model.parameters(), options);
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
        for (auto weighting : {piano::LossWeighting::fixed, piano::LossWeighting::uncertainty})
        for (auto position : {piano::PositionModel::pal, piano::PositionModel::logit, piano::PositionModel::none}) {
            if (weighting == piano::LossWeighting::uncertainty && name != "piano") continue;
            if (position != piano::PositionModel::pal && name != "piano" && name != "prm") continue;
            DYNAMIC_SECTION(name << (weighting == piano::LossWeighting::fixed ? " fixed " : " uncertainty ")
                                 << piano::kPositionModelNames[static_cast<int>(position)]) {
                PianoConfig config = micro_config();
                config.weighting = weighting;
                config.position_model = position;
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

TEST_CASE("detached list heads: the list loss trains the list heads and nothing else", "[model][loss]") {
    std::vector<data::Request> requests = {make_request(1, 4, 3), make_request(2, 2, 0)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    PianoConfig config = micro_config();
    config.detach_list_heads = true;
    auto gradients = [&](bool with_list_loss) {
        PianoConfig c = config;
        c.list_loss = with_list_loss;
        auto model = piano::make_model<double>("piano", c);
        const auto out = model->forward(batch);
        piano::multi_task_loss(out, batch, model->config(), model->loss_log_variances()).total.backward();
        std::vector<std::pair<std::string, piano::Matrix<double>>> grads;
        for (const auto& [name, p] : model->named_parameters())
            grads.emplace_back(name, p.has_grad() ? p.grad() : piano::Matrix<double>::Zero(p.rows(), p.cols()));
        return grads;
    };
    const auto with = gradients(true), without = gradients(false);
    REQUIRE(with.size() == without.size());
    bool list_heads_learn = false;
    for (std::size_t k = 0; k < with.size(); ++k) {
        INFO("parameter " << with[k].first);
        const bool list_head = with[k].first.rfind("list_", 0) == 0;
        if (list_head) list_heads_learn = list_heads_learn || with[k].second.norm() > 0;
        else CHECK((with[k].second - without[k].second).norm() == Approx(0.0).margin(1e-12));
    }
    CHECK(list_heads_learn);
}

TEST_CASE("PIANO with candidate attention: its gradient matches finite differences", "[model][gradcheck]") {
    std::vector<data::Request> requests = {make_request(1, 4, 3), make_request(2, 2, 0), make_request(3, 3, 5)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    PianoConfig config = micro_config();
    config.candidate_attention = true;
    auto model = piano::make_model<double>("piano", config);
    bool has_target_attention = false;
    for (const auto& [name, p] : model->named_parameters())
        has_target_attention = has_target_attention || name.rfind("target_attention.", 0) == 0;
    CHECK(has_target_attention);
    const auto result = whole_model_gradcheck(*model, batch);
    INFO(result.message);
    CHECK(result.ok);
    PianoConfig without = config;
    without.candidate_attention = false;
    CHECK(piano::make_model<double>("piano", without)->parameter_count() < model->parameter_count());
}

TEST_CASE("history_match and query_match: every model reads them, and PIANO's gradient matches finite differences",
          "[model][gradcheck]") {
    std::vector<data::Request> requests = {make_request(1, 4, 3), make_request(2, 2, 0), make_request(3, 3, 5)};
    for (data::Request& r : requests) {
        for (std::size_t i = 0; i < r.candidates.size(); ++i) r.candidates[i].query_match = {0.5f, i % 2 ? 1.0f : 0.0f};
    }
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    struct Option {
        bool PianoConfig::*flag;
        const char* layer;  // its Linear's name, then ".weight" and ".bias"
        Index inputs;
    };
    for (const Option option : {Option{&PianoConfig::history_match, "features.match.", data::kHistoryMatchFeatures},
                                Option{&PianoConfig::query_match, "features.query_match.", data::kProductTextCount}}) {
        INFO(option.layer);
        PianoConfig config = micro_config();
        config.*option.flag = true;
        for (const std::string& kind : piano::model_names()) {
            INFO(kind);
            auto model = piano::make_model<double>(kind, config);
            PianoConfig without = config;
            without.*option.flag = false;
            CHECK(piano::make_model<double>(kind, without)->parameter_count() ==
                  model->parameter_count() - (option.inputs + 1) * config.d_model);
            // The layer over the new inputs reaches the scores: silencing it moves them.
            model->eval();
            const auto scores = model->forward(batch).ctr_logit.value();
            int silenced = 0;
            for (auto& [name, p] : model->named_parameters()) {
                if (name.rfind(option.layer, 0) == 0) {
                    p.mutable_value().setZero();
                    ++silenced;
                }
            }
            CHECK(silenced == 2);
            CHECK((scores - model->forward(batch).ctr_logit.value()).norm() > 1e-6);
        }
        auto model = piano::make_model<double>("piano", config);
        const auto result = whole_model_gradcheck(*model, batch);
        INFO(result.message);
        CHECK(result.ok);
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

TEST_CASE("set_score_lambda moves the serving trade-off without retraining", "[model][rerank]") {
    const data::Request request = make_request(5, 6, 4);
    auto model = piano::make_model<float>("piano", PianoConfig::tiny());
    model->set_score_lambda(1.0);
    const piano::RerankResult by_ctcvr = model->rerank(request);
    model->set_score_lambda(0.0);
    const piano::RerankResult by_ctr = model->rerank(request);
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(by_ctcvr.score[i] == Approx(std::log(by_ctcvr.p_ctcvr[i])));
        CHECK(by_ctr.score[i] == Approx(std::log(by_ctr.p_ctr[i])));
        CHECK(by_ctr.p_ctr[i] == by_ctcvr.p_ctr[i]);
    }
    CHECK_THROWS_AS(model->set_score_lambda(1.5), piano::ConfigError);
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

TEST_CASE("the product BCE of three factors equals the naive formula, and its gradient", "[model][loss][gradcheck]") {
    piano::Matrix<double> e(3, 1), a(3, 1), b(3, 1), y(3, 1);
    e << 0.4, -2.0, 1.1;
    a << 0.3, -1.2, 2.0;
    b << -0.5, 0.7, 1.5;
    y << 1, 0, 1;
    const Tensor<double> te(e), ta(a), tb(b);
    const auto loss = piano::product_bce_with_logits<double>({te, ta, tb}, y).value();
    auto sigmoid = [](double x) { return 1 / (1 + std::exp(-x)); };
    for (Index i = 0; i < 3; ++i) {
        const double p = sigmoid(e(i, 0)) * sigmoid(a(i, 0)) * sigmoid(b(i, 0));
        CHECK(loss(i, 0) == Approx(-(y(i, 0) * std::log(p) + (1 - y(i, 0)) * std::log(1 - p))));
    }
    // One factor is the plain BCE with logits.
    const auto single = piano::product_bce_with_logits<double>({ta}, y).value();
    for (Index i = 0; i < 3; ++i) {
        const double p = sigmoid(a(i, 0));
        CHECK(single(i, 0) == Approx(-(y(i, 0) * std::log(p) + (1 - y(i, 0)) * std::log(1 - p))));
    }
    std::vector<Tensor<double>> inputs{Tensor<double>(e, true), Tensor<double>(a, true), Tensor<double>(b, true)};
    const auto result = piano::check_gradients(
        [&](const std::vector<Tensor<double>>& x) { return piano::sum(piano::product_bce_with_logits<double>(x, y)); },
        inputs);
    INFO(result.message);
    CHECK(result.ok);
    CHECK_THROWS_AS(piano::product_bce_with_logits<double>({}, y), std::invalid_argument);
}

TEST_CASE("no model's rerank score sees the logged position, only its training loss does", "[model][rerank]") {
    std::vector<data::Request> requests = {make_request(1, 6, 4), make_request(2, 5, 2)};
    const data::Batch batch = data::make_batch(requests, 0, requests.size());
    data::Batch moved = batch;
    for (Index& p : moved.cand_pos) p = 5 - p;  // every candidate at another logged position
    for (const auto& name : piano::model_names()) {
        DYNAMIC_SECTION(name) {
            PianoConfig config = micro_config();
            auto model = piano::make_model<double>(name, config);
            // Examination terms that differ by position, as after training.
            for (auto [param_name, p] : model->named_parameters())
                if (param_name.rfind("examination.", 0) == 0)
                    for (Index r = 0; r < p.rows(); ++r) p.mutable_value()(r, 0) = -0.3 * static_cast<double>(r);
            const auto before = model->rerank(batch), after = model->rerank(moved);
            for (std::size_t b = 0; b < before.size(); ++b) {
                CHECK(before[b].score == after[b].score);
                CHECK(before[b].order == after[b].order);
            }
            const auto out = model->forward(batch), out_moved = model->forward(moved);
            REQUIRE(out.exam_logit.defined());
            CHECK(out.ctr_logit.value() == out_moved.ctr_logit.value());
            CHECK(out.exam_logit.value() != out_moved.exam_logit.value());
            const double loss = piano::multi_task_loss(out, batch, model->config(), model->loss_log_variances()).total.item();
            const double loss_moved =
                piano::multi_task_loss(out_moved, moved, model->config(), model->loss_log_variances()).total.item();
            CHECK(loss != loss_moved);
        }
    }
    // A shuffled list (no first-stage order) in the batch: no examination term at all.
    std::vector<data::Request> shuffled = requests;
    shuffled[1].first_stage_order = false;
    CHECK_FALSE(piano::make_model<double>("piano", micro_config())
                    ->forward(data::make_batch(shuffled, 0, shuffled.size()))
                    .exam_logit.defined());
    PianoConfig none = micro_config();
    none.position_model = piano::PositionModel::none;
    CHECK_FALSE(piano::make_model<double>("piano", none)->forward(batch).exam_logit.defined());
}

TEST_CASE("qdir_focus measures the attention on past searches with the query's term", "[model][qdir]") {
    data::Request r = make_request(4, 3, 0);
    r.query = {5};
    for (std::vector<data::Row> q : {std::vector<data::Row>{5, 2}, std::vector<data::Row>{6}, std::vector<data::Row>{}}) {
        data::HistoryEvent e;
        e.has_query = !q.empty();
        e.query = q;
        e.fields.item = 3;
        r.history.push_back(e);
    }
    const std::vector<data::Request> requests{r, make_request(6, 2, 0)};  // the second has no history
    auto model = piano::make_model<float>("piano", PianoConfig::tiny());
    const piano::QdirFocus focus = piano::qdir_focus(*model, requests, {5});
    CHECK(focus.requests == 1);
    CHECK(focus.uniform == Approx(1.0 / 4.0));  // one same-term event of the null slot and 3 events
    const auto out = model->forward(data::make_batch({&r}), true);
    CHECK(focus.attention == Approx(out.qdir_weights.mean_over_heads(0)(0, 1)));
    CHECK(piano::qdir_focus(*model, requests, {7}).requests == 0);  // no eligible term
    CHECK(piano::qdir_focus(*piano::make_model<float>("din", PianoConfig::tiny()), requests, {5}).requests == 0);
}

TEST_CASE("an unknown model name lists the known ones", "[model][errors]") {
    CHECK_THROWS_AS(piano::make_model<float>("gpt", PianoConfig::tiny()), piano::ConfigError);
    CHECK_THROWS_WITH(piano::make_model<float>("gpt", PianoConfig::tiny()),
                      Catch::Contains("gpt") && Catch::Contains("piano-noqdir"));
}
