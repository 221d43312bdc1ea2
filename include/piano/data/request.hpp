// piano/data/request.hpp: one search request as the model sees it.
//
// Every id is already a row of an embedding table (see vocabulary.hpp): row 0 is the
// unknown row of every table, so an unseen or missing id is an ordinary row, never an
// error. A Request holds one list; a batch of them is stacked in batch.hpp.
//
//   query       [T]         term rows of the current query (T may be 0)
//   history     [H]         past events, oldest first (H may be 0)
//   candidates  [L]         the first-stage list, in first-stage order (L >= 1), or in a
//                           seeded random order when first_stage_order is false
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace piano::data {

/// A row of an embedding table. 32 bits: a dataset holds millions of them.
using Row = std::int32_t;

/// The row every table reserves for ids it does not know (unseen, missing, empty).
inline constexpr Row kUnknownRow = 0;

/// The embedding tables a model needs. The four category levels share one table, so an id
/// means the same genre whichever level it appears at.
enum class Table : int { term = 0, item, brand, category, shop };
inline constexpr int kTableCount = 5;
inline constexpr const char* kTableNames[kTableCount] = {"terms", "items", "brands", "categories", "shops"};

/// The categorical rows of one item: its own id and its metadata fields. For music,
/// brand is the artist, cate1..cate4 the genre levels (broad to narrow), shop the label.
struct ItemFields {
    Row item = kUnknownRow;
    Row brand = kUnknownRow;
    Row cate1 = kUnknownRow;
    Row cate2 = kUnknownRow;
    Row cate3 = kUnknownRow;
    Row cate4 = kUnknownRow;
    Row shop = kUnknownRow;

    static constexpr int kCount = 7;

    /// Field k (0..kCount-1) in the order above, so an encoder can loop over the fields.
    Row operator[](int k) const;
    Row& operator[](int k);
};

inline constexpr Row ItemFields::*kItemFieldMembers[ItemFields::kCount] = {
    &ItemFields::item,  &ItemFields::brand, &ItemFields::cate1, &ItemFields::cate2,
    &ItemFields::cate3, &ItemFields::cate4, &ItemFields::shop};
inline Row ItemFields::operator[](int k) const { return this->*kItemFieldMembers[k]; }
inline Row& ItemFields::operator[](int k) { return this->*kItemFieldMembers[k]; }

/// The table each field of ItemFields reads, in field order.
inline constexpr Table kItemFieldTables[ItemFields::kCount] = {
    Table::item, Table::brand, Table::category, Table::category, Table::category, Table::category, Table::shop};
inline constexpr const char* kItemFieldNames[ItemFields::kCount] = {"item",  "brand", "cate1", "cate2",
                                                                    "cate3", "cate4", "shop"};

/// What the user did in a past event. JDsearch's codes: CLICK, CART, ORD, FLW.
enum class Behavior : std::uint8_t {
    click = 0,  // CLICK
    cart,       // CART: add to cart; for music, a favourite
    purchase,   // ORD: an order; for music, a purchase or full play
    follow,     // FLW: follows the shop (label) or artist
};
inline constexpr int kBehaviorCount = 4;
/// The code of each Behavior in JDsearch files, in enum order.
inline constexpr const char* kBehaviorCodes[kBehaviorCount] = {"CLICK", "CART", "ORD", "FLW"};

struct HistoryEvent {
    std::vector<Row> query;  // [T_j] term rows; empty when has_query is false
    bool has_query = false;  // false: a behaviour with no query (`-1` in the file)
    ItemFields fields;
    Behavior type = Behavior::click;
    std::int64_t gap = 0;  // time from this event to the current search (file's unit), >= 0
};

/// The texts of a product a query can match, in products-file order (jdsearch.hpp): the
/// song's name, the artist's name and the four category names.
inline constexpr int kProductTextCount = 6;

struct Candidate {
    ItemFields fields;
    std::vector<float> dense;  // [D] optional dense features; D is the same for a whole list
    // Per product text, the share of the query's terms found in it (jdsearch.hpp's
    // query_match; 0 where the product or its text is unknown).
    std::array<float, kProductTextCount> query_match{};
    int click = 0;             // 1 when label >= 1
    int conv = 0;              // 1 when label >= the conversion threshold (implies click)
    float label = 0.0f;        // the raw graded label: 0 none, 1 click, 2 cart, 3 purchase
};

/// Where a record came from, so later errors can point at the input line.
struct SourcePos {
    std::string file;
    long line = 0;
};

struct Request {
    std::vector<Row> query;             // [T]
    std::vector<HistoryEvent> history;  // [H], oldest first
    std::vector<Candidate> candidates;  // [L], first-stage order
    SourcePos source;
    // false: the order of `candidates` carries no first-stage information (the log's own
    // order gave the labels away and was shuffled, see candidate_order.hpp), so a model
    // must not read positions from it.
    bool first_stage_order = true;
};

}  // namespace piano::data
