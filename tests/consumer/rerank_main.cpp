// Builds PIANO by name, trains it for two epochs on random requests and reranks one: a
// program that uses the model, the trainer and the optimizers, whose compile time
// docs/building.md reports header-only and in compiled mode (bench/compile_time.sh).
#include <piano/piano.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

int main() {
    std::mt19937 rng(3);
    auto row = [&rng](int n) { return static_cast<piano::data::Row>(1 + rng() % n); };
    std::vector<piano::data::Request> requests(48);
    for (piano::data::Request& r : requests) {
        r.query = {row(50), row(50)};
        for (int h = 0; h < 4; ++h) r.history.push_back({{row(50)}, true, {row(99), row(20), row(9)}});
        for (int i = 0; i < 8; ++i) {
            piano::data::Candidate c;
            c.fields = {row(99), row(20), row(9)};
            c.click = c.fields.brand % 3 == r.query[0] % 3;
            c.conv = c.click && c.fields.cate1 % 2 == 0;
            r.candidates.push_back(c);
        }
    }
    const std::vector<piano::data::Request> train(requests.begin(), requests.begin() + 32),
        valid(requests.begin() + 32, requests.end());

    std::unique_ptr<piano::Reranker<float>> model = piano::make_model<float>("piano", piano::PianoConfig::tiny());
    piano::TrainOptions options;
    options.epochs = 2;
    options.batch_size = 8;
    options.progress = false;
    const piano::TrainResult result = piano::train(*model, train, valid, options, std::cout);

    std::vector<std::size_t> order = model->rerank(valid.front()).order;
    std::sort(order.begin(), order.end());
    const bool permutation =
        order.size() == 8 && order.back() == 7 && std::adjacent_find(order.begin(), order.end()) == order.end();
    std::cout << "trained " << result.epochs.size() << " epochs; rerank " << (permutation ? "ok" : "FAILED") << "\n";
    return permutation && result.epochs.size() == 2 ? 0 : 1;
}
