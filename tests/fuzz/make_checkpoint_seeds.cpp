// Writes the seed corpus of the checkpoint fuzzers: real checkpoints of the small fuzz
// model (tests/fuzz/fuzz_model.hpp) after one Adam step, in both formats:
//   full.ckpt          float: parameters, optimizer state, generator state, metadata
//   model_only.ckpt    double: parameters only
//   few.ckpt           float: the first three parameters and their optimizer state, a
//                      short input for libFuzzer to mutate (restore rejects it, by name)
//
//   make_checkpoint_seeds OUT_DIR   -> OUT_DIR/{binary,json}/*.ckpt
#include <piano/data/batch.hpp>
#include <piano/io/checkpoint.hpp>
#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>
#include <piano/optim/adam.hpp>

#include <filesystem>
#include <iostream>
#include <random>
#include <string>

#include "fuzz_model.hpp"

namespace {

// One request with a query, two history events (one without a query) and three
// candidates, the first clicked and converted: enough for every parameter to get a gradient.
piano::data::Request one_request() {
    namespace data = piano::data;
    data::Request r;
    r.query.push_back(1);
    for (int j = 0; j < 2; ++j) {
        data::HistoryEvent e;
        e.has_query = j == 0;
        if (e.has_query) e.query.push_back(2);
        e.fields.item = 1 + j;
        e.gap = 100 * (j + 1);
        r.history.push_back(e);
    }
    for (int i = 0; i < 3; ++i) {
        data::Candidate c;
        c.fields.item = 3 + i;
        c.fields.brand = 1;
        c.click = c.conv = i == 0 ? 1 : 0;
        c.label = i == 0 ? 3.0f : 0.0f;
        r.candidates.push_back(c);
    }
    return r;
}

template <typename T>
void save_both(const std::filesystem::path& out, const std::string& name, const piano::Checkpoint<T>& c) {
    piano::save_checkpoint(out / "binary" / name, c, piano::CheckpointFormat::binary);
    piano::save_checkpoint(out / "json" / name, c, piano::CheckpointFormat::json);
}

// A checkpoint of the fuzz model after one Adam step on one_request().
template <typename T>
piano::Checkpoint<T> trained_checkpoint() {
    const piano::PianoConfig config = piano::fuzz::fuzz_config();
    auto model = piano::make_model<T>("piano", config);
    piano::Adam<T> adam(model->named_parameters(), piano::AdamOptions{});
    const piano::data::Request request = one_request();
    const piano::data::Batch batch = piano::data::make_batch({&request});
    auto loss = piano::multi_task_loss(model->forward(batch), batch, config, model->loss_log_variances());
    loss.total.backward();
    adam.step();
    std::mt19937_64 rng(7);
    auto map = config.to_map();
    map["model"] = "piano";
    piano::Checkpoint<T> c = piano::capture(*model, map, &adam, &rng);
    c.step = 1;
    c.epoch = 1;
    c.metadata["data"] = "one request";
    return c;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_checkpoint_seeds OUT_DIR\n";
        return 2;
    }
    const std::filesystem::path out = argv[1];
    std::filesystem::create_directories(out / "binary");
    std::filesystem::create_directories(out / "json");
    const piano::Checkpoint<float> full = trained_checkpoint<float>();
    save_both(out, "full.ckpt", full);

    piano::Checkpoint<double> model_only = trained_checkpoint<double>();
    model_only.optimizer.reset();
    model_only.optimizer_name.clear();
    model_only.rng_state.clear();
    save_both(out, "model_only.ckpt", model_only);

    piano::Checkpoint<float> few = full;
    few.parameters.resize(3);
    few.optimizer->slots.clear();
    for (const auto& [name, value] : few.parameters) few.optimizer->slots[name] = full.optimizer->slots.at(name);
    few.config.clear();
    few.config["d_model"] = "4";
    save_both(out, "few.ckpt", few);
    return 0;
}
