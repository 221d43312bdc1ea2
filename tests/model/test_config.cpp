// PianoConfig's string form: every value a config can hold survives to_map -> from_map.
#include <catch2/catch.hpp>

#include <piano/model/config.hpp>

#include <limits>
#include <string>
#include <vector>

using piano::PianoConfig;

TEST_CASE("a config at the extremes of its integer fields survives the round trip", "[config][round_trip]") {
    PianoConfig c;
    c.seed = std::numeric_limits<unsigned long>::max();  // 18446744073709551615
    c.d_model = std::numeric_limits<long>::max() - 1;    // divisible by heads = 2
    c.heads = 2;
    c.item_rows = std::numeric_limits<long>::max();
    c.layers = 0;
    c.dense_features = 0;
    c.dropout = 0.999;
    c.lambda = 1.0 / 3.0;
    c.weight_list = 1e6;
    c.weight_ctr = std::numeric_limits<double>::denorm_min();
    const PianoConfig back = PianoConfig::from_map(c.to_map());
    CHECK(back.seed == c.seed);
    CHECK(back.d_model == c.d_model);
    CHECK(back.item_rows == c.item_rows);
    CHECK(back.layers == 0);
    CHECK(back.dropout == c.dropout);
    CHECK(back.lambda == c.lambda);
    CHECK(back.weight_list == c.weight_list);
    CHECK(back.weight_ctr == c.weight_ctr);
    CHECK(back.to_map() == c.to_map());

    CHECK(PianoConfig::from_map({{"seed", "0"}}).seed == 0);
    CHECK_THROWS_WITH(PianoConfig::from_map({{"seed", "-1"}}), Catch::Contains("expected an integer >= 0, got '-1'"));
    CHECK_THROWS_WITH(PianoConfig::from_map({{"seed", "18446744073709551616"}}), Catch::Contains("above the maximum"));
}

TEST_CASE("every value from_map accepts for any key is written back by to_map as itself", "[config][round_trip]") {
    // Candidates at and past the edges of every field type; whatever from_map accepts for a
    // key must come back unchanged through to_map and from_map. Keys come from to_map, so
    // a key added later is covered without a change here.
    const std::vector<std::string> candidates = {
        "0", "1", "2", "-1", "0.5", "0.999", "1e6", "1e-300", "4.9406564584124654e-324", "0.1",
        "9223372036854775807", "9223372036854775806", "-9223372036854775808", "18446744073709551615",
        "true", "false", "fixed", "uncertainty", ""};
    int accepted = 0;
    for (const auto& key_value : PianoConfig{}.to_map()) {
        const std::string& key = key_value.first;
        for (const auto& candidate : candidates) {
            PianoConfig parsed;
            try {
                parsed = PianoConfig::from_map({{key, candidate}, {"heads", "1"}});
            } catch (const piano::ConfigError&) {
                continue;  // refused when read is fine; only what is accepted must survive
            }
            ++accepted;
            INFO(key << " = '" << candidate << "' written as '" << parsed.to_map().at(key) << "'");
            PianoConfig again;
            REQUIRE_NOTHROW(again = PianoConfig::from_map(parsed.to_map()));
            CHECK(again.to_map() == parsed.to_map());
        }
    }
    CHECK(accepted > 50);
}
