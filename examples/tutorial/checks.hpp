// examples/tutorial/checks.hpp: how a tutorial program states its chapter's claims.
//
// Every chapter claims something ("the loss falls", "the gradient matches"). A program
// checks each claim as it goes, printing it with [ok] or [FAILED], and main returns
// checks.finish(): non-zero when any claim failed. The programs run as tests, so a
// chapter whose claim stops holding fails the build.
#pragma once

#include <cstdio>
#include <string>

namespace tutorial {

/// `x` with `decimals` digits after the point, for claims that quote a measured number.
inline std::string fixed(double x, int decimals = 3) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, x);
    return buffer;
}

class Checks {
public:
    /// Prints the claim with its verdict; returns `holds`.
    bool operator()(bool holds, const std::string& claim) {
        std::printf("[%s] %s\n", holds ? "ok" : "FAILED", claim.c_str());
        ++count_;
        if (!holds) ++failed_;
        return holds;
    }

    /// Prints a summary; returns the exit status for main (0 when every claim held).
    int finish() const {
        if (failed_ == 0) {
            std::printf("all %d claims hold\n", count_);
            return 0;
        }
        std::printf("%d of %d claims FAILED\n", failed_, count_);
        return 1;
    }

private:
    int count_ = 0;
    int failed_ = 0;
};

}  // namespace tutorial
