// examples/common/svg.hpp: just enough SVG for the examples: line charts and labelled
// heatmaps (the CLI's report and the tutorial's QDIR chapter).
//
// Plain strings in, a self-contained SVG document out (no scripts, no external fonts), so
// the files render the same in a browser, on GitHub and in an image viewer. Layout is
// fixed-size and computed here; nothing is measured, so long labels are cut, not wrapped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace svg {

/// One line of a chart; x and y have the same length. NaN y values leave a gap.
struct Series {
    std::string name;
    std::vector<double> x, y;
};

/// A horizontal dashed line across a chart at `y`, labelled in the legend.
struct Reference {
    std::string name;
    double y;
};

struct LineChart {
    std::string title, x_label, y_label;
    std::vector<Series> series;
    std::vector<Reference> references;
    int width = 640, height = 400;
};

/// A matrix of values in [0, 1] (attention weights), printed in % in each cell and shaded
/// white (0) to blue (`scale_max`), with a colour bar. Figures meant to be compared share
/// one `scale_max`; 0 means this map's largest value. `highlight_cols` marks columns whose
/// labels are drawn in red and bold.
struct Heatmap {
    std::string title, subtitle;
    std::vector<std::string> row_labels, col_labels;
    std::vector<std::vector<double>> values;  // [rows][cols]
    std::vector<bool> highlight_cols;         // empty, or one flag per column
    double scale_max = 0.0;
};

namespace detail {

inline std::string escape(const std::string& text) {
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

inline std::string cut(const std::string& text, std::size_t max_chars) {
    return text.size() <= max_chars ? text : text.substr(0, max_chars - 1) + "~";
}

// Numbers with a fixed format: std::to_string would print six decimals everywhere.
inline std::string num(double v, const char* format = "%.1f") {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, v);
    return buffer;
}

inline std::string text(double x, double y, const std::string& content, const std::string& attributes = "") {
    return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" " + attributes + ">" + escape(content) + "</text>\n";
}

inline std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
    return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " +
           style + "/>\n";
}

inline std::string document(int width, int height, const std::string& body) {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
           std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
           "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" +
           body + "</svg>\n";
}

// Tick positions at 1, 2 or 5 times a power of ten, about `target` of them over [lo, hi].
inline std::vector<double> ticks(double lo, double hi, int target) {
    const double raw = (hi - lo) / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude;
    for (double m : {2.0, 5.0, 10.0})
        if (raw > step) step = m * magnitude;
    std::vector<double> out;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(t);
    return out;
}

// The tick label format: enough decimals to tell neighbouring ticks apart.
inline const char* tick_format(const std::vector<double>& t) {
    const double step = t.size() > 1 ? t[1] - t[0] : 1.0;
    return step >= 1.0 ? "%.0f" : step >= 0.1 ? "%.1f" : step >= 0.01 ? "%.2f" : "%.3f";
}

// Eight colours that stay distinct for the colour-blind (Okabe and Ito, 2008).
inline const char* colour(std::size_t k) {
    static const char* const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                          "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return palette[k % 8];
}

}  // namespace detail

/// The chart as an SVG document: axes with ticks, one polyline (and dots) per series, and
/// a legend on the right. An empty chart (no finite point) still renders its frame.
inline std::string render(const LineChart& chart) {
    using namespace detail;
    const double left = 64, right = 150, top = 40, bottom = 50;
    const double plot_w = chart.width - left - right, plot_h = chart.height - top - bottom;

    double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
    for (const Series& s : chart.series)
        for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
            x_lo = std::min(x_lo, s.x[i]);
            x_hi = std::max(x_hi, s.x[i]);
            y_lo = std::min(y_lo, s.y[i]);
            y_hi = std::max(y_hi, s.y[i]);
        }
    for (const Reference& r : chart.references)
        if (std::isfinite(r.y)) y_lo = std::min(y_lo, r.y), y_hi = std::max(y_hi, r.y);
    if (!(x_lo <= x_hi)) x_lo = 0, x_hi = 1, y_lo = std::min(y_lo, 0.0), y_hi = std::max(y_hi, 1.0);
    if (x_hi - x_lo < 1e-12) x_lo -= 0.5, x_hi += 0.5;  // one point: centre it
    const double pad = std::max(1e-6, (y_hi - y_lo) * 0.08);  // keep lines off the frame
    y_lo -= pad;
    y_hi += pad;

    auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
    auto py = [&](double y) { return top + (y_hi - y) / (y_hi - y_lo) * plot_h; };

    std::string body = text(chart.width / 2.0, 22, chart.title, "text-anchor=\"middle\" font-size=\"15\"");
    const std::vector<double> y_ticks = ticks(y_lo, y_hi, 5), x_ticks = ticks(x_lo, x_hi, 6);
    for (double t : y_ticks) {
        body += line(left, py(t), left + plot_w, py(t), "stroke=\"#e5e5e5\"");
        body += text(left - 6, py(t) + 4, num(t, tick_format(y_ticks)), "text-anchor=\"end\"");
    }
    for (double t : x_ticks) body += text(px(t), top + plot_h + 16, num(t, tick_format(x_ticks)), "text-anchor=\"middle\"");
    body += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_w) + "\" height=\"" +
            num(plot_h) + "\" fill=\"none\" stroke=\"#333\"/>\n";
    body += text(left + plot_w / 2, chart.height - 12, chart.x_label, "text-anchor=\"middle\"");
    body += text(16, top + plot_h / 2, chart.y_label,
                 "text-anchor=\"middle\" transform=\"rotate(-90 16 " + num(top + plot_h / 2) + ")\"");

    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const Series& s = chart.series[k];
        std::string points;
        auto flush = [&] {
            if (!points.empty())
                body += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(colour(k)) +
                        "\" points=\"" + points + "\"/>\n";
            points.clear();
        };
        for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
                flush();
                continue;
            }
            points += num(px(s.x[i])) + "," + num(py(s.y[i])) + " ";
            body += "<circle cx=\"" + num(px(s.x[i])) + "\" cy=\"" + num(py(s.y[i])) + "\" r=\"3\" fill=\"" +
                    colour(k) + "\"/>\n";
        }
        flush();
        const double ly = top + 10 + 18.0 * static_cast<double>(k);
        body += line(left + plot_w + 12, ly, left + plot_w + 32, ly,
                     "stroke-width=\"2\" stroke=\"" + std::string(colour(k)) + "\"");
        body += text(left + plot_w + 38, ly + 4, cut(s.name, 16));
    }
    for (std::size_t k = 0; k < chart.references.size(); ++k) {
        const Reference& r = chart.references[k];
        if (!std::isfinite(r.y)) continue;
        const std::string style = "stroke-width=\"1.5\" stroke=\"#555\" stroke-dasharray=\"6 4\"";
        body += line(left, py(r.y), left + plot_w, py(r.y), style);
        const double ly = top + 10 + 18.0 * static_cast<double>(chart.series.size() + k);
        body += line(left + plot_w + 12, ly, left + plot_w + 32, ly, style);
        body += text(left + plot_w + 38, ly + 4, cut(r.name, 16));
    }
    return document(chart.width, chart.height, body);
}

/// The heatmap as an SVG document: one cell per value with its number printed, row labels
/// on the left, column labels rotated above, and a title (and subtitle) on top.
inline std::string render(const Heatmap& map) {
    using namespace detail;
    const std::size_t rows = map.values.size(), cols = rows ? map.values.front().size() : 0;
    double largest = 1e-12;  // keeps an all-zero map white instead of dividing by zero
    for (const auto& row : map.values) {
        if (row.size() != cols) throw std::invalid_argument("svg::Heatmap: rows of different lengths");
        for (double v : row) largest = std::max(largest, v);
    }
    if (map.scale_max > 0) largest = map.scale_max;
    // Rotated column labels lean right past the last cell: label_room keeps them inside.
    // Titles are sized by a rough 7.5 px per character, enough for 12-15 px sans-serif.
    std::size_t longest_row_label = 0;
    for (const auto& label : map.row_labels) longest_row_label = std::max(longest_row_label, label.size());
    const double cell = 34, top = 190, label_room = 130, bar_room = 70;
    const double left = std::max(90.0, 16 + 7.0 * static_cast<double>(longest_row_label));
    const double title_width = 20 + 7.5 * static_cast<double>(std::max(map.title.size(), map.subtitle.size()));
    const int width =
        static_cast<int>(std::max(left + cell * static_cast<double>(cols) + label_room + bar_room, title_width));
    const int height = static_cast<int>(top + cell * static_cast<double>(std::max<std::size_t>(rows, 3)) + 20);
    // White (0) to a deep blue (1), linear in each channel.
    auto shade = [](double v) {
        char fill[8];
        std::snprintf(fill, sizeof fill, "#%02x%02x%02x", static_cast<int>(std::lround(255 - v * (255 - 8))),
                      static_cast<int>(std::lround(255 - v * (255 - 69))),
                      static_cast<int>(std::lround(255 - v * (255 - 148))));
        return std::string(fill);
    };

    std::string body = text(10, 20, map.title, "font-size=\"15\"");
    body += text(10, 38, map.subtitle, "fill=\"#555\"");
    for (std::size_t c = 0; c < cols; ++c) {
        const bool marked = c < map.highlight_cols.size() && map.highlight_cols[c];
        const double x = left + cell * (static_cast<double>(c) + 0.5), y = top - 6;
        const std::string label = c < map.col_labels.size() ? cut(map.col_labels[c], 24) : "";
        body += text(x, y, label,
                     "transform=\"rotate(-50 " + num(x) + " " + num(y) + ")\" font-size=\"11\"" +
                         (marked ? " fill=\"#c00\" font-weight=\"bold\"" : ""));
    }
    for (std::size_t r = 0; r < rows; ++r) {
        const double y = top + cell * static_cast<double>(r);
        body += text(left - 6, y + cell / 2 + 4, r < map.row_labels.size() ? map.row_labels[r] : "",
                     "text-anchor=\"end\"");
        for (std::size_t c = 0; c < cols; ++c) {
            const double v = std::clamp(map.values[r][c] / largest, 0.0, 1.0);
            const double x = left + cell * static_cast<double>(c);
            body += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(cell) + "\" height=\"" +
                    num(cell) + "\" fill=\"" + shade(v) + "\" stroke=\"#ddd\"/>\n";
            body += text(x + cell / 2, y + cell / 2 + 4, num(map.values[r][c] * 100, "%.0f"),
                         std::string("text-anchor=\"middle\" font-size=\"10\" fill=\"") + (v > 0.5 ? "white" : "#333") +
                             "\"");
        }
    }
    // The colour bar: ten steps from 0 to the scale's top, labelled in %.
    const double bar_x = left + cell * static_cast<double>(cols) + label_room, bar_h = 3 * cell;
    for (int step = 0; step < 10; ++step)
        body += "<rect x=\"" + num(bar_x) + "\" y=\"" + num(top + bar_h * (9 - step) / 10.0) + "\" width=\"14\" height=\"" +
                num(bar_h / 10.0 + 0.5) + "\" fill=\"" + shade((step + 0.5) / 10.0) + "\"/>\n";
    body += "<rect x=\"" + num(bar_x) + "\" y=\"" + num(top) + "\" width=\"14\" height=\"" + num(bar_h) +
            "\" fill=\"none\" stroke=\"#999\"/>\n";
    body += text(bar_x + 18, top + 8, num(largest * 100, "%.0f") + "%", "font-size=\"10\"");
    body += text(bar_x + 18, top + bar_h, "0%", "font-size=\"10\"");
    return document(width, height, body);
}

/// Writes `document` to `path`; throws std::runtime_error naming the path on failure.
inline void write_file(const std::string& path, const std::string& document) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << document;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace svg
