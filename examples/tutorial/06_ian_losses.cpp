// Tutorial chapter 6 (docs/tutorial/06-ian-losses.md): the IAN and the multi-task losses.
//
// A small world where a user clicks songs by artists they have played before and, after
// a click, converts far more often on jazz than on pop. The program trains PIANO on it and
// shows what the Information Aggregation Node (IAN) sees (its list, all of it, nothing
// else), how the list-level CTR/CVR loss is formed, and why the CTCVR loss is taken on the
// entire space of candidates rather than on the clicked ones. Returns non-zero if a claim
// fails.
#include <piano/data/batch.hpp>
#include <piano/data/request.hpp>
#include <piano/data/shuffle.hpp>
#include <piano/metrics/auc.hpp>
#include <piano/model/factory.hpp>
#include <piano/model/losses.hpp>
#include <piano/ops/loss.hpp>
#include <piano/ops/reduce.hpp>
#include <piano/ops/unary.hpp>
#include <piano/optim/adam.hpp>
#include <piano/optim/schedule.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"

namespace {

namespace data = piano::data;
using piano::Index;
using piano::Matrix;
using piano::Tensor;

// [tutorial:world]
constexpr int kArtists = 10;         // artist rows 1..10; artists 1..5 play pop, 6..10 jazz
constexpr int kSongsPerArtist = 2;   // artist a's songs are item rows 2a and 2a+1
constexpr int kPop = 1, kJazz = 2;   // genre rows (the cate1 field)
constexpr int kHistory = 2, kListLength = 4;

int below(std::mt19937_64& rng, int n) {
    return static_cast<int>(data::uniform_below(rng, static_cast<std::uint64_t>(n)));
}

data::ItemFields song_by(int artist, std::mt19937_64& rng) {
    data::ItemFields song;
    song.brand = artist;
    song.item = kSongsPerArtist * artist + below(rng, kSongsPerArtist);
    song.cate1 = artist <= kArtists / 2 ? kPop : kJazz;
    return song;
}

/// One search. The user has played 2 artists (the history, without queries); the list
/// holds 4 songs by distinct artists. The user clicks every song by an artist they have
/// played, and after a click converts (plays the whole album) with probability 0.8 for
/// jazz and 0.2 for pop. So a list gets a click when it shares an artist with the history
/// (2 lists in 3 do), and a conversion mostly when that artist plays jazz.
data::Request search(std::mt19937_64& rng) {
    std::vector<int> artists(kArtists);
    std::iota(artists.begin(), artists.end(), 1);
    data::seeded_shuffle(artists, rng);
    const std::vector<int> played(artists.begin(), artists.begin() + kHistory);
    data::seeded_shuffle(artists, rng);  // the list draws its artists afresh

    data::Request request;
    request.query = {1};
    for (int artist : played) {
        data::HistoryEvent event;
        event.fields = song_by(artist, rng);
        event.gap = 3600;
        request.history.push_back(event);
    }
    for (int i = 0; i < kListLength; ++i) {
        data::Candidate candidate;
        candidate.fields = song_by(artists[static_cast<std::size_t>(i)], rng);
        candidate.click = std::find(played.begin(), played.end(), candidate.fields.brand) != played.end();
        const double p_conv = candidate.fields.cate1 == kJazz ? 0.8 : 0.2;
        candidate.conv = candidate.click && static_cast<double>(rng() >> 11) * 0x1.0p-53 < p_conv;
        candidate.label = candidate.conv ? 3.0f : static_cast<float>(candidate.click);
        request.candidates.push_back(candidate);
    }
    return request;
}
// [tutorial:end]

std::vector<data::Request> searches(int n, std::mt19937_64& rng) {
    std::vector<data::Request> out;
    for (int i = 0; i < n; ++i) out.push_back(search(rng));
    return out;
}

/// Per loss term (ctr, ctcvr, list): its mean over one epoch.
using TermMeans = std::array<double, 3>;

/// Chapter 5's loop (with a warm-up of 100 steps), returning each term's mean over the
/// first and the last epoch.
std::pair<TermMeans, TermMeans> train(piano::Reranker<float>& model, const std::vector<data::Request>& requests,
                                      int epochs) {
    piano::Adam<float> adam(model.named_parameters(), piano::AdamOptions{});
    data::Batcher batcher(requests, 8, 1);
    const piano::WarmupLinearSchedule schedule(0.01, 100, epochs * static_cast<long>(batcher.num_batches()));
    TermMeans first{}, last{};
    model.train();
    for (int epoch = 0; epoch < epochs; ++epoch) {
        batcher.start_epoch(static_cast<std::uint64_t>(epoch));
        TermMeans sums{};
        data::Batch batch;
        while (batcher.next(batch)) {
            piano::LossBreakdown<float> loss =
                piano::multi_task_loss(model.forward(batch), batch, model.config(), model.loss_log_variances());
            loss.total.backward();
            adam.set_learning_rate(schedule.lr(adam.steps_taken()));
            adam.step();
            adam.zero_grad();
            for (int k = 0; k < 3; ++k) sums[static_cast<std::size_t>(k)] += loss.terms[k];
        }
        for (double& s : sums) s /= static_cast<double>(batcher.num_batches());
        std::printf("epoch %d  ctr %.4f  ctcvr %.4f  list %.4f\n", epoch + 1, sums[0], sums[1], sums[2]);
        if (epoch == 0) first = sums;
        last = sums;
    }
    model.eval();
    return {first, last};
}

// [tutorial:list-loss]
/// L_list by hand, in double: with z the list logit and y the list label,
/// BCE(σ(z), y) = softplus(z) − y·z, averaged over the B lists, for CTR plus for CVR.
double list_loss_by_hand(const piano::ModelOutputs<float>& out, const data::Batch& batch) {
    double total = 0.0;
    for (Index b = 0; b < batch.size(); ++b) {
        int any_click = 0, any_conv = 0;  // the list's labels
        for (Index i = batch.cand_offsets[b]; i < batch.cand_offsets[b + 1]; ++i) {
            any_click |= batch.click[static_cast<std::size_t>(i)];
            any_conv |= batch.click[static_cast<std::size_t>(i)] & batch.conv[static_cast<std::size_t>(i)];
        }
        const double z_ctr = out.list_ctr_logit.value()(b, 0), z_cvr = out.list_cvr_logit.value()(b, 0);
        total += std::log1p(std::exp(z_ctr)) - any_click * z_ctr;
        total += std::log1p(std::exp(z_cvr)) - any_conv * z_cvr;
    }
    return total / static_cast<double>(batch.size());
}
// [tutorial:end]

}  // namespace

int main() {
    tutorial::Checks check;
    std::mt19937_64 rng(6);
    const std::vector<data::Request> train_set = searches(600, rng);
    const std::vector<data::Request> held_out = searches(200, rng);

    // [tutorial:model]
    piano::PianoConfig config = piano::PianoConfig::tiny();  // d = 16, 2 heads, 1 layer
    config.term_rows = 2;
    config.item_rows = kSongsPerArtist * (kArtists + 1);
    config.brand_rows = kArtists + 1;
    config.category_rows = 3;                                // unknown, pop, jazz
    config.shop_rows = 2;
    // The paper's IAN, which the list loss trains. The library's default detaches the list
    // heads instead, so that the list loss trains them alone (docs/architecture.md, "Losses").
    config.detach_list_heads = false;
    const std::unique_ptr<piano::Reranker<float>> model = piano::make_model<float>("piano", config);
    // [tutorial:end]

    // [tutorial:train]
    const auto [first, last] = train(*model, train_set, 14);
    // [tutorial:end]
    check(last[0] < 0.8 * first[0] && last[1] < 0.8 * first[1] && last[2] < 0.8 * first[2],
          "training lowers every term: ctr " + tutorial::fixed(first[0]) + " -> " + tutorial::fixed(last[0]) +
              ", ctcvr " + tutorial::fixed(first[1]) + " -> " + tutorial::fixed(last[1]) + ", list " +
              tutorial::fixed(first[2]) + " -> " + tutorial::fixed(last[2]));

    // [tutorial:knock-out]
    // What the node sees: replace one candidate by an unknown song (every field row 0)
    // and watch p_list_ctr of list 0. List 0 is the first held-out list with a click,
    // list 1 the one after it; they go through the model together, as one batch.
    const auto has_click = [](const data::Request& r) {
        return std::any_of(r.candidates.begin(), r.candidates.end(), [](const data::Candidate& c) { return c.click == 1; });
    };
    const auto first_clicked = std::find_if(held_out.begin(), held_out.end() - 1, has_click);
    const std::vector<data::Request> two_lists = {*first_clicked, *(first_clicked + 1)};
    const double base = model->rerank(two_lists)[0].p_list_ctr;
    std::printf("list 0: p_list_ctr %.3f\n", base);
    bool sees_every_candidate = true, blind_to_other_list = true;
    for (std::size_t list = 0; list < 2; ++list) {
        for (std::size_t i = 0; i < two_lists[list].candidates.size(); ++i) {
            std::vector<data::Request> knocked = two_lists;
            knocked[list].candidates[i].fields = data::ItemFields{};
            const double p = model->rerank(knocked)[0].p_list_ctr;
            if (list == 0) {
                const data::Candidate& c = two_lists[0].candidates[i];
                std::printf("  without candidate %zu (artist %d%s): %.3f\n", i, c.fields.brand,
                            c.click ? ", clicked" : "", p);
            }
            if (list == 0) sees_every_candidate = sees_every_candidate && p != base;
            if (list == 1) blind_to_other_list = blind_to_other_list && p == base;
        }
    }
    // [tutorial:end]
    check(sees_every_candidate, "list 0's p_list_ctr changes whichever of its candidates is replaced");
    check(blind_to_other_list, "and stays exactly the same when a candidate of list 1 is replaced");

    // [tutorial:list-check]
    const data::Batch batch = data::make_batch(held_out, 0, 32);
    piano::ModelOutputs<float> out;
    piano::LossBreakdown<float> loss;
    {
        piano::NoGradGuard no_grad;
        out = model->forward(batch);
        loss = piano::multi_task_loss(out, batch, model->config(), model->loss_log_variances());
    }
    const double by_hand = list_loss_by_hand(out, batch);
    std::printf("L_list: %.6f from multi_task_loss, %.6f by hand\n", loss.terms[2], by_hand);
    // [tutorial:end]
    check(std::abs(loss.terms[2] - by_hand) < 1e-5 * (1 + by_hand), "L_list is BCE(any click) + BCE(any conversion) per list");

    // [tutorial:entire-space]
    // Gradients reaching the CVR logits b [ΣL,1] from two ways of training pCVR. We copy
    // the logits into leaves so that their gradients can be read.
    Tensor<float> a = out.ctr_logit.detach(), b = out.cvr_logit.detach(), b_clicked = out.cvr_logit.detach();
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    b_clicked.set_requires_grad(true);
    const Index n = batch.num_candidates();
    Matrix<float> click(n, 1), click_and_conv(n, 1);
    piano::BceOptions<float> clicked_only;
    clicked_only.mask = piano::Mask(n, 1);
    for (Index i = 0; i < n; ++i) {
        click(i, 0) = static_cast<float>(batch.click[static_cast<std::size_t>(i)]);
        click_and_conv(i, 0) = static_cast<float>(batch.click[static_cast<std::size_t>(i)] & batch.conv[static_cast<std::size_t>(i)]);
        clicked_only.mask(i, 0) = batch.click[static_cast<std::size_t>(i)] == 1;
    }
    // ESMM: pCTCVR = pCTR · pCVR against click ∧ conv, over every candidate.
    piano::mean(piano::product_bce_with_logits(a, b, click_and_conv)).backward();
    // The naive alternative: pCVR against conv, over the clicked candidates only.
    piano::binary_cross_entropy_with_logits(b_clicked, click_and_conv, clicked_only).backward();
    Index unclicked = 0, reached_ctcvr = 0, reached_clicked_only = 0;
    for (Index i = 0; i < n; ++i) {
        if (click(i, 0) == 1.0f) continue;
        ++unclicked;
        reached_ctcvr += b.grad()(i, 0) != 0.0f;
        reached_clicked_only += b_clicked.grad()(i, 0) != 0.0f;
    }
    std::printf("unclicked candidates: %ld; CVR gradient from L_ctcvr at %ld of them, from the clicked-only loss at %ld\n",
                static_cast<long>(unclicked), static_cast<long>(reached_ctcvr), static_cast<long>(reached_clicked_only));
    // [tutorial:end]
    check(unclicked > 0 && reached_ctcvr == unclicked, "L_ctcvr trains the CVR head on every candidate, clicked or not");
    check(reached_clicked_only == 0, "a clicked-only CVR loss never sees the unclicked ones");

    // [tutorial:stable]
    // A confident wrong prediction: a = b = 40, label 0. The loss −log(1 − σ(a)σ(b)) is
    // log((1 + e^a)(1 + e^b)) − log(1 + e^a + e^b) ≈ 80 − (40 + log 2) ≈ 39.307.
    const Tensor<float> big = Tensor<float>::constant(1, 1, 40.0f);
    const Matrix<float> no_conversion = Matrix<float>::Zero(1, 1);
    const float stable = piano::product_bce_with_logits(big, big, no_conversion).item();
    const float p = piano::sigmoid(big).item();  // rounds to exactly 1 in float
    const float naive = -std::log(1.0f - p * p);
    std::printf("loss at a = b = 40, label 0: %.3f from logits, %f from probabilities\n", stable, naive);
    // [tutorial:end]
    check(std::abs(stable - 39.307f) < 1e-3f && std::isinf(naive),
          "from logits the loss is finite and right (39.307); from rounded probabilities it is infinite");

    // [tutorial:held-out]
    // Held out: p_list_ctr against "the list got a click", pCTCVR against "click and
    // conversion" over all candidates, and pCVR of the clicked songs by genre.
    std::vector<double> list_score, ctcvr_score;
    std::vector<int> list_clicked, converted;
    std::array<double, 3> cvr_sum{}, cvr_count{};  // clicked songs, indexed by genre row
    const std::vector<piano::RerankResult> results = model->rerank(held_out);
    for (std::size_t r = 0; r < held_out.size(); ++r) {
        int any_click = 0;
        for (std::size_t i = 0; i < held_out[r].candidates.size(); ++i) {
            const data::Candidate& c = held_out[r].candidates[i];
            any_click |= c.click;
            ctcvr_score.push_back(results[r].p_ctcvr[i]);
            converted.push_back(c.click & c.conv);
            if (!c.click) continue;
            cvr_sum[static_cast<std::size_t>(c.fields.cate1)] += results[r].p_cvr[i];
            cvr_count[static_cast<std::size_t>(c.fields.cate1)] += 1;
        }
        list_score.push_back(results[r].p_list_ctr);
        list_clicked.push_back(any_click);
    }
    const double list_auc = piano::metrics::auc(list_score, list_clicked);
    const double ctcvr_auc = piano::metrics::auc(ctcvr_score, converted);
    const double cvr_jazz = cvr_sum[kJazz] / cvr_count[kJazz], cvr_pop = cvr_sum[kPop] / cvr_count[kPop];
    std::printf("held out: AUC of p_list_ctr %.3f, AUC of pCTCVR %.3f; mean pCVR of clicked songs: jazz %.3f, pop %.3f\n",
                list_auc, ctcvr_auc, cvr_jazz, cvr_pop);
    // [tutorial:end]
    check(list_auc >= 0.7, "the IAN's p_list_ctr tells lists that get a click from lists that do not (AUC " +
                               tutorial::fixed(list_auc) + ")");
    check(ctcvr_auc >= 0.8, "pCTCVR ranks the converting candidates above the others (AUC " + tutorial::fixed(ctcvr_auc) + ")");
    check(cvr_jazz >= 0.6 && cvr_pop <= 0.4,
          "pCVR of clicked songs finds the true rates, 0.8 for jazz and 0.2 for pop, without a CVR label of its own (" +
              tutorial::fixed(cvr_jazz) + ", " + tutorial::fixed(cvr_pop) + ")");

    return check.finish();
}
