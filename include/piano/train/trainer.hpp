// piano/train/trainer.hpp: the one training loop PIANO and every baseline go through.
//
// Per step, on a batch of B requests from a seeded data::Batcher:
//   out  = model.forward(batch)                                   ctr_logit [ΣL,1], ...
//   loss = multi_task_loss(out, batch, config, log_variances)     total [1,1] + 4 terms
//   (a non-finite total or term throws TrainingError naming epoch, step and term)
//   loss.total.backward()
//   (in a group of ranks: gradients and loss summed over the ranks  train/collective.hpp)
//   clip the global gradient norm to clip_norm                     (optim/clip.hpp)
//   lr = schedule(step)                                           (optim/schedule.hpp)
//   optimizer.step(); optimizer.zero_grad()
// After each epoch the validation split is scored (metrics::evaluate(predict(...))); the
// epoch with the highest early-stopping metric is kept (in memory, and in
// out_dir/best.ckpt when out_dir is set) and put back into the model at the end, so the
// model train() returns is the best one, not the last. docs/training.md has the details.
//
// Determinism: the batch order is a function of (seed, epoch) alone (data::Batcher), the
// model's initialisation and dropout draw from config.seed, and nothing else is random,
// so the same model config, data and options give bit-identical parameters.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "piano/core/compiled.hpp"
#include "piano/core/error.hpp"
#include "piano/data/batch.hpp"
#include "piano/data/request.hpp"
#include "piano/io/checkpoint.hpp"
#include "piano/metrics/evaluate.hpp"
#include "piano/metrics/report.hpp"
#include "piano/model/losses.hpp"
#include "piano/model/reranker.hpp"
#include "piano/optim/adam.hpp"
#include "piano/optim/clip.hpp"
#include "piano/optim/optimizer.hpp"
#include "piano/optim/schedule.hpp"
#include "piano/optim/sgd.hpp"
#include "piano/train/collective.hpp"
#include "piano/train/progress.hpp"
#include "piano/version.hpp"

namespace piano {

/// A loss or gradient that turned NaN or Inf during training. The message names the
/// epoch, the step and the quantity: "step 17 (epoch 2): loss term 'ctcvr' is nan".
class TrainingError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct TrainOptions {
    int epochs = 5;
    std::size_t batch_size = 32;
    std::string optimizer = "adam";        // "adam" | "adamw" | "sgd" (plain SGD, no momentum)
    double learning_rate = 1e-3, weight_decay = 0.0;
    std::string schedule = "constant";     // "constant" | "cosine" | "linear" (linear warm-up then decay)
    long warmup_steps = 0;                 // every schedule warms up linearly over these steps
    double clip_norm = 5.0;                // <= 0: no clipping
    bool lazy_embeddings = true;           // sparse (lazy) Adam rows for embedding tables; Adam/AdamW only
    std::string early_stopping_metric = "ndcg@10";  // any column of metrics::csv_header() but "model"
    int patience = 2;                      // epochs without improvement before stopping; 0 = never stop early
    std::uint64_t seed = 1;                // batch order
    // OpenMP threads for training and evaluation. 0 (the default) leaves OpenMP as the
    // caller set it, so a library call never pins its host process; N >= 1 calls
    // omp_set_num_threads(N) (with OpenMP; ignored without). The count never changes results.
    int threads = 0;
    std::string out_dir;                   // empty: no files; else best.ckpt + train_log.csv there
    bool progress = true;                  // progress bar on a terminal (isatty), plain lines otherwise
    // Data parallelism (train/collective.hpp): this process is one rank of the group, which
    // trains one model on the batches above, each split over the ranks. Not owned. Only
    // rank 0 writes out_dir and the log.
    Collective* collective = nullptr;
};

struct EpochRecord {
    static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    int epoch = 0;             // 1-based
    long steps = 0;            // optimizer steps taken since the start of the run
    double train_loss = nan;   // mean over the epoch's batches of the total loss
    double terms[4] = {nan, nan, nan, nan};  // the same for ctr, ctcvr, list, listwise; NaN when absent
    metrics::MetricTable valid;  // all NaN without a validation split
    double seconds = 0.0;      // wall time of the epoch, training and validation
};

struct TrainResult {
    std::vector<EpochRecord> epochs;  // one per epoch run, in order
    int best_epoch = -1;              // the epoch whose parameters the model now holds
    double best_metric = std::numeric_limits<double>::quiet_NaN();  // its early-stopping metric
    std::string best_checkpoint;      // out_dir/best.ckpt, or empty without out_dir
    bool stopped_early = false;       // patience ran out before options.epochs
};

/// The model's predictions for `requests`, in order, with their labels, ready for
/// metrics::evaluate. Batches of `batch_size` requests go through model.rerank (no graph,
/// evaluation mode; the model's mode is restored).
/// Requires: batch_size >= 1 (ConfigError), every request with >= 1 candidate.
template <typename T>
std::vector<metrics::RequestPrediction> predict(Reranker<T>& model, const std::vector<data::Request>& requests,
                                                std::size_t batch_size = 256) {
    if (batch_size == 0) throw ConfigError("predict: batch_size must be >= 1");
    std::vector<metrics::RequestPrediction> predictions;
    predictions.reserve(requests.size());
    for (std::size_t begin = 0; begin < requests.size(); begin += batch_size) {
        const std::size_t end = std::min(requests.size(), begin + batch_size);
        const data::Batch batch = data::make_batch(requests, begin, end);
        std::vector<RerankResult> results = model.rerank(batch);
        for (std::size_t b = 0; b < results.size(); ++b) {
            RerankResult& r = results[b];
            metrics::RequestPrediction p;
            p.score = std::move(r.score);
            p.p_ctr = std::move(r.p_ctr);
            p.p_cvr = std::move(r.p_cvr);
            p.p_ctcvr = std::move(r.p_ctcvr);
            p.p_list_ctr = r.p_list_ctr;
            p.p_list_cvr = r.p_list_cvr;
            const auto first = batch.cand_offsets[b], last = batch.cand_offsets[b + 1];
            p.click.assign(batch.click.begin() + first, batch.click.begin() + last);
            p.conv.assign(batch.conv.begin() + first, batch.conv.begin() + last);
            predictions.push_back(std::move(p));
        }
    }
    return predictions;
}

namespace detail::training {

inline void check_options(const TrainOptions& o) {
    if (o.epochs < 1) throw ConfigError("train: epochs must be >= 1, got " + std::to_string(o.epochs));
    if (o.batch_size == 0) throw ConfigError("train: batch_size must be >= 1");
    if (o.optimizer != "adam" && o.optimizer != "adamw" && o.optimizer != "sgd") {
        throw ConfigError("train: unknown optimizer '" + o.optimizer + "' (known: adam, adamw, sgd)");
    }
    if (o.schedule != "constant" && o.schedule != "cosine" && o.schedule != "linear") {
        throw ConfigError("train: unknown schedule '" + o.schedule + "' (known: constant, cosine, linear)");
    }
    if (o.warmup_steps < 0) throw ConfigError("train: warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
    // Checked here, where the message can name TrainOptions' own fields, before a
    // schedule or optimizer sees them.
    piano::detail::require_at_least("train", "learning_rate", o.learning_rate);
    piano::detail::require_at_least("train", "weight_decay", o.weight_decay);
    if (std::isnan(o.clip_norm)) throw ConfigError("train: clip_norm is NaN (use 0 for no clipping)");
    if (o.patience < 0) throw ConfigError("train: patience must be >= 0, got " + std::to_string(o.patience));
    if (o.threads < 0) {
        throw ConfigError("train: threads must be >= 0 (0: leave OpenMP as set), got " + std::to_string(o.threads));
    }
}

using MetricField = double metrics::MetricTable::*;

/// The MetricTable field behind a report column name ("ndcg@10" -> &MetricTable::ndcg_10).
inline MetricField metric_field(const std::string& name) {
    std::string known;
    for (const auto& column : metrics::metric_columns()) {
        if (name == column.name) return column.field;
        known += (known.empty() ? "" : ", ") + std::string(column.name);
    }
    throw ConfigError("train: unknown early_stopping_metric '" + name + "' (known: " + known + ")");
}

/// The learning rate of each 0-based step. Warm-up, when asked, is the same linear climb
/// for every schedule; "constant" then stays at the peak (a linear "decay" to itself).
inline std::function<double(long)> make_schedule(const TrainOptions& o, long total_steps) {
    if (o.warmup_steps > 0 && o.warmup_steps >= total_steps) {
        throw ConfigError("train: warmup_steps (" + std::to_string(o.warmup_steps) +
                          ") must be below the run's total steps (epochs x batches = " + std::to_string(total_steps) +
                          ")");
    }
    const double lr = o.learning_rate;
    if (o.schedule == "cosine") {
        return [s = WarmupCosineSchedule(lr, o.warmup_steps, total_steps)](long step) { return s.lr(step); };
    }
    if (o.schedule == "linear") {
        return [s = WarmupLinearSchedule(lr, o.warmup_steps, total_steps)](long step) { return s.lr(step); };
    }
    if (o.warmup_steps > 0) {
        return [s = WarmupLinearSchedule(lr, o.warmup_steps, total_steps, lr)](long step) { return s.lr(step); };
    }
    return [s = ConstantSchedule(lr)](long step) { return s.lr(step); };
}

template <typename T>
std::unique_ptr<Optimizer<T>> make_optimizer(std::vector<std::pair<std::string, Tensor<T>>> parameters,
                                             const TrainOptions& o) {
    if (o.optimizer == "sgd") {
        SGDOptions options;
        options.learning_rate = o.learning_rate;
        options.weight_decay = o.weight_decay;
        return std::make_unique<SGD<T>>(std::move(parameters), options);
    }
    AdamOptions options;
    options.learning_rate = o.learning_rate;
    options.weight_decay = o.weight_decay;
    options.sparse_mode = o.lazy_embeddings ? SparseMode::lazy : SparseMode::dense;
    if (o.optimizer == "adamw") return std::make_unique<AdamW<T>>(std::move(parameters), options);
    return std::make_unique<Adam<T>>(std::move(parameters), options);
}

inline std::string non_finite_name(double x) { return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf"; }

// Numbers for the CSV and the log lines: the classic locale (a decimal point whatever the
// global locale), a fixed number of decimals, and NaN as `nan_text`.
inline std::string fixed(double x, int decimals, const char* nan_text) {
    return std::isnan(x) ? std::string(nan_text) : metrics::detail::fixed(x, decimals);
}

/// out_dir/train_log.csv, one row per epoch, flushed as it goes so a crashed or killed
/// run keeps the rows of its finished epochs. Metric columns are metrics::csv_row's.
class CsvLog {
public:
    explicit CsvLog(const std::string& out_dir) {
        if (out_dir.empty()) return;
        path_ = (std::filesystem::path(out_dir) / "train_log.csv").string();
        file_.open(path_, std::ios::trunc);
        if (!file_) throw std::runtime_error("train: cannot create " + path_);
        file_ << header() << '\n';
        file_.flush();
    }

    /// "epoch,steps,train_loss,loss_ctr,loss_ctcvr,loss_list,loss_listwise,auc_ctr,...,seconds"
    static std::string header() {
        return "epoch,steps,train_loss,loss_ctr,loss_ctcvr,loss_list,loss_listwise" +
               metrics::csv_header().substr(std::string("model").size()) + ",seconds";
    }

    /// Empty fields for NaN (an absent loss term, an undefined metric), as in metrics CSVs.
    static std::string row(const EpochRecord& r) {
        std::string line = std::to_string(r.epoch) + "," + std::to_string(r.steps) + "," + fixed(r.train_loss, 6, "");
        for (double term : r.terms) line += "," + fixed(term, 6, "");
        return line + metrics::csv_row("", r.valid) + "," + fixed(r.seconds, 3, "");
    }

    void write(const EpochRecord& r) {
        if (!file_.is_open()) return;
        file_ << row(r) << '\n';
        file_.flush();
        if (!file_) throw std::runtime_error("train: writing " + path_ + " failed (is the disk full?)");
    }

private:
    std::string path_;
    std::ofstream file_;
};

/// "epoch 2/5  steps 40  loss 0.6123 (ctr 0.3012 ctcvr 0.1100 list 0.4022)  valid ndcg@10 0.5123 (best)  1.2 s"
inline std::string epoch_line(const EpochRecord& r, int epochs, const std::string& metric, double value, bool best) {
    static const char* const names[4] = {"ctr", "ctcvr", "list", "listwise"};
    std::string line = "epoch " + std::to_string(r.epoch) + "/" + std::to_string(epochs) + "  steps " +
                       std::to_string(r.steps) + "  loss " + fixed(r.train_loss, 4, "-") + " (";
    bool first = true;
    for (int k = 0; k < 4; ++k) {
        if (std::isnan(r.terms[k])) continue;
        line += (first ? "" : " ") + std::string(names[k]) + " " + fixed(r.terms[k], 4, "-");
        first = false;
    }
    line += ")";
    if (r.valid.requests > 0) line += "  valid " + metric + " " + fixed(value, 4, "-") + (best ? " (best)" : "");
    return line + "  " + fixed(r.seconds, 1, "-") + " s";
}

/// What the ranks of a group must agree on (Collective::check_same_run): the model and
/// its config, the training options but threads, out_dir and progress (the machine's,
/// not the run's), both splits and the piano version.
template <typename T>
std::vector<RunDigest> run_digests(const Reranker<T>& model, const TrainOptions& o,
                                   const std::vector<data::Request>& train_split,
                                   const std::vector<data::Request>& valid_split) {
    Digest config;
    config.text(model.kind()).number(sizeof(T));
    for (const auto& [key, value] : model.config().to_map()) config.text(key).text(value);
    Digest options;
    options.number(o.epochs).number(o.batch_size).text(o.optimizer).number(o.learning_rate).number(o.weight_decay);
    options.text(o.schedule).number(o.warmup_steps).number(o.clip_norm).number(o.lazy_embeddings);
    options.text(o.early_stopping_metric).number(o.patience).number(o.seed);
    return {{"piano version", Digest().text(kVersion).value()},
            {"model config", config.value()},
            {"training options", options.value()},
            {"training data", digest_requests(train_split)},
            {"validation data", digest_requests(valid_split)}};
}

}  // namespace detail::training

/// Trains `model` on `train_split`, scoring `valid_split` after every epoch, and leaves
/// the best epoch's parameters in the model (in evaluation mode).
/// Requires: a non-empty train_split; options in range (ConfigError naming the option);
/// an early-stopping metric the model predicts and the validation labels define (else
/// ConfigError after the first epoch). An empty valid_split means no validation: every
/// epoch counts as the best so far, so the last one is kept and early stopping never fires.
/// Ensures: result.epochs holds one record per epoch run; with out_dir, out_dir/best.ckpt
/// is the best epoch's checkpoint and out_dir/train_log.csv has one row per epoch run.
/// Throws TrainingError at the first step whose loss (total or a term) or gradient norm
/// is NaN or Inf; the model then holds the parameters of the step before.
template <typename T>
TrainResult train(Reranker<T>& model, const std::vector<data::Request>& train_split,
                  const std::vector<data::Request>& valid_split, const TrainOptions& options, std::ostream& log) {
    namespace dt = detail::training;
    using Clock = std::chrono::steady_clock;
    dt::check_options(options);
    if (train_split.empty()) throw ConfigError("train: the training split is empty");
    const auto metric = dt::metric_field(options.early_stopping_metric);
#ifdef _OPENMP
    if (options.threads > 0) omp_set_num_threads(options.threads);
#endif

    data::Batcher batcher(train_split, options.batch_size, options.seed);
    Collective* const group = options.collective;
    if (group) {
        group->check_same_run(dt::run_digests(model, options, train_split, valid_split));
        batcher.shard(group->rank(), group->ranks());
    }
    // Rank 0 of a group writes the files and the log for all.
    const bool writer = !group || group->rank() == 0;
    const std::string out_dir = writer ? options.out_dir : std::string();
    std::ostream silent(nullptr);
    const auto steps_per_epoch = static_cast<long>(batcher.num_batches());
    const auto lr_at = dt::make_schedule(options, steps_per_epoch * options.epochs);
    std::unique_ptr<Optimizer<T>> optimizer = dt::make_optimizer(model.named_parameters(), options);
    const std::vector<Tensor<T>> parameters = model.parameters();
    // No clipping is a clip at +inf: the norm is still computed, for the finiteness check.
    const double clip = options.clip_norm > 0 ? options.clip_norm : std::numeric_limits<double>::infinity();

    // The checkpoint's config: the model's own keys plus "model" (its kind), so a loader
    // knows which class to build before it reads the parameters.
    std::map<std::string, std::string> config = model.config().to_map();
    config["model"] = model.kind();
    std::filesystem::path best_path;
    if (!out_dir.empty()) {
        std::filesystem::create_directories(out_dir);
        best_path = std::filesystem::path(out_dir) / "best.ckpt";
    }
    dt::CsvLog csv(out_dir);
    TrainingProgress progress(writer ? log : silent, writer && options.progress && is_terminal(log));

    TrainResult result;
    Checkpoint<T> best;  // the best epoch's parameters (and optimizer state with out_dir)
    int epochs_without_improvement = 0;
    model.zero_grad();
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
        const auto start = Clock::now();
        model.train();
        batcher.start_epoch(static_cast<std::uint64_t>(epoch - 1));
        progress.start_epoch(epoch, options.epochs, batcher.num_batches());

        EpochRecord record;
        record.epoch = epoch;
        double loss_sum = 0.0, term_sum[4] = {0.0, 0.0, 0.0, 0.0};
        long batches = 0;
        data::Batch batch;
        // One team of threads for the whole epoch (core/parallel.hpp): the ~200 parallel
        // loops of each step share it instead of each waking the threads again.
        with_thread_team([&] {
            while (batcher.next(batch)) {
                const long step = optimizer->steps_taken();
                const std::string where = "step " + std::to_string(step + 1) + " (epoch " + std::to_string(epoch) + ")";
                const auto check_loss = [&where](const StepLoss& loss) {
                    for (int k = 0; k < 4; ++k) {
                        if (loss.present[k] && !std::isfinite(loss.terms[k])) {
                            throw TrainingError(where + ": loss term '" + LossBreakdown<T>::kNames[k] + "' is " +
                                                dt::non_finite_name(loss.terms[k]));
                        }
                    }
                    if (!std::isfinite(loss.total))
                        throw TrainingError(where + ": the total loss is " + dt::non_finite_name(loss.total));
                };
                StepLoss loss;
                // In a group, a rank whose part of the last batch is empty adds nothing but
                // still takes part in the sums; the checks wait for the sums, so that every rank
                // throws together.
                if (batch.size() > 0) {
                    const ModelOutputs<T> out = model.forward(batch);
                    LossBreakdown<T> terms =
                        multi_task_loss(out, batch, model.config(), model.loss_log_variances(),
                                        group ? loss_share(batcher.whole_batch(), batch, group->rank() == 0) : LossShare{});
                    loss.total = static_cast<double>(terms.total.item());
                    std::copy(terms.present, terms.present + 4, loss.present);
                    std::copy(terms.terms, terms.terms + 4, loss.terms);
                    if (!group) check_loss(loss);
                    terms.total.backward();
                }
                if (group) {
                    group->sum_step(optimizer->parameters(), loss, step);
                    check_loss(loss);
                }
                const double total = loss.total;
                const double norm = clip_grad_norm(parameters, clip);
                if (!std::isfinite(norm)) {
                    throw TrainingError(where + ": the gradient norm is " + dt::non_finite_name(norm) +
                                        " although the loss is finite (" + dt::fixed(total, 6, "") + ")");
                }
                optimizer->set_learning_rate(lr_at(step));
                optimizer->step();
                optimizer->zero_grad();

                ++batches;
                loss_sum += total;
                for (int k = 0; k < 4; ++k) term_sum[k] += loss.present[k] ? loss.terms[k] : EpochRecord::nan;
                progress.step(static_cast<std::size_t>(batches), batch.requests.size(),
                              loss_sum / static_cast<double>(batches));
            }
        });
        record.steps = optimizer->steps_taken();
        record.train_loss = loss_sum / static_cast<double>(batches);
        for (int k = 0; k < 4; ++k) record.terms[k] = term_sum[k] / static_cast<double>(batches);

        const bool validate = !valid_split.empty();
        if (validate) record.valid = metrics::evaluate(predict(model, valid_split));
        const double value = record.valid.*metric;
        if (validate && std::isnan(value)) {
            throw ConfigError("train: early_stopping_metric '" + options.early_stopping_metric +
                              "' is undefined on the validation split for model '" + model.kind() +
                              "' (the model does not predict it, or the split's labels hold a single class); "
                              "choose another metric");
        }
        const bool improved = !validate || result.best_epoch < 0 || value > result.best_metric;
        if (improved) {
            result.best_epoch = epoch;
            result.best_metric = value;
            epochs_without_improvement = 0;
            best = capture(model, config, best_path.empty() ? nullptr : optimizer.get());
            best.step = record.steps;
            best.epoch = epoch;
            if (!best_path.empty()) {
                best.metadata["early_stopping_metric"] = options.early_stopping_metric;
                best.metadata["best_metric"] = dt::fixed(value, 6, "");
                save_checkpoint(best_path, best);
                result.best_checkpoint = best_path.string();
            }
        } else {
            ++epochs_without_improvement;
        }

        record.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        csv.write(record);
        progress.line(dt::epoch_line(record, options.epochs, options.early_stopping_metric, value, improved && validate));
        result.epochs.push_back(record);
        if (options.patience > 0 && epochs_without_improvement >= options.patience && epoch < options.epochs) {
            result.stopped_early = true;
            progress.line("early stopping: " + options.early_stopping_metric + " has not improved in " +
                          std::to_string(epochs_without_improvement) +
                          (epochs_without_improvement == 1 ? " epoch" : " epochs"));
            break;
        }
    }

    restore(model, best);
    model.eval();
    if (result.best_epoch != result.epochs.back().epoch) {
        progress.line("restored the parameters of epoch " + std::to_string(result.best_epoch) + " (" +
                      options.early_stopping_metric + " " + dt::fixed(result.best_metric, 4, "-") + ")");
    }
    return result;
}

// The float instantiations piano::compiled holds (piano/core/compiled.hpp).
PIANO_INSTANTIATE(std::vector<metrics::RequestPrediction> predict<float>(Reranker<float>&,
                                                                         const std::vector<data::Request>&,
                                                                         std::size_t));
PIANO_INSTANTIATE(TrainResult train<float>(Reranker<float>&, const std::vector<data::Request>&,
                                           const std::vector<data::Request>&, const TrainOptions&, std::ostream&));

}  // namespace piano
