// Results do not depend on the number of OpenMP threads: a PIANO training step (forward,
// losses, backward, lazy Adam) and rerank give the same bits with 1 and with 2 threads.
// Without OpenMP the two runs are simply two runs, and must agree as well.
#include <catch2/catch.hpp>

#include <piano/model/losses.hpp>
#include <piano/model/piano_model.hpp>
#include <piano/optim/adam.hpp>

#include <random>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace threads_test {

namespace data = piano::data;

// Requests large enough that the kernels split their work (row blocks, lists).
std::vector<data::Request> requests(const piano::PianoConfig& c, std::size_t n) {
    std::mt19937_64 rng(77);
    auto row = [&](long rows) { return static_cast<data::Row>(1 + rng() % static_cast<std::uint64_t>(rows - 1)); };
    std::vector<data::Request> out(n);
    for (auto& r : out) {
        // push_back, not `= {…}`: GCC 12 at -O3 reports a false -Wnonnull for the latter.
        for (int t = 0; t < 2; ++t) r.query.push_back(row(c.term_rows));
        for (int j = 0; j < 20; ++j) {
            data::HistoryEvent e;
            e.has_query = j % 4 != 0;
            if (e.has_query)
                for (int t = 0; t < 2; ++t) e.query.push_back(row(c.term_rows));
            e.fields.item = row(c.item_rows);
            e.fields.cate1 = row(c.category_rows);
            e.type = static_cast<data::Behavior>(j % data::kBehaviorCount);
            e.gap = j * 1000;
            r.history.push_back(e);
        }
        for (int i = 0; i < 30; ++i) {
            data::Candidate cand;
            cand.fields.item = row(c.item_rows);
            cand.fields.brand = row(c.brand_rows);
            cand.fields.shop = row(c.shop_rows);
            cand.click = rng() % 4 == 0;
            cand.conv = cand.click && rng() % 2 == 0;
            r.candidates.push_back(cand);
        }
    }
    return out;
}

// Two training steps and a rerank with `threads` threads, from the same seed: every
// parameter after the steps, then every score.
std::vector<double> run(int threads) {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    piano::PianoConfig config = piano::PianoConfig::tiny();
    config.d_model = 32;
    config.heads = 4;
    config.layers = 2;
    config.ffn_dim = 128;
    config.dropout = 0.1;
    const auto reqs = requests(config, 24);
    const data::Batch batch = data::make_batch(reqs, 0, reqs.size());
    piano::PianoModel<float> model(config);
    piano::AdamOptions options;
    options.sparse_mode = piano::SparseMode::lazy;
    piano::Adam<float> adam(model.named_parameters(), options);
    for (int step = 0; step < 2; ++step) {
        auto out = model.forward(batch);
        auto loss = piano::multi_task_loss(out, batch, config, model.loss_log_variances());
        loss.total.backward();
        adam.step();
        adam.zero_grad();
    }
    std::vector<double> values;
    for (const auto& [name, p] : model.named_parameters()) {
        for (piano::Index k = 0; k < p.size(); ++k) values.push_back(p.value().data()[k]);
    }
    for (const auto& r : model.rerank(batch)) values.insert(values.end(), r.score.begin(), r.score.end());
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    return values;
}

}  // namespace threads_test

TEST_CASE("training steps and rerank give the same bits with 1 and 2 threads", "[model][threads]") {
    const std::vector<double> one = threads_test::run(1);
    const std::vector<double> two = threads_test::run(2);
    REQUIRE(one.size() == two.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < one.size(); ++i) differ += one[i] != two[i];
    CHECK(differ == 0);
}

TEST_CASE("rerank of a batch cut into pieces agrees with each request alone", "[model][rerank]") {
    piano::PianoConfig config = piano::PianoConfig::tiny();
    const auto reqs = threads_test::requests(config, 37);  // three pieces: 16, 16 and 5 requests
    piano::PianoModel<double> model(config);
    const auto batched = model.rerank(piano::data::make_batch(reqs, 0, reqs.size()));
    REQUIRE(batched.size() == reqs.size());
    for (std::size_t b = 0; b < reqs.size(); ++b) {
        const piano::RerankResult alone = model.rerank(reqs[b]);
        REQUIRE(alone.score.size() == batched[b].score.size());
        for (std::size_t i = 0; i < alone.score.size(); ++i) CHECK(batched[b].score[i] == Approx(alone.score[i]).epsilon(1e-9));
        CHECK(batched[b].order == alone.order);
        CHECK(batched[b].p_list_ctr == Approx(alone.p_list_ctr).epsilon(1e-9));
    }
}
