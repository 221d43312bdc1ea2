// examples/tutorial/heatmap_svg.hpp: a labelled heatmap of weights in [0, 1], as SVG.
//
// One rectangle per cell, shaded from white (0) to dark blue (1), with the value printed
// inside; row labels on the left, column labels above. Plain text out, no dependencies:
// open the file in any browser.
#pragma once

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <piano/core/tensor.hpp>

namespace tutorial {

struct Heatmap {
    std::string title;
    std::vector<std::string> row_labels;     // [R]
    std::vector<std::string> column_labels;  // [C]
    piano::Matrix<double> values;            // [R,C], each in [0, 1]
};

namespace detail {

inline std::string escape_xml(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

inline std::string number(double x, const char* format) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, x);
    return buffer;
}

}  // namespace detail

/// The SVG text of `map`. std::invalid_argument if the labels do not match the values.
inline std::string heatmap_svg(const Heatmap& map) {
    const auto rows = static_cast<piano::Index>(map.row_labels.size());
    const auto cols = static_cast<piano::Index>(map.column_labels.size());
    if (map.values.rows() != rows || map.values.cols() != cols) {
        throw std::invalid_argument("heatmap_svg: " + std::to_string(rows) + " row and " + std::to_string(cols) +
                                    " column labels for values " +
                                    piano::shape_string(map.values.rows(), map.values.cols()));
    }
    // Layout in pixels: 7 px per character is enough for a 12 px sans-serif font, so
    // every cell is wide enough for the longest column label.
    const int char_w = 7, cell_h = 34;
    std::size_t longest_row = 0, longest_column = 4;
    for (const auto& label : map.row_labels) longest_row = std::max(longest_row, label.size());
    for (const auto& label : map.column_labels) longest_column = std::max(longest_column, label.size());
    const int cell_w = 16 + char_w * static_cast<int>(longest_column);
    const int left = 20 + char_w * static_cast<int>(longest_row), top = 70;
    const int width = left + cell_w * static_cast<int>(cols) + 20, height = top + cell_h * static_cast<int>(rows) + 20;

    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                      std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    svg += "<text x=\"10\" y=\"22\" font-size=\"15\">" + detail::escape_xml(map.title) + "</text>\n";
    for (piano::Index c = 0; c < cols; ++c) {
        const int x = left + cell_w * static_cast<int>(c) + cell_w / 2;
        svg += "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(top - 10) + "\" text-anchor=\"middle\">" +
               detail::escape_xml(map.column_labels[static_cast<std::size_t>(c)]) + "</text>\n";
    }
    for (piano::Index r = 0; r < rows; ++r) {
        const int y = top + cell_h * static_cast<int>(r);
        svg += "<text x=\"" + std::to_string(left - 8) + "\" y=\"" + std::to_string(y + cell_h / 2 + 4) +
               "\" text-anchor=\"end\">" + detail::escape_xml(map.row_labels[static_cast<std::size_t>(r)]) + "</text>\n";
        for (piano::Index c = 0; c < cols; ++c) {
            const double v = std::clamp(map.values(r, c), 0.0, 1.0);
            // White (255,255,255) at 0 to dark blue (8,48,107) at 1.
            const auto channel = [v](int dark) { return std::to_string(static_cast<int>(255 + (dark - 255) * v)); };
            const int x = left + cell_w * static_cast<int>(c);
            svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
                   std::to_string(cell_w) + "\" height=\"" + std::to_string(cell_h) + "\" fill=\"rgb(" + channel(8) +
                   "," + channel(48) + "," + channel(107) + ")\" stroke=\"#ccc\"/>\n";
            svg += "<text x=\"" + std::to_string(x + cell_w / 2) + "\" y=\"" + std::to_string(y + cell_h / 2 + 4) +
                   "\" text-anchor=\"middle\" fill=\"" + (v > 0.5 ? "white" : "black") + "\">" +
                   detail::number(map.values(r, c), "%.2f") + "</text>\n";
        }
    }
    return svg + "</svg>\n";
}

/// Writes heatmap_svg(map) to `path`; std::runtime_error naming the path if that fails.
inline void write_heatmap_svg(const std::string& path, const Heatmap& map) {
    std::ofstream out(path, std::ios::trunc);
    out << heatmap_svg(map);
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace tutorial
