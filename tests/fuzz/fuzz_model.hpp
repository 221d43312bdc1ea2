// tests/fuzz/fuzz_model.hpp: the small PIANO model the fuzz targets run inputs through and
// whose checkpoints seed the checkpoint corpus. Small enough that its JSON checkpoint is a
// few kilobytes (libFuzzer mutates short inputs far better than long ones), with every
// parameter kind of the real model: embeddings, QDIR, the IAN, one encoder layer, heads.
#pragma once

#include <piano/model/config.hpp>

namespace piano::fuzz {

inline PianoConfig fuzz_config() {
    PianoConfig c = PianoConfig::tiny();
    c.d_model = 4;
    c.heads = 1;
    c.layers = 1;
    c.ffn_dim = 8;
    c.term_rows = 4;
    c.item_rows = 8;
    c.brand_rows = 4;
    c.category_rows = 4;
    c.shop_rows = 4;
    c.max_positions = 4;
    c.gap_buckets = 4;
    return c;
}

}  // namespace piano::fuzz
