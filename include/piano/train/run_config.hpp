// piano/train/run_config.hpp: one `key = value` file describes a run: the model's
// hyperparameters (PianoConfig's keys, model/config.hpp) and how it is trained (the
// TrainOptions keys below). `piano train` and `piano compare` write the resolved file
// into their output folder, so `--config that/config.txt` repeats the run.
//
//   # model
//   d_model = 64
//   ...
//   # training
//   epochs = 5
//   learning_rate = 0.001
//   ...
//
// The training keys leave out what belongs to the machine, not to the run: threads, the
// output folder and the progress bar.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/io/atomic_write.hpp"
#include "piano/model/config.hpp"
#include "piano/train/trainer.hpp"
#include "piano/version.hpp"

namespace piano {

struct RunConfig {
    PianoConfig model;
    TrainOptions training;
};

/// The TrainOptions keys of a run file, in the order run_config_text writes them.
inline const std::vector<std::string>& training_keys() {
    static const std::vector<std::string> keys = {
        "epochs",     "batch_size",           "optimizer", "learning_rate", "weight_decay",    "schedule",
        "warmup_steps", "clip_norm", "lazy_embeddings", "early_stopping_metric", "patience", "batch_order_seed"};
    return keys;
}

/// `options` as text values, keyed by training_keys().
inline std::map<std::string, std::string> training_to_map(const TrainOptions& o) {
    using detail::config_values::text;
    return {{"epochs", text(o.epochs)},
            {"batch_size", text(o.batch_size)},
            {"optimizer", o.optimizer},
            {"learning_rate", text(o.learning_rate)},
            {"weight_decay", text(o.weight_decay)},
            {"schedule", o.schedule},
            {"warmup_steps", text(o.warmup_steps)},
            {"clip_norm", text(o.clip_norm)},
            {"lazy_embeddings", o.lazy_embeddings ? "true" : "false"},
            {"early_stopping_metric", o.early_stopping_metric},
            {"patience", text(o.patience)},
            {"batch_order_seed", text(o.seed)}};
}

/// `base` with every training key of `m` applied. Throws ConfigError for a key that is not
/// a training key or a value that does not parse or is out of range (train() checks the
/// names of the optimizer, schedule and metric).
inline TrainOptions training_from_map(const std::map<std::string, std::string>& m, TrainOptions base) {
    using namespace detail::config_values;
    constexpr long kMaxInt = 1L << 30;
    for (const auto& [key, value] : m) {
        if (key == "epochs") base.epochs = static_cast<int>(std::min(parse_long(key, value, 1), kMaxInt));
        else if (key == "batch_size") base.batch_size = static_cast<std::size_t>(parse_long(key, value, 1));
        else if (key == "optimizer") base.optimizer = value;
        else if (key == "learning_rate") base.learning_rate = parse_double(key, value, 1e-12, 1e3);
        else if (key == "weight_decay") base.weight_decay = parse_double(key, value, 0.0, 1e3);
        else if (key == "schedule") base.schedule = value;
        else if (key == "warmup_steps") base.warmup_steps = parse_long(key, value, 0);
        else if (key == "clip_norm") base.clip_norm = parse_double(key, value, -1e300, 1e300);
        else if (key == "lazy_embeddings") base.lazy_embeddings = parse_bool(key, value);
        else if (key == "early_stopping_metric") base.early_stopping_metric = value;
        else if (key == "patience") base.patience = static_cast<int>(std::min(parse_long(key, value, 0), kMaxInt));
        else if (key == "batch_order_seed") base.seed = parse_unsigned(key, value);
        else throw ConfigError("unknown training key '" + key + "'");
    }
    return base;
}

/// `base` with every key of `m` applied: training keys to the options, the others to the
/// model's config. Throws ConfigError naming a key that is neither.
inline RunConfig run_config_from_map(const std::map<std::string, std::string>& m, RunConfig base) {
    std::map<std::string, std::string> model, training;
    for (const auto& [key, value] : m) {
        const bool is_training = std::find(training_keys().begin(), training_keys().end(), key) != training_keys().end();
        (is_training ? training : model)[key] = value;
    }
    base.model = PianoConfig::from_map(model, base.model);
    base.training = training_from_map(training, base.training);
    return base;
}

/// A run file from `in` (its name `path` in errors, with the line of a malformed one) on
/// top of `base`.
inline RunConfig read_run_config(std::istream& in, const std::string& path, RunConfig base) {
    const std::map<std::string, std::string> m = detail::config_values::read_key_values(in, path);
    try {
        return run_config_from_map(m, std::move(base));
    } catch (const ConfigError& e) {
        throw ConfigError(path + ": " + e.what());
    }
}

inline RunConfig read_run_config_file(const std::string& path, RunConfig base) {
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot open config file " + path);
    return read_run_config(in, path, std::move(base));
}

/// The whole run as a file read_run_config reads back to the same RunConfig: every model
/// key, then every training key.
inline std::string run_config_text(const RunConfig& run) {
    std::string text = std::string("# a piano run (piano ") + kVersion + "); piano train --config FILE repeats it\n# model\n";
    for (const auto& [key, value] : run.model.to_map()) text += key + " = " + value + "\n";
    text += "# training\n";
    const std::map<std::string, std::string> training = training_to_map(run.training);
    for (const std::string& key : training_keys()) text += key + " = " + training.at(key) + "\n";
    return text;
}

/// Writes run_config_text(run) to `path` atomically (io/atomic_write.hpp).
inline void save_run_config(const std::filesystem::path& path, const RunConfig& run) {
    write_text_atomically(path, run_config_text(run));
}

}  // namespace piano
