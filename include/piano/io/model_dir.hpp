// piano/io/model_dir.hpp: a trained model as a folder, the unit training writes and
// serving reads. One call saves it (save_model_dir, or fit() while it trains), one call
// loads it (load_model_dir), and the loaded model reranks requests given by their string
// ids (TrainedModel::rerank).
//
//   DIR/model.txt      `piano-model 1`, then `key = value` lines: piano_version, kind, scalar.
//                      Written last: a folder without it is not (or not yet) a model.
//   DIR/best.ckpt      the weights and the config map, "model" = kind (io/checkpoint.hpp)
//   DIR/vocab/         the training split's vocabularies, one file per table (data/vocabulary.hpp)
//   DIR/products.txt   the metadata of every product with an id the vocabularies know, in
//                      the JDsearch products format (empty but for its header with LETOR data)
//   DIR/data.txt       how the data was read: format, candidate order, label scale (data/recipe.hpp)
//   DIR/train_log.csv  one row per epoch, when train() wrote the folder
//
// Versions: a folder records the piano version that wrote it; load_model_dir reads only
// folders of a compatible version (piano::version_compatible) and says which wrote it
// otherwise. A folder holding another model kind than the caller expects is refused too.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/batch.hpp"
#include "piano/data/jdsearch.hpp"
#include "piano/data/recipe.hpp"
#include "piano/data/vocabulary.hpp"
#include "piano/io/atomic_write.hpp"
#include "piano/io/checkpoint.hpp"
#include "piano/model/config.hpp"
#include "piano/model/factory.hpp"
#include "piano/model/reranker.hpp"
#include "piano/version.hpp"

namespace piano {

/// The names of a model folder's files (see the top of this file).
struct ModelDirFiles {
    static constexpr const char* manifest = "model.txt";
    static constexpr const char* weights = "best.ckpt";
    static constexpr const char* vocab = "vocab";
    static constexpr const char* products = "products.txt";
    static constexpr const char* recipe = "data.txt";
};

/// The version of the folder layout this build writes and reads (model.txt's first line).
inline constexpr int kModelDirFormatVersion = 1;

/// What a model needs beside its weights to read new requests: the vocabularies that turn
/// string ids into rows, the product metadata of the items, and how the data was read.
struct ModelData {
    data::Vocabularies vocab;
    data::ProductTable products;
    data::DataRecipe recipe;
};

/// Load options that read files the way `recipe` says the training data was read, with
/// the vocabulary caps of `config` (used when a split is drawn again from requests.txt).
inline data::LoadOptions load_options_for(const PianoConfig& config, const data::DataRecipe& recipe) {
    data::LoadOptions options;
    options.conv_threshold = recipe.labels.conv_threshold;
    options.max_label = recipe.labels.max_label;
    options.candidate_order = recipe.candidate_order;
    options.order_seed = recipe.order_seed;
    options.capacity.terms = static_cast<std::size_t>(config.term_rows);
    options.capacity.items = static_cast<std::size_t>(config.item_rows);
    options.capacity.brands = static_cast<std::size_t>(config.brand_rows);
    options.capacity.categories = static_cast<std::size_t>(config.category_rows);
    options.capacity.shops = static_cast<std::size_t>(config.shop_rows);
    return options;
}

/// The products a model can use: those with at least one id (wid, brand, category, shop)
/// that the vocabularies know. The rest would map to row 0 in every field anyway.
inline data::ProductTable products_known_to(const data::ProductTable& products, const data::Vocabularies& vocab) {
    using data::Table;
    data::ProductTable kept;
    for (const auto& [wid, p] : products) {
        bool known = vocab.row(Table::item, wid, nullptr) != data::kUnknownRow ||
                     vocab.row(Table::brand, p.brand, nullptr) != data::kUnknownRow ||
                     vocab.row(Table::shop, p.shop, nullptr) != data::kUnknownRow;
        for (const std::string& c : p.cate) known = known || vocab.row(Table::category, c, nullptr) != data::kUnknownRow;
        if (known) kept.emplace(wid, p);
    }
    return kept;
}

/// A model loaded from its folder, ready to serve. The model is in evaluation mode.
///
/// Threads: map() and rerank() are const and may be called from several threads at once,
/// on one TrainedModel, as long as no thread changes the model meanwhile (switching it to
/// training mode, training it, restoring weights, set_score_lambda). They read the
/// parameters and the vocabularies and write nothing shared.
template <typename T>
struct TrainedModel {
    std::unique_ptr<Reranker<T>> model;
    ModelData data;
    std::string written_by;  // the piano version that wrote the folder

    /// The model's kind: "piano", "prm", ...
    std::string kind() const { return model->kind(); }

    /// Options that read request files the way the training data was read.
    data::LoadOptions load_options() const { return load_options_for(model->config(), data.recipe); }

    /// `raw` with its string ids turned into rows through the folder's vocabularies and
    /// products. Ids the model never saw map to row 0 and count as unknown in `counts`
    /// (when given); they are not an error. Labels, if any, are kept (never needed).
    /// The candidates keep their order, which rerank() never reads as a position.
    data::Request map(const data::RawRequest& raw, data::IdCounts* counts = nullptr) const {
        return data::map_request(raw, data.products, data.vocab, load_options(), counts);
    }

    /// The new order and the predictions of each raw request (RerankResult: indices into
    /// each request's candidates as given). Empty input gives an empty answer.
    /// Throws DataError naming the request for one with no candidates, ShapeError for one
    /// with another number of dense features per candidate than the model's.
    std::vector<RerankResult> rerank(const std::vector<data::RawRequest>& raw, data::IdCounts* counts = nullptr) const {
        std::vector<data::Request> requests;
        requests.reserve(raw.size());
        for (const data::RawRequest& r : raw) requests.push_back(map(r, counts));
        if (requests.empty()) return {};
        return model->rerank(data::make_batch(requests, 0, requests.size()));
    }

    RerankResult rerank(const data::RawRequest& raw, data::IdCounts* counts = nullptr) const {
        return std::move(rerank(std::vector<data::RawRequest>{raw}, counts).front());
    }
};

namespace detail::model_dir {

inline std::filesystem::path in(const std::filesystem::path& dir, const char* name) { return dir / name; }

/// model.txt's lines after the first, as a map; errors name the file and line.
inline std::map<std::string, std::string> read_manifest(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CheckpointError("cannot open '" + path.string() + "'");
    std::string line;
    const std::string magic = "piano-model ";
    if (!std::getline(in, line) || line.compare(0, magic.size(), magic) != 0)
        throw CheckpointError("'" + path.string() + "' is not a piano model manifest (its first line should be '" +
                              magic + std::to_string(kModelDirFormatVersion) + "')");
    const std::string format = line.substr(magic.size());
    if (format != std::to_string(kModelDirFormatVersion))
        throw CheckpointError("'" + path.string() + "': model folder format " + format + ", this build (piano " +
                              kVersion + ") reads format " + std::to_string(kModelDirFormatVersion));
    std::map<std::string, std::string> fields;
    long line_no = 1;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        const std::size_t eq = line.find(" = ");
        if (eq == std::string::npos)
            throw CheckpointError("'" + path.string() + "' line " + std::to_string(line_no) +
                                  ": expected 'key = value', got '" + line + "'");
        fields[line.substr(0, eq)] = line.substr(eq + 3);
    }
    for (const char* key : {"piano_version", "kind", "scalar"})
        if (fields.find(key) == fields.end())
            throw CheckpointError("'" + path.string() + "' has no '" + key + "' line");
    return fields;
}

/// "0.1.0" -> {0, 1}; false for text that is not MAJOR.MINOR.PATCH.
inline bool parse_version(const std::string& text, long& major, long& minor) {
    const std::size_t a = text.find('.'), b = text.find('.', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) return false;
    try {
        major = std::stol(text.substr(0, a));
        minor = std::stol(text.substr(a + 1, b - a - 1));
    } catch (const std::exception&) {
        return false;
    }
    return true;
}

}  // namespace detail::model_dir

/// Writes everything of a model folder but its weights: vocab/, products.txt, data.txt,
/// then model.txt (last, atomically; an older model.txt is removed first, so a folder
/// being rewritten never looks complete). `kind` is the model's kind, `scalar` "float" or
/// "double". fit() calls this before training, and train() then writes best.ckpt.
inline void save_model_data(const std::filesystem::path& dir, const std::string& kind, const std::string& scalar,
                            const ModelData& data) {
    namespace md = detail::model_dir;
    std::filesystem::create_directories(dir);
    std::error_code ignored;
    std::filesystem::remove(md::in(dir, ModelDirFiles::manifest), ignored);
    data.vocab.save_dir(md::in(dir, ModelDirFiles::vocab).string());
    std::ostringstream products;
    data::write_products(products, data.products);
    write_text_atomically(md::in(dir, ModelDirFiles::products), products.str());
    data.recipe.save(md::in(dir, ModelDirFiles::recipe).string());
    write_text_atomically(md::in(dir, ModelDirFiles::manifest),
                         "piano-model " + std::to_string(kModelDirFormatVersion) + "\npiano_version = " + kVersion +
                             "\nkind = " + kind + "\nscalar = " + scalar + "\n");
}

/// Saves `model` with `data` as a complete model folder at `dir` (created if needed; the
/// files of an older model there are replaced). The weights go to best.ckpt atomically.
template <typename T>
void save_model_dir(const std::filesystem::path& dir, const Reranker<T>& model, const ModelData& data) {
    std::filesystem::create_directories(dir);
    const Checkpoint<T> checkpoint = capture(model, model.config_map());
    save_checkpoint(detail::model_dir::in(dir, ModelDirFiles::weights), checkpoint);
    save_model_data(dir, model.kind(), detail::checkpoint::scalar_name<T>(), data);
}

/// Loads the model folder at `dir` (see the top of this file), its model in evaluation
/// mode. With `expected_kind` non-empty, a folder holding another kind is refused.
/// Throws CheckpointError naming the folder and what it expected for a missing, incomplete,
/// foreign, incompatible-version or other-kind folder, or a checkpoint that does not fit;
/// DataError for a malformed vocabulary, products or data.txt file (naming file and line).
template <typename T>
TrainedModel<T> load_model_dir(const std::filesystem::path& dir, const std::string& expected_kind = "") {
    namespace md = detail::model_dir;
    const std::string where = "model folder '" + dir.string() + "'";
    if (!std::filesystem::is_directory(dir)) {
        throw CheckpointError(where + (std::filesystem::exists(dir) ? " is a file, expected the folder that piano "
                                                                      "train or save_model_dir writes"
                                                                    : " does not exist"));
    }
    const std::filesystem::path manifest = md::in(dir, ModelDirFiles::manifest);
    if (!std::filesystem::exists(manifest))
        throw CheckpointError(where + " has no " + ModelDirFiles::manifest +
                              ": it is not a model folder, or its writing did not finish");
    const std::map<std::string, std::string> fields = md::read_manifest(manifest);
    const std::string& version = fields.at("piano_version");
    long major = 0, minor = 0;
    if (!md::parse_version(version, major, minor) || !version_compatible(major, minor))
        throw CheckpointError(where + " was written by piano " + version + "; this is piano " + kVersion +
                              ", which reads folders of versions " + std::to_string(PIANO_VERSION_MAJOR) + "." +
                              std::to_string(PIANO_VERSION_MINOR) + ".x");
    const std::string& kind = fields.at("kind");
    if (!expected_kind.empty() && kind != expected_kind)
        throw CheckpointError(where + " holds a '" + kind + "' model, expected '" + expected_kind + "'");
    if (fields.at("scalar") != detail::checkpoint::scalar_name<T>())
        throw CheckpointError(where + " holds a " + fields.at("scalar") + " model, loaded as " +
                              detail::checkpoint::scalar_name<T>());

    const std::filesystem::path weights = md::in(dir, ModelDirFiles::weights);
    if (!std::filesystem::exists(weights))
        throw CheckpointError(where + " has no " + ModelDirFiles::weights + " (training stopped before its first epoch?)");
    Checkpoint<T> checkpoint = load_checkpoint<T>(weights);
    std::map<std::string, std::string> config = checkpoint.config;
    const auto model_key = config.find("model");
    if (model_key == config.end() || model_key->second != kind)
        throw CheckpointError(where + ": " + ModelDirFiles::weights + " holds a '" +
                              (model_key == config.end() ? std::string("?") : model_key->second) + "' model, " +
                              ModelDirFiles::manifest + " says '" + kind + "'");
    config.erase(model_key);  // the rest is a PianoConfig

    TrainedModel<T> trained;
    trained.written_by = version;
    trained.model = make_model<T>(kind, PianoConfig::from_saved_map(config));
    restore(*trained.model, checkpoint);
    trained.model->eval();
    trained.data.vocab = data::Vocabularies::load_dir(md::in(dir, ModelDirFiles::vocab).string());
    trained.data.recipe = data::DataRecipe::load(md::in(dir, ModelDirFiles::recipe).string());
    trained.data.products = data::read_products(md::in(dir, ModelDirFiles::products).string(), trained.load_options());
    return trained;
}

}  // namespace piano
