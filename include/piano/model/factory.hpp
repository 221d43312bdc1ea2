// piano/model/factory.hpp: a model by name, as the CLI and checkpoints spell it.
#pragma once

#include <memory>
#include <string>

#include "piano/core/compiled.hpp"
#include "piano/model/baselines.hpp"
#include "piano/model/piano_model.hpp"

namespace piano {

/// The trainable models: "piano", "piano-noqdir", "piano-noian", "prm", "din", "dnn".
inline const std::vector<std::string>& model_names() {
    static const std::vector<std::string> names = {"dnn", "din", "prm", "piano-noqdir", "piano-noian", "piano"};
    return names;
}

/// Builds the named model. The ablations are PIANO with one switch turned off.
/// Throws ConfigError for an unknown name, listing the known ones.
template <typename T>
std::unique_ptr<Reranker<T>> make_model(const std::string& name, PianoConfig config) {
    if (name == "piano") return std::make_unique<PianoModel<T>>(config);
    if (name == "piano-noqdir") {
        config.use_qdir = false;
        return std::make_unique<PianoModel<T>>(config);
    }
    if (name == "piano-noian") {
        config.use_ian = false;
        return std::make_unique<PianoModel<T>>(config);
    }
    if (name == "prm") return std::make_unique<PrmModel<T>>(config);
    if (name == "din") return std::make_unique<DinModel<T>>(config);
    if (name == "dnn") return std::make_unique<DnnModel<T>>(config);
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown model '" + name + "' (known: " + known + ")");
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(std::unique_ptr<Reranker<float>> make_model<float>(const std::string&, PianoConfig));

}  // namespace piano
