// piano/data/vocabulary.hpp: raw string ids -> embedding rows, one vocabulary per table.
//
// A vocabulary is built from the training split only, so an id first seen at validation,
// test or serving time maps to row 0 (kUnknownRow), the row every table keeps for ids it
// cannot know. Building counts each id; the most frequent ids get their own rows (1, 2, ...,
// ties in order of first appearance). With a capacity C (max_rows) the table has at most C
// rows: the C-1 most frequent ids own rows 1..C-1 and every further training id is hashed
// into [1, C) with 64-bit FNV-1a, `row = 1 + fnv1a(id) % (C - 1)`: a long tail of rare ids
// shares rows with others instead of growing the table, and the row is the same on every
// platform and every run. Ids never seen in training still map to row 0.
//
// On disk (plain text, so a model ships with its vocabulary and a person can read it):
//   line 0 (the first line):  `piano-vocabulary 1 max_rows=C` (C = 0: unbounded)
//   line r, r >= 1:           the id of row r, for r < C; after those, the hashed ids
// so the row of an id is its line number counting the header as line 0, except for the
// hashed tail whose rows the formula above gives.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/request.hpp"

namespace piano::data {

/// 64-bit FNV-1a of the bytes of `s`: fixed by its definition, unlike std::hash.
inline std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

/// An immutable id -> row map. Copies share one store, so passing it around is cheap.
class Vocabulary {
public:
    /// The empty vocabulary: every id maps to row 0; rows() == 1.
    Vocabulary() = default;

    /// The largest max_rows: rows are 32-bit.
    static constexpr std::size_t kRowLimit = static_cast<std::size_t>(std::numeric_limits<Row>::max());

    /// `ids` in row order (row 1 first), distinct and non-empty; `max_rows` = 0 for no cap,
    /// else >= 2. Ids past the first max_rows-1 are hashed (see the file comment).
    Vocabulary(std::vector<std::string> ids, std::size_t max_rows) {
        if (max_rows == 1 || max_rows > kRowLimit)
            throw ConfigError("Vocabulary: max_rows must be 0 (no cap) or in [2, " + std::to_string(kRowLimit) +
                              "], got " + std::to_string(max_rows));
        if (max_rows == 0 && ids.size() >= kRowLimit)
            throw ConfigError("Vocabulary: " + std::to_string(ids.size()) +
                              " ids do not fit in 32-bit rows; set max_rows to hash the tail");
        auto store = std::make_shared<Store>();
        store->ids = std::move(ids);
        store->max_rows = max_rows;
        const std::size_t owned = max_rows == 0 ? store->ids.size() : std::min(store->ids.size(), max_rows - 1);
        store->owned = owned;
        store->rows.reserve(store->ids.size());
        for (std::size_t i = 0; i < store->ids.size(); ++i) {
            const std::string_view id = store->ids[i];
            if (id.empty()) throw std::invalid_argument("Vocabulary: empty id at row " + std::to_string(i + 1));
            const Row row = i < owned ? static_cast<Row>(i + 1) : static_cast<Row>(1 + fnv1a64(id) % (max_rows - 1));
            if (!store->rows.emplace(id, row).second)
                throw std::invalid_argument("Vocabulary: duplicate id '" + std::string(id) + "'");
        }
        store_ = std::move(store);
    }

    /// The row of `id`: its own row, its hashed row, or 0 when it was not seen in training.
    Row row(std::string_view id) const {
        if (!store_) return kUnknownRow;
        const auto it = store_->rows.find(id);
        return it == store_->rows.end() ? kUnknownRow : it->second;
    }

    /// Rows the embedding table needs: row 0 plus one per owned id (<= max_rows when capped).
    std::size_t rows() const { return store_ ? store_->owned + 1 : 1; }
    /// Distinct ids known (owned and hashed).
    std::size_t size() const { return store_ ? store_->ids.size() : 0; }
    std::size_t max_rows() const { return store_ ? store_->max_rows : 0; }
    /// The id that owns row r (hashed ids share it), "" for row 0 or a row out of range.
    std::string_view id_of(Row r) const {
        if (!store_ || r <= 0 || static_cast<std::size_t>(r) > store_->owned) return {};
        return store_->ids[static_cast<std::size_t>(r) - 1];
    }

    void save(std::ostream& out) const {
        out << "piano-vocabulary " << kVersion << " max_rows=" << max_rows() << '\n';
        if (store_)
            for (const std::string& id : store_->ids) out << id << '\n';
    }

    void save_file(const std::string& path) const {
        std::ofstream out(path, std::ios::binary);
        if (!out) throw std::runtime_error("Vocabulary: cannot open '" + path + "' for writing");
        save(out);
        out.flush();
        if (!out) throw std::runtime_error("Vocabulary: writing '" + path + "' failed");
    }

    /// Reads what save() wrote; `name` (usually the path) appears in DataError messages.
    static Vocabulary load(std::istream& in, const std::string& name) {
        std::string line;
        if (!std::getline(in, line))
            throw DataError(name, 1, "header", "empty file, expected 'piano-vocabulary 1 max_rows=N'");
        strip_cr(line);
        const std::string prefix = "piano-vocabulary ";
        if (line.compare(0, prefix.size(), prefix) != 0)
            throw DataError(name, 1, "header", "not a piano vocabulary: '" + line + "'");
        const std::string expected = prefix + std::to_string(kVersion) + " max_rows=";
        if (line.compare(0, expected.size(), expected) != 0)
            throw DataError(name, 1, "header",
                            "unsupported version '" + line + "' (this build reads version " +
                                std::to_string(kVersion) + ")");
        // Digits only (stoull alone would read "-5" as 2^64 - 5), and a value the
        // constructor accepts, so that a bad header is this file's DataError.
        std::size_t max_rows = 0;
        const std::string digits = line.substr(expected.size());
        const bool all_digits = !digits.empty() && digits.size() <= 19 &&
                                digits.find_first_not_of("0123456789") == std::string::npos;
        if (all_digits) max_rows = std::stoull(digits);
        if (!all_digits || max_rows == 1 || max_rows > kRowLimit)
            throw DataError(name, 1, "max_rows",
                            "expected 0 (no cap) or an integer in [2, " + std::to_string(kRowLimit) + "], got '" +
                                digits + "'");

        std::vector<std::string> ids;
        std::unordered_map<std::string, long> seen;
        long line_no = 1;
        while (std::getline(in, line)) {
            ++line_no;
            strip_cr(line);
            if (line.empty()) throw DataError(name, line_no, "id", "empty id");
            const auto [it, fresh] = seen.emplace(line, line_no);
            if (!fresh)
                throw DataError(name, line_no, "id",
                                "duplicate id '" + line + "' (first on line " + std::to_string(it->second) + ")");
            ids.push_back(line);
        }
        return Vocabulary(std::move(ids), max_rows);
    }

    static Vocabulary load_file(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw DataError(path, 0, "file", "cannot open");
        return load(in, path);
    }

    static constexpr int kVersion = 1;

private:
    static void strip_cr(std::string& line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
    }

    // `rows` keys view into `ids`, which never changes after construction.
    struct Store {
        std::vector<std::string> ids;
        std::unordered_map<std::string_view, Row> rows;
        std::size_t owned = 0;
        std::size_t max_rows = 0;
    };
    std::shared_ptr<const Store> store_;
};

/// Counts ids during the pass over the training split, then freezes them into a Vocabulary.
class VocabularyBuilder {
public:
    /// Counts one occurrence; empty ids (missing fields) are not ids and are ignored.
    void add(std::string_view id) {
        if (id.empty()) return;
        key_.assign(id.data(), id.size());  // reuses its buffer: no allocation per lookup
        auto it = counts_.find(key_);
        if (it == counts_.end()) it = counts_.emplace(key_, Count{0, counts_.size()}).first;
        ++it->second.count;
    }

    std::size_t size() const { return counts_.size(); }

    /// Ids ordered by count (descending), ties by first appearance; capped as documented.
    Vocabulary build(std::size_t max_rows) const {
        std::vector<const std::pair<const std::string, Count>*> order;
        order.reserve(counts_.size());
        for (const auto& entry : counts_) order.push_back(&entry);
        std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
            if (a->second.count != b->second.count) return a->second.count > b->second.count;
            return a->second.first_seen < b->second.first_seen;
        });
        std::vector<std::string> ids;
        ids.reserve(order.size());
        for (const auto* entry : order) ids.push_back(entry->first);
        return Vocabulary(std::move(ids), max_rows);
    }

private:
    struct Count {
        std::uint64_t count;
        std::size_t first_seen;
    };
    std::unordered_map<std::string, Count> counts_;
    std::string key_;
};

/// The row capacity of each table; 0 = unbounded (every training id owns a row).
struct TableCapacities {
    std::size_t terms = 0;
    std::size_t items = 0;
    std::size_t brands = 0;
    std::size_t categories = 0;
    std::size_t shops = 0;

    std::size_t operator[](Table t) const {
        switch (t) {
            case Table::term: return terms;
            case Table::item: return items;
            case Table::brand: return brands;
            case Table::category: return categories;
            case Table::shop: return shops;
        }
        return 0;
    }
};

/// How many ids a mapping looked up per table, and how many of them the vocabularies did
/// not know (they map to row 0). Serving counts them to tell a caller when traffic has
/// drifted away from what the model was trained on; unknown ids are never an error.
struct IdCounts {
    std::array<std::size_t, kTableCount> looked_up{};
    std::array<std::size_t, kTableCount> unknown{};

    void add(Table t, bool known) {
        ++looked_up[static_cast<std::size_t>(t)];
        if (!known) ++unknown[static_cast<std::size_t>(t)];
    }
    void merge(const IdCounts& other) {
        for (std::size_t t = 0; t < looked_up.size(); ++t) {
            looked_up[t] += other.looked_up[t];
            unknown[t] += other.unknown[t];
        }
    }
    std::size_t total_looked_up() const { return sum(looked_up); }
    std::size_t total_unknown() const { return sum(unknown); }
    /// unknown / looked_up over every table; 0 when nothing was looked up.
    double unknown_fraction() const {
        const std::size_t n = total_looked_up();
        return n == 0 ? 0.0 : static_cast<double>(total_unknown()) / static_cast<double>(n);
    }
    /// "12 of 340 ids unknown (terms 3 of 40, items 9 of 300)": the tables with unknown ids.
    std::string summary() const {
        std::string tables;
        for (std::size_t t = 0; t < looked_up.size(); ++t) {
            if (unknown[t] == 0) continue;
            tables += (tables.empty() ? "" : ", ") + std::string(kTableNames[t]) + " " + std::to_string(unknown[t]) +
                      " of " + std::to_string(looked_up[t]);
        }
        std::string line = std::to_string(total_unknown()) + " of " + std::to_string(total_looked_up()) + " ids unknown";
        return tables.empty() ? line : line + " (" + tables + ")";
    }

private:
    static std::size_t sum(const std::array<std::size_t, kTableCount>& a) {
        std::size_t n = 0;
        for (std::size_t v : a) n += v;
        return n;
    }
};

/// One vocabulary per table, indexed by Table.
struct Vocabularies {
    std::array<Vocabulary, kTableCount> tables;

    const Vocabulary& operator[](Table t) const { return tables[static_cast<std::size_t>(t)]; }
    Vocabulary& operator[](Table t) { return tables[static_cast<std::size_t>(t)]; }

    /// Writes `dir/terms.vocab`, `dir/items.vocab`, ... (kTableNames), creating `dir`.
    void save_dir(const std::string& dir) const {
        std::filesystem::create_directories(dir);
        for (int t = 0; t < kTableCount; ++t) tables[static_cast<std::size_t>(t)].save_file(path_in(dir, t));
    }

    /// The row of `id` in table `t`; an id that is not empty counts in `counts` (when given)
    /// as looked up, and as unknown when it maps to row 0. An empty id is a missing field.
    Row row(Table t, std::string_view id, IdCounts* counts) const {
        const Row r = (*this)[t].row(id);
        if (counts && !id.empty()) counts->add(t, r != kUnknownRow);
        return r;
    }

    static Vocabularies load_dir(const std::string& dir) {
        Vocabularies v;
        for (int t = 0; t < kTableCount; ++t)
            v.tables[static_cast<std::size_t>(t)] = Vocabulary::load_file(path_in(dir, t));
        return v;
    }

private:
    static std::string path_in(const std::string& dir, int t) {
        return (std::filesystem::path(dir) / (std::string(kTableNames[t]) + ".vocab")).string();
    }
};

/// A builder per table, fed together during the training pass.
struct VocabularyBuilders {
    std::array<VocabularyBuilder, kTableCount> tables;

    VocabularyBuilder& operator[](Table t) { return tables[static_cast<std::size_t>(t)]; }

    Vocabularies build(const TableCapacities& capacity) const {
        Vocabularies v;
        for (int t = 0; t < kTableCount; ++t)
            v.tables[static_cast<std::size_t>(t)] =
                tables[static_cast<std::size_t>(t)].build(capacity[static_cast<Table>(t)]);
        return v;
    }
};

}  // namespace piano::data
