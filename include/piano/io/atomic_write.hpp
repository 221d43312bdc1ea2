// piano/io/atomic_write.hpp: a small text file written so that a crash or a full disk
// never leaves half of it behind.
#pragma once

#include <filesystem>
#include <fstream>
#include <ios>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace piano {

/// Writes `text` to `path` through `path.tmp.<random>` in the same folder, renamed over
/// `path` once written whole: `path` then holds either its old content or all of `text`,
/// never a part. Throws std::runtime_error naming the file on failure, leaving no
/// temporary file behind.
inline void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
    std::random_device random;
    std::ostringstream suffix;
    suffix << ".tmp." << std::hex << random() << random();
    std::filesystem::path temp = path;
    temp += suffix.str();
    std::error_code ec;
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) {
            std::filesystem::remove(temp, ec);
            throw std::runtime_error("cannot write '" + path.string() + "' (is the disk full, or the folder missing?)");
        }
    }
    std::filesystem::rename(temp, path, ec);
    if (ec) {
        const std::string reason = ec.message();
        std::filesystem::remove(temp, ec);
        throw std::runtime_error("cannot write '" + path.string() + "': " + reason);
    }
}

}  // namespace piano
