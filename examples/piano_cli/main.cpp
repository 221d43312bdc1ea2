// piano: the command-line tool. Simulates music-search logs, trains PIANO and its
// baselines, evaluates and compares them, reranks new requests, and writes a report.
//
//   piano simulate --out data/sim
//   piano train    --data data/sim --model piano --out models/piano
//   piano eval     --data data/sim --model models/piano
//   piano rerank   --model models/piano --requests data/sim/test.txt --format jsonl
//   piano compare  --data data/sim --out runs/compare
//   piano report   --compare runs/compare --out report
//
// Every failure ends in one line on stderr, `piano: error: <message>`, and an exit code
// that says which kind of failure it was (common.hpp, docs/cli.md).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <piano/version.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace {

void print_overview(std::ostream& out) {
    out << "usage: piano <command> [options]\n\ncommands:\n";
    for (const auto& command : piano_cli::all_commands()) {
        const piano_cli::CommandSpec spec = command.spec();
        std::string name = "  " + spec.name;
        name.resize(12, ' ');
        out << name << spec.summary << '\n';
    }
    out << "\n`piano --version` prints the version. `piano <command> --help` shows a command's options.\nExit codes: 0 success, 1 other error, "
           "2 usage, 3 data, 4 checkpoint, 5 config, 6 shape, 7 training diverged.\n";
}

int run(const std::vector<std::string>& words) {
    if (words.empty()) {
        print_overview(std::cerr);
        return piano_cli::kUsageError;
    }
    if (words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
        print_overview(std::cout);
        return piano_cli::kOk;
    }
    if (words[0] == "--version") {
        std::cout << "piano " << piano::kVersion << '\n';
        return piano_cli::kOk;
    }
    for (const auto& command : piano_cli::all_commands()) {
        const piano_cli::CommandSpec spec = command.spec();
        if (spec.name != words[0]) continue;
        const auto args = piano_cli::parse(spec, {words.begin() + 1, words.end()}, std::cout);
        return args ? command.run(*args) : piano_cli::kOk;
    }
    throw piano_cli::UsageError("unknown command '" + words[0] + "' (see piano --help)");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run({argv + 1, argv + argc});
    } catch (const std::exception& e) {
        return piano_cli::report_failure(e);
    }
}
