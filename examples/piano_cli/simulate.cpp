// piano simulate: a music-search world written as JDsearch files (piano/data/simulator.hpp).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include <piano/data/simulator.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace piano_cli {

CommandSpec simulate_spec() {
    const piano::data::SimulatorOptions d;  // the defaults shown in --help are the library's
    const auto s = [](auto v) {
        std::ostringstream text;
        text << v;
        return text.str();
    };
    return {"simulate",
            "simulate music-search logs: products, train/valid/test requests and the true probabilities",
            "outputs (in --out):\n"
            "  products.txt, train.txt, valid.txt, test.txt   JDsearch files, read by train/eval/compare\n"
            "  truth.txt             true P(click) and P(conv | click) of every test candidate (the oracle)\n"
            "  online_truth.txt      true attraction P(click | examined) and P(conv | click), position-free\n"
            "  click_model.txt       the click model and its parameters (the online evaluation reads both)\n"
            "  ambiguous_terms.txt   the term ids whose meaning differs between users, one per line\n",
            {{"out", "DIR", "", "directory to write the data set into", true},
             {"users", "N", s(d.users), "users"},
             {"songs", "N", s(d.songs), "songs (>= artists and >= --max-list)"},
             {"artists", "N", s(d.artists), "artists (one ambiguous term per 10)"},
             {"genres", "N", s(d.genres), "genres (>= 2)"},
             {"requests", "N", s(d.requests), "logged searches, split 80/10/10 in time order"},
             {"min-list", "L", s(d.min_list_length), "shortest candidate list"},
             {"max-list", "L", s(d.max_list_length), "longest candidate list"},
             {"history", "H", s(d.max_history), "history events kept per request"},
             {"ambiguity", "P", s(d.ambiguity), "probability that a search uses one of the user's ambiguous terms"},
             {"click-model", "NAME", piano::data::ClickModel::name(d.clicks.kind),
              "pbm (position-based examination) or dbn (a cascade: a conversion ends the visit)"},
             {"position-bias", "ETA", s(d.clicks.position_bias), "pbm: P(examine position i) = (i+1)^-ETA"},
             {"persistence", "GAMMA", s(d.clicks.persistence), "dbn: P(go on to the next song | not satisfied)"},
             {"seed", "N", s(d.seed), "random seed; the same options give byte-identical files"}}};
}

int run_simulate(const Args& args) {
    constexpr long kMax = 100000000;
    piano::data::SimulatorOptions options;
    options.users = static_cast<int>(args.integer("users", 1, kMax));
    options.songs = static_cast<int>(args.integer("songs", 1, kMax));
    options.artists = static_cast<int>(args.integer("artists", 1, kMax));
    options.genres = static_cast<int>(args.integer("genres", 2, kMax));
    options.requests = static_cast<int>(args.integer("requests", 1, kMax));
    options.min_list_length = static_cast<int>(args.integer("min-list", 1, kMax));
    options.max_list_length = static_cast<int>(args.integer("max-list", 1, kMax));
    options.max_history = static_cast<int>(args.integer("history", 0, kMax));
    options.ambiguity = args.real("ambiguity", 0.0, 1.0);
    options.clicks.kind = piano::data::ClickModel::parse_kind(args.str("click-model"));
    options.clicks.position_bias = args.real("position-bias", 0.0, 100.0);
    options.clicks.persistence = args.real("persistence", 0.0, 1.0);
    options.seed = static_cast<std::uint64_t>(args.integer("seed", 0, std::numeric_limits<long>::max()));
    const fs::path out = args.str("out");

    const auto start = std::chrono::steady_clock::now();
    const piano::data::Simulation sim = piano::data::simulate_music_search(options);
    piano::data::write_jdsearch_files(sim, out);
    // Not part of the JDsearch format: lets `piano report` pick requests whose query is
    // ambiguous, the ones QDIR exists for.
    std::ofstream ambiguous(out / "ambiguous_terms.txt");
    for (const auto& alias : sim.world.aliases) ambiguous << alias.term << '\n';
    if (!ambiguous.flush()) throw std::runtime_error("cannot write " + (out / "ambiguous_terms.txt").string());

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "simulated " << sim.requests.size() << " requests (train " << sim.train << ", valid " << sim.valid
              << ", test " << sim.test << ") of " << options.users << " users over " << options.songs << " songs, "
              << sim.world.aliases.size() << " ambiguous terms, into " << out.string() << " in " << seconds << " s\n";
    return kOk;
}

}  // namespace piano_cli
