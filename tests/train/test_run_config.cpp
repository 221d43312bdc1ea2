// One file describes a run (piano/train/run_config.hpp): model and training keys, read
// back exactly as written, with errors that name the file, the line or the key.
#include <catch2/catch.hpp>

#include <piano/train/run_config.hpp>

#include <support/test_helpers.hpp>

#include <sstream>
#include <string>

TEST_CASE("a run file reads back to the run that wrote it", "[run_config]") {
    piano::RunConfig run;
    run.model = piano::PianoConfig::tiny();
    run.model.seed = 18446744073709551615UL;
    run.model.lambda = 0.3;
    run.training.epochs = 7;
    run.training.batch_size = 48;
    run.training.optimizer = "adamw";
    run.training.learning_rate = 3.0e-4;
    run.training.weight_decay = 0.01;
    run.training.schedule = "cosine";
    run.training.warmup_steps = 25;
    run.training.clip_norm = 0.0;
    run.training.lazy_embeddings = false;
    run.training.early_stopping_metric = "auc_ctcvr";
    run.training.patience = 0;
    run.training.seed = 99;

    const std::string text = piano::run_config_text(run);
    std::istringstream in(text);
    const piano::RunConfig back = piano::read_run_config(in, "run.conf", piano::RunConfig{});
    CHECK(back.model.to_map() == run.model.to_map());
    CHECK(piano::training_to_map(back.training) == piano::training_to_map(run.training));
    CHECK(piano::run_config_text(back) == text);
    // Every training key is written, and only those.
    for (const std::string& key : piano::training_keys()) CHECK(text.find("\n" + key + " = ") != std::string::npos);
    CHECK(piano::training_to_map(run.training).size() == piano::training_keys().size());
}

TEST_CASE("a run file overrides only the keys it holds, and names what it cannot read", "[run_config]") {
    piano::RunConfig base;
    base.model = piano::PianoConfig::tiny();
    std::istringstream partial("# a comment\nepochs = 3\n\nd_model = 32\nheads = 4\n");
    const piano::RunConfig run = piano::read_run_config(partial, "partial.conf", base);
    CHECK(run.training.epochs == 3);
    CHECK(run.training.batch_size == base.training.batch_size);
    CHECK(run.model.d_model == 32);
    CHECK(run.model.layers == base.model.layers);

    auto message = [](const std::string& text) {
        std::istringstream in(text);
        try {
            (void)piano::read_run_config(in, "bad.conf", piano::RunConfig{});
        } catch (const piano::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    CHECK(message("epochs = 0\n") == "bad.conf: config key 'epochs': 0 is below the minimum 1");
    CHECK(message("batch_size = many\n") == "bad.conf: config key 'batch_size': expected an integer, got 'many'");
    CHECK(message("lazy_embeddings = maybe\n") ==
          "bad.conf: config key 'lazy_embeddings': expected true/false or 1/0, got 'maybe'");
    CHECK(message("epochz = 3\n") == "bad.conf: unknown config key 'epochz'");
    CHECK(message("epochs 3\n") == "bad.conf:1: expected 'key = value', got 'epochs 3'");
}

TEST_CASE("save_run_config writes the whole file or nothing", "[run_config]") {
    piano::testing::TempDir dir("run_config");
    piano::RunConfig run;
    piano::save_run_config(dir / "config.txt", run);
    CHECK(piano::testing::read_bytes(dir / "config.txt") == piano::run_config_text(run));
    CHECK_THROWS_WITH(piano::save_run_config(dir / "missing" / "config.txt", run),
                      Catch::Contains("cannot write '") && Catch::Contains("config.txt"));
    CHECK(!std::filesystem::exists(dir / "missing"));
}
