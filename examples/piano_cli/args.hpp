// args.hpp: the command line of one subcommand, declared as a table of options.
//
// Each subcommand lists its options once (name, placeholder, default, help); that list
// both parses `--name value` / `--name=value` and prints `--help`, so the two cannot
// disagree. Every mistake is a UsageError, which main() turns into exit code 2.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace piano_cli {

/// A malformed command line: unknown option, missing value, value out of range.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Option {
    std::string name;           // without the leading "--"
    std::string placeholder;    // the value's name in --help, e.g. "DIR"; empty: a switch, no value
    std::string default_value;  // empty with `required` or when absent means "not set"
    std::string help;
    bool required = false;
};

struct CommandSpec {
    std::string name;     // "train"
    std::string summary;  // one line, shown by `piano --help` and atop `piano train --help`
    std::string details;  // paragraphs after the option list (outputs, examples)
    std::vector<Option> options;
};

/// The values of one parsed command line; typed getters check range and throw UsageError.
class Args {
public:
    Args(const CommandSpec& spec, std::map<std::string, std::string> values, std::set<std::string> given)
        : command_(spec.name), values_(std::move(values)), given_(std::move(given)) {}

    /// A value, given or by default.
    bool has(const std::string& name) const { return values_.count(name) > 0; }
    /// Given on the command line (not a default): what overrides a --config file.
    bool given(const std::string& name) const { return given_.count(name) > 0; }
    /// A switch (an option without a value) was given.
    bool flag(const std::string& name) const { return given(name); }

    std::string str(const std::string& name) const {
        const auto it = values_.find(name);
        return it == values_.end() ? std::string() : it->second;
    }

    long integer(const std::string& name, long minimum, long maximum) const {
        const std::string text = str(name);
        long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < minimum || value > maximum)
            throw UsageError(command_ + " --" + name + ": expected an integer in [" + std::to_string(minimum) + ", " +
                             std::to_string(maximum) + "], got '" + text + "'");
        return value;
    }

    double real(const std::string& name, double minimum, double maximum) const {
        const std::string text = str(name);
        std::size_t used = 0;
        double value = 0.0;
        try {
            value = std::stod(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != text.size() || !(value >= minimum && value <= maximum))
            throw UsageError(command_ + " --" + name + ": expected a number in [" + std::to_string(minimum) + ", " +
                             std::to_string(maximum) + "], got '" + text + "'");
        return value;
    }

    /// A comma-separated list: "dnn,piano" -> {"dnn", "piano"}; empty items are dropped.
    std::vector<std::string> list(const std::string& name) const {
        std::vector<std::string> items;
        std::string item;
        for (char c : str(name) + ",") {
            if (c != ',') {
                item += c;
            } else if (!item.empty()) {
                items.push_back(item);
                item.clear();
            }
        }
        return items;
    }

private:
    std::string command_;
    std::map<std::string, std::string> values_;
    std::set<std::string> given_;
};

inline void print_help(const CommandSpec& spec, std::ostream& out) {
    out << "usage: piano " << spec.name << " [options]\n\n" << spec.summary << "\n\noptions:\n";
    for (const Option& o : spec.options) {
        std::string left = "  --" + o.name + " " + o.placeholder;
        left.resize(std::max<std::size_t>(left.size() + 2, 26), ' ');
        out << left << o.help;
        if (o.required) out << " (required)";
        else if (!o.default_value.empty()) out << " (default: " << o.default_value << ")";
        out << '\n';
    }
    out << "  --help                  show this help and exit\n";
    if (!spec.details.empty()) out << '\n' << spec.details;
}

/// Parses `argv` (the words after the subcommand) against `spec`. Returns nothing when
/// --help was asked for (the help is then on `out`); otherwise the values, defaults filled in.
inline std::optional<Args> parse(const CommandSpec& spec, const std::vector<std::string>& argv, std::ostream& out) {
    std::map<std::string, std::string> values;
    std::set<std::string> given;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& word = argv[i];
        if (word == "--help" || word == "-h") {
            print_help(spec, out);
            return std::nullopt;
        }
        if (word.rfind("--", 0) != 0)
            throw UsageError(spec.name + ": unexpected argument '" + word + "' (see piano " + spec.name + " --help)");
        const std::size_t eq = word.find('=');
        const std::string name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        const Option* option = nullptr;
        for (const Option& o : spec.options)
            if (o.name == name) option = &o;
        if (!option) throw UsageError(spec.name + ": unknown option '--" + name + "' (see piano " + spec.name + " --help)");
        given.insert(name);
        if (option->placeholder.empty()) {
            if (eq != std::string::npos) throw UsageError(spec.name + ": --" + name + " takes no value");
            values[name] = "1";
        } else if (eq != std::string::npos) {
            values[name] = word.substr(eq + 1);
        } else if (i + 1 < argv.size()) {
            values[name] = argv[++i];
        } else {
            throw UsageError(spec.name + ": --" + name + " needs a value " + option->placeholder);
        }
    }
    for (const Option& o : spec.options) {
        if (values.count(o.name)) continue;
        if (o.required) throw UsageError(spec.name + ": --" + o.name + " " + o.placeholder + " is required");
        if (!o.default_value.empty()) values[o.name] = o.default_value;
    }
    return Args(spec, std::move(values), std::move(given));
}

}  // namespace piano_cli
