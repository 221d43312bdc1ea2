// commands.hpp: the subcommands of `piano`, one .cpp file each.
//
// A subcommand is its option table (what --help prints and the parser accepts) and a run
// function that gets the parsed options and returns the exit code. Errors are exceptions;
// main() turns them into one-line messages and the exit codes of common.hpp.
#pragma once

#include <vector>

#include "args.hpp"

namespace piano_cli {

struct Command {
    CommandSpec (*spec)();
    int (*run)(const Args&);
};

CommandSpec simulate_spec();
int run_simulate(const Args& args);
CommandSpec train_spec();
int run_train(const Args& args);
CommandSpec eval_spec();
int run_eval(const Args& args);
CommandSpec rerank_spec();
int run_rerank(const Args& args);
CommandSpec compare_spec();
int run_compare(const Args& args);
CommandSpec report_spec();
int run_report(const Args& args);

/// In the order `piano --help` lists them: the order of a first session.
inline std::vector<Command> all_commands() {
    return {{simulate_spec, run_simulate}, {train_spec, run_train},     {eval_spec, run_eval},
            {rerank_spec, run_rerank},     {compare_spec, run_compare}, {report_spec, run_report}};
}

}  // namespace piano_cli
