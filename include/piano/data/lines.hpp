// piano/data/lines.hpp: the line loop every text reader of piano shares.
#pragma once

#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "piano/core/error.hpp"

namespace piano::data::detail {

/// The path that names standard input, as in most command-line tools.
inline constexpr const char* kStandardInput = "-";

/// Calls fn(line, line_no) for every data line of `path` (kStandardInput: standard input,
/// read once): the `\r` of a `\r\n` end is dropped, blank lines are skipped, and line 1 is
/// skipped when it starts with a non-empty `header_prefix` (a header). Reads one line at a
/// time.
template <typename Fn>
void for_each_data_line(const std::string& path, std::string_view header_prefix, Fn&& fn) {
    std::ifstream file;
    if (path != kStandardInput) {
        file.open(path, std::ios::binary);
        if (!file) throw DataError(path, 0, "file", "cannot open");
    }
    std::istream& in = path == kStandardInput ? std::cin : file;
    std::string line;
    long line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (line_no == 1 && !header_prefix.empty() &&
            std::string_view(line).substr(0, header_prefix.size()) == header_prefix)
            continue;
        fn(std::string_view(line), line_no);
    }
    if (in.bad()) throw DataError(path, line_no, "file", "read error");
}

}  // namespace piano::data::detail
