// piano/train/progress.hpp: what the trainer prints while it runs.
//
// Two kinds of output, chosen once per run:
//   bar:   on a terminal, one line redrawn in place with a carriage return,
//            epoch 2/5 [##########..........] 37/120  loss 0.5123  412 lists/s
//          throttled to about ten redraws a second, so fast steps cost no terminal I/O;
//   lines: anywhere else (a file, a pipe, a CI log), nothing per step, so the log holds
//          only the per-epoch lines and no carriage returns.
// Whole lines (the per-epoch summary) go through line() in both modes; in bar mode it
// first wipes the bar, so the summary never ends up glued to a half-drawn bar.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <locale>
#include <ostream>
#include <sstream>
#include <string>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace piano {

/// True when `out` is std::cout and standard output is a terminal. Any other stream (a
/// file, a string stream, std::cerr) counts as not a terminal: a carriage-return bar is
/// only safe where we know a human is watching.
inline bool is_terminal(const std::ostream& out) {
    if (&out != &std::cout) return false;
#if defined(_WIN32)
    return _isatty(_fileno(stdout)) != 0;
#else
    return isatty(fileno(stdout)) != 0;
#endif
}

class TrainingProgress {
public:
    /// `bar`: redraw a progress bar per step (see the top of this header); otherwise
    /// step() prints nothing.
    TrainingProgress(std::ostream& out, bool bar) : out_(out), bar_(bar) {}

    void start_epoch(int epoch, int epochs, std::size_t steps) {
        epoch_ = epoch;
        epochs_ = epochs;
        steps_ = steps;
        lists_ = 0;
        start_ = last_draw_ = std::chrono::steady_clock::now();
        drawn_ = 0;
    }

    /// After step `done` (1-based within the epoch) of a batch of `lists` requests, with
    /// `mean_loss` the epoch's running mean.
    void step(std::size_t done, std::size_t lists, double mean_loss) {
        lists_ += lists;
        if (!bar_) return;
        const auto now = std::chrono::steady_clock::now();
        if (done < steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        const double seconds = std::chrono::duration<double>(now - start_).count();
        constexpr std::size_t width = 20;
        const std::size_t filled = steps_ == 0 ? width : std::min(width, done * width / steps_);
        std::ostringstream s;
        s.imbue(std::locale::classic());
        s.setf(std::ios::fixed);
        s << "epoch " << epoch_ << '/' << epochs_ << " [" << std::string(filled, '#')
          << std::string(width - filled, '.') << "] " << done << '/' << steps_;
        s.precision(4);
        s << "  loss " << mean_loss;
        s.precision(0);
        if (seconds > 0) s << "  " << static_cast<double>(lists_) / seconds << " lists/s";
        draw(s.str());
    }

    /// Wipes the bar (if one is drawn) and prints `text` as a line of its own.
    void line(const std::string& text) {
        draw("");
        out_ << text << '\n';
        out_.flush();
    }

private:
    // Overwrites the current bar with `text`, padding with spaces over a longer old bar.
    void draw(const std::string& text) {
        if (!bar_ || (text.empty() && drawn_ == 0)) return;
        out_ << '\r' << text << std::string(drawn_ > text.size() ? drawn_ - text.size() : 0, ' ');
        if (text.empty()) out_ << '\r';
        out_.flush();
        drawn_ = text.size();
    }

    std::ostream& out_;
    bool bar_;
    int epoch_ = 0, epochs_ = 0;
    std::size_t steps_ = 0, lists_ = 0, drawn_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace piano
